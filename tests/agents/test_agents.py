"""Agents in Faust's test context: memory store, no broker; what they produce is recorded.

The agents that work in batches (``detect``, ``packages``) queue their records on the producer
(``app.producer.send``); the sink agents send dead letters through the DLQ topic. Both are replaced
by recorders here that deliver at once, or fail a topic's deliveries when told to.
"""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from unittest.mock import AsyncMock

import orjson
import pytest
from faust import Sensor
from mode import Service
from prometheus_client import REGISTRY

from typostream.agents.adapters.sinks.base import Sink, StreamName
from typostream.agents.domain.assess import Assessor, load_known
from typostream.agents.domain.detection import Detector, Threat
from typostream.agents.domain.errors import StoreError
from typostream.agents.domain.messages import threat_db_rows, threat_event
from typostream.agents.stream.detect import LAST_THREAT_HEADER
from typostream.agents.stream.sink import write_with_retry
from typostream.streams.app import WorkerApp, build_app
from typostream.streams.config import Settings


class RecordingSink(Sink):
    """Stands in for ClickHouse in unit tests (integration tests use real chDB)."""

    id = "recording"
    streams = ("events", "threats")

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.threats: list[dict[str, Any]] = []

    async def write(self, stream: StreamName, records: Sequence[Mapping[str, Any]]) -> None:
        if stream == "threats":
            self.threats.extend(threat_db_rows(records))
        else:
            self.events.extend(dict(r) for r in records)


class ExplodingDetector:
    def scan(self, name: str, registry: str) -> Any:
        raise RuntimeError("boom")


@pytest.fixture(scope="module")
def detector() -> Detector:
    return Detector.default()


class Producer:
    """Records what the agents queue on ``app.producer.send``; a topic in ``refuse`` fails delivery."""

    def __init__(self) -> None:
        self.records: list[tuple[str, bytes | None, bytes, int | None, Any]] = []
        self.refuse: dict[str, Exception] = {}

    async def send(
        self, topic: str, key: bytes | None, value: bytes, partition: int | None, timestamp: Any, headers: Any
    ) -> asyncio.Future[Any]:
        delivery: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        if topic in self.refuse:
            delivery.set_exception(self.refuse[topic])
        else:
            self.records.append((topic, key, value, partition, headers))
            delivery.set_result(
                SimpleNamespace(topic=topic, partition=partition or 0, offset=len(self.records))
            )
        return delivery

    def sent(self, topic: Any) -> list[tuple[bytes | None, Any, Any]]:
        """(key, decoded value, headers) of every record delivered to ``topic`` (a Faust topic)."""
        name = topic.get_topic_name()
        return [(k, orjson.loads(v), h) for t, k, v, _, h in self.records if t == name]

    def values(self, topic: Any) -> list[Any]:
        return [value for _, value, _ in self.sent(topic)]


async def _delivered(*args: Any, **kwargs: Any) -> asyncio.Future[None]:
    delivery: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    delivery.set_result(None)
    return delivery


def make_pipeline(tmp_path: Path, detector: Any) -> Iterator[tuple[WorkerApp, Producer, AsyncMock]]:
    assessor = Assessor(detector, load_known())
    pipeline = build_app(
        Settings(data_dir=tmp_path), assessor=assessor, sinks=[RecordingSink()], store="memory://"
    )
    producer = Producer()
    object.__setattr__(pipeline.app.producer, "send", producer.send)
    dlq_send = AsyncMock(side_effect=_delivered)  # the sinks' dead letters (Topic.send, awaited)
    object.__setattr__(pipeline.topics.dlq, "send", dlq_send)
    yield pipeline, producer, dlq_send


@pytest.fixture
async def pipeline(
    tmp_path: Path, detector: Detector
) -> AsyncIterator[tuple[WorkerApp, Producer, AsyncMock]]:
    # Built in the test's event loop: the app's services (the producer replaced below) bind to it.
    for built in make_pipeline(tmp_path, detector):
        yield built


def publish(name: str, registry: str = "npm", version: str = "1.0.0") -> bytes:
    return orjson.dumps(
        {"name": name, "version": version, "created_date": "2026-11-25T10:00:00Z", "type": registry}
    )


def event_value(**overrides: Any) -> dict[str, Any]:
    """A validated event, the fields of an analysed record before its verdict."""
    return {
        "event_id": "0" * 32,
        "registry": "pypi",
        "name": "reqeusts",
        "version": "1.0.0",
        "created_date": "2026-11-25T10:00:00.000Z",
        "artifact_id": "",
        "schema_ver": "",
        "received_at": "2026-11-25T10:00:01.000Z",
        "source_partition": 0,
        "source_offset": 0,
        **overrides,
    }


def analysed_value(**overrides: Any) -> dict[str, Any]:
    return {**event_value(**overrides), "verdict": "clean", "threat_count": 0, "max_severity": ""}


def sent_values(mock: AsyncMock) -> list[Any]:
    return [call.kwargs["value"] for call in mock.await_args_list]


async def settle(seconds: float = 0.1) -> None:
    await asyncio.sleep(seconds)  # a detect batch closes after 5 ms, a packages batch after 50 ms


async def test_detect_sends_valid_events_analysed_and_dead_letters_invalid(pipeline: tuple) -> None:
    app_pipeline, producer, _ = pipeline
    agent = app_pipeline.app.agents["detect"]
    async with agent.test_context() as context:
        await context.put(publish("Left_Pad", "pypi"))
        await context.put(b"{oops")
        await settle()
    [(key, analysed, headers)] = producer.sent(app_pipeline.topics.analysed)
    assert (analysed["name"], analysed["registry"], analysed["verdict"]) == ("Left_Pad", "pypi", "clean")
    assert key == b"pypi:left-pad" and headers is None  # keyed by package; no threat, no header
    [record] = producer.values(app_pipeline.topics.dlq)
    assert record["reason"] == "not_json" and base64.b64decode(record["original_b64"]) == b"{oops"


async def test_detect_emits_threats_and_the_tables_threat_in_a_header(pipeline: tuple) -> None:
    app_pipeline, producer, _ = pipeline
    agent = app_pipeline.app.agents["detect"]
    async with agent.test_context() as context:
        await context.put(publish("reqeusts", "pypi"))
        await settle()
    [(key, threat, _)] = producer.sent(app_pipeline.topics.threats)
    assert key == b"pypi:reqeusts" and threat["threat"]["target"] == "requests"
    [(_, analysed, headers)] = producer.sent(app_pipeline.topics.analysed)
    assert threat["metadata"]["correlation_id"] == analysed["event_id"]
    assert analysed["verdict"] in ("suspicious", "malicious") and analysed["threat_count"] == 1
    [(name, last)] = headers
    assert name == LAST_THREAT_HEADER
    assert orjson.loads(last) == {
        "id": threat["id"],
        "type": threat["type"],
        "target": "requests",
        "severity": threat["severity"],
        "timestamp": threat["timestamp"],
    }


async def test_detector_failure_dead_letters_the_event_and_continues(tmp_path: Path) -> None:
    app_pipeline, producer, _ = next(make_pipeline(tmp_path, ExplodingDetector()))
    agent = app_pipeline.app.agents["detect"]
    async with agent.test_context() as context:
        await context.put(publish("x"))
        await context.put(publish("y"))
        await settle()
    records = producer.values(app_pipeline.topics.dlq)
    assert [r["reason"] for r in records] == ["internal_error", "internal_error"]
    assert "RuntimeError: boom" in records[0]["error"]
    # the original publish, as it came in: replayable once the detector is fixed
    assert orjson.loads(base64.b64decode(records[0]["original_b64"]))["name"] == "x"
    assert not producer.sent(app_pipeline.topics.analysed)


async def test_known_malicious_version_is_flagged_malicious(pipeline: tuple) -> None:
    app_pipeline, producer, _ = pipeline
    agent = app_pipeline.app.agents["detect"]
    async with agent.test_context() as context:
        for version in ("0.1.1", "0.1.2"):
            doc = {"name": "flatmap-stream", "version": version, "created_date": "2018-11-26T00:00:00Z"}
            await context.put(orjson.dumps({**doc, "type": "npm"}))
        await settle()
    threats = producer.values(app_pipeline.topics.threats)
    malicious = [t for t in threats if t["type"] == "malicious_package"]
    assert [(t["package"]["version"], t["severity"]) for t in malicious] == [("0.1.1", "critical")]
    verdicts = [a["verdict"] for a in producer.values(app_pipeline.topics.analysed)]
    assert verdicts[0] == "malicious" and verdicts[1] != "malicious"


def last_threat_header(target: str, event_id: str) -> list[tuple[str, bytes]]:
    last = {"id": event_id[:8], "type": "typosquat", "target": target, "severity": "high", "timestamp": "t"}
    return [(LAST_THREAT_HEADER, orjson.dumps(last))]


async def test_packages_folds_a_batch_per_package_and_writes_each_once(pipeline: tuple) -> None:
    app_pipeline, producer, _ = pipeline
    agent = app_pipeline.app.agents["packages"]
    key = b"pypi:reqeusts"
    async with agent.test_context() as context:
        await context.put(
            analysed_value(event_id="1" * 32), key=key, headers=last_threat_header("requests", "1" * 32)
        )
        await context.put(analysed_value(event_id="2" * 32, version="1.1.0"), key=key)
        await context.put(analysed_value(event_id="3" * 32, name="other"), key=b"pypi:other")
        await settle()
        state = app_pipeline.tables.packages["pypi:reqeusts"]
        other = app_pipeline.tables.packages["pypi:other"]
    assert state["versions_seen"] == ["1.0.0", "1.1.0"] and state["last_version"] == "1.1.0"
    assert state["last_event_id"] == "2" * 32
    assert state["last_threat"]["target"] == "requests"  # from the first event: the second had none
    assert other["last_threat"] is None
    changelog = app_pipeline.tables.packages.changelog_topic.get_topic_name()
    written = [(orjson.loads(k), orjson.loads(v)) for t, k, v, _, _ in producer.records if t == changelog]
    assert [k for k, _ in written] == ["pypi:reqeusts", "pypi:other"]  # one record per package
    assert written[0][1] == state


async def test_packages_skips_a_redelivered_event(pipeline: tuple) -> None:
    app_pipeline, producer, _ = pipeline
    agent = app_pipeline.app.agents["packages"]
    changelog = app_pipeline.tables.packages.changelog_topic.get_topic_name()
    async with agent.test_context() as context:
        await context.put(analysed_value(), key=b"pypi:reqeusts")
        await settle()
        await context.put(analysed_value(), key=b"pypi:reqeusts")  # at least once: the same again
        await settle()
    assert len([r for r in producer.records if r[0] == changelog]) == 1


async def test_sink_dead_letters_a_bad_row_and_writes_the_rest(pipeline: tuple) -> None:
    app_pipeline, _, dlq_send = pipeline
    finding = Threat("typosquat", "requests", "transposition", 0.9, "critical", "swaps 'ue'")
    good = threat_event(event_value(), finding, "2026-11-25T10:00:02.000Z")
    bad = {"id": "f" * 32, "package": {}}  # not a threat: threat_db_row cannot flatten it
    agent = app_pipeline.app.agents["sink_recording_threats"]
    async with agent.test_context() as context:
        await context.put(good, key=b"pypi:reqeusts")
        await context.put(bad, key=b"pypi:reqeusts")
        await asyncio.sleep(app_pipeline.settings.sink_batch_seconds + 0.5)  # let the batch close
    [sink] = app_pipeline.sinks
    assert isinstance(sink, RecordingSink)
    assert [row["threat_id"] for row in sink.threats] == [good["id"]]
    [record] = sent_values(dlq_send)
    assert record["reason"] == "internal_error" and "KeyError" in record["error"]


# -- failures an agent cannot handle: nothing after them is processed, the worker is crashed ----


class Outcome(Sensor):
    """Which messages the agents acked (Faust commits those) and why the worker was crashed.

    ``app.crash`` is recorded instead of stopping anything: a real worker stops, exits 1 and is
    restarted from its last commit (tests/integration/test_poison_and_shutdown.py runs that).
    """

    def __init__(self, app: Any) -> None:
        super().__init__()
        self.acked: list[Any] = []
        self.crashes: list[BaseException] = []
        app.sensors.add(self)

        async def crash(reason: BaseException) -> None:
            self.crashes.append(reason)

        object.__setattr__(app, "crash", crash)

    def on_message_out(self, tp: Any, offset: int, message: Any) -> None:
        self.acked.append(message.value)


async def test_detect_halts_without_acking_a_batch_it_could_not_dead_letter(pipeline: tuple) -> None:
    app_pipeline, producer, _ = pipeline
    outcome = Outcome(app_pipeline.app)
    producer.refuse[app_pipeline.topics.dlq.get_topic_name()] = RuntimeError("DLQ unreachable")
    agent = app_pipeline.app.agents["detect"]
    async with agent.test_context() as context:
        for value in (publish("first-pkg"), b"{oops", publish("after-pkg")):
            await context.put(value, wait=False)  # queued together: one batch
        await settle()
        await context.put(publish("next-pkg"), wait=False)  # behind the halt: never processed
        await settle()
    assert [v["name"] for v in producer.values(app_pipeline.topics.analysed)] == ["first-pkg", "after-pkg"]
    assert outcome.acked == []  # the whole batch comes again after the restart (sinks de-duplicate)
    assert [str(r) for r in outcome.crashes] == ["DLQ unreachable"]


async def test_detect_halts_when_an_output_topic_refuses_a_record(pipeline: tuple) -> None:
    app_pipeline, producer, _ = pipeline
    outcome = Outcome(app_pipeline.app)
    producer.refuse[app_pipeline.topics.analysed.get_topic_name()] = RuntimeError("analysed unreachable")
    agent = app_pipeline.app.agents["detect"]
    async with agent.test_context() as context:
        await context.put(publish("reqeusts", "pypi"))
        await settle()
        await context.put(publish("other-pkg"), wait=False)
        await settle()
    assert [t["package"]["name"] for t in producer.values(app_pipeline.topics.threats)] == ["reqeusts"]
    assert outcome.acked == []
    assert [str(r) for r in outcome.crashes] == ["analysed unreachable"]


async def test_packages_halts_without_storing_what_its_changelog_refused(pipeline: tuple) -> None:
    app_pipeline, producer, _ = pipeline
    outcome = Outcome(app_pipeline.app)
    packages = app_pipeline.tables.packages
    producer.refuse[packages.changelog_topic.get_topic_name()] = RuntimeError("changelog unreachable")
    agent = app_pipeline.app.agents["packages"]
    async with agent.test_context() as context:
        await context.put(analysed_value(), key=b"pypi:reqeusts")
        await settle()
        assert packages.get("pypi:reqeusts") is None  # redelivered, it must still find the old state
    assert outcome.acked == []
    assert [str(r) for r in outcome.crashes] == ["changelog unreachable"]


async def test_an_event_fetched_before_a_rebalance_is_neither_processed_nor_acked(pipeline: tuple) -> None:
    app_pipeline, producer, _ = pipeline
    outcome = Outcome(app_pipeline.app)
    agent = app_pipeline.app.agents["detect"]
    async with agent.test_context() as context:
        channel = context.stream().channel
        stale = context.to_message(None, publish("stale-pkg"), offset=0)
        stale.generation_id = app_pipeline.app.consumer_generation_id - 1  # an older consumer generation
        await channel.put(await channel.decode(stale))
        await context.put(publish("fresh-pkg"), wait=False)
        await settle()
    assert [v["name"] for v in producer.values(app_pipeline.topics.analysed)] == ["fresh-pkg"]
    assert outcome.acked == [publish("fresh-pkg")]  # the stale one is read again from the commit
    assert stale.acked  # done, so a stopping worker does not wait for it


async def test_sink_halts_when_a_bad_rows_dead_letter_cannot_be_sent(pipeline: tuple) -> None:
    app_pipeline, _, dlq_send = pipeline
    outcome = Outcome(app_pipeline.app)
    dlq_send.side_effect = RuntimeError("DLQ unreachable")
    finding = Threat("typosquat", "requests", "transposition", 0.9, "critical", "swaps 'ue'")
    good = threat_event(event_value(), finding, "2026-11-25T10:00:02.000Z")
    agent = app_pipeline.app.agents["sink_recording_threats"]
    async with agent.test_context() as context:
        await context.put(good, key=b"pypi:reqeusts")
        await context.put({"id": "f" * 32, "package": {}}, key=b"pypi:reqeusts")  # no threat event
        await asyncio.sleep(app_pipeline.settings.sink_batch_seconds + 0.5)
    [sink] = app_pipeline.sinks
    assert isinstance(sink, RecordingSink) and [row["threat_id"] for row in sink.threats] == [good["id"]]
    assert outcome.acked == []  # the batch is redelivered whole; the sink is idempotent
    assert [str(r) for r in outcome.crashes] == ["DLQ unreachable"]


class Refusing:
    """A sink write that always fails (a server error), or never returns (a hung connection)."""

    def __init__(self, hang: bool = False) -> None:
        self.hang = hang
        self.calls = 0
        self.cancelled = False

    async def __call__(self, rows: Sequence[dict[str, Any]]) -> None:
        self.calls += 1
        if not self.hang:
            raise StoreError("ClickHouse refused the insert")
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.cancelled = True
            raise


@pytest.mark.parametrize("hang", [False, True], ids=["failing", "hanging"])
async def test_sink_retry_gives_way_to_a_stopping_worker(hang: bool) -> None:
    worker = Service()
    await worker.start()
    write = Refusing(hang)
    task = asyncio.create_task(write_with_retry("events", write, [{"event_id": "e"}], worker))
    await asyncio.sleep(1.0)  # failing: a few retries, now in a back-off sleep; hanging: in the write
    assert not task.done()
    stopping = time.monotonic()
    await worker.stop()
    assert await asyncio.wait_for(task, 1.0) is False  # not written: the batch must not be acked
    assert time.monotonic() - stopping < 0.5
    assert (write.calls == 1 if hang else write.calls >= 2) and write.cancelled == hang


async def test_sink_metrics_tell_the_sinks_of_one_stream_apart() -> None:
    # The alert sink and ClickHouse both write the threats stream: counted under one label, alert
    # deliveries showed as ClickHouse rows ("Rows written to ClickHouse").
    worker = Service()
    await worker.start()

    async def accept(rows: Sequence[dict[str, Any]]) -> None:
        return None

    def rows(sink: str) -> float:
        return (
            REGISTRY.get_sample_value("typostream_sink_rows_total", {"table": "threats", "sink": sink}) or 0.0
        )

    before_alerts, before_clickhouse = rows("alerts"), rows("clickhouse")
    try:
        assert await write_with_retry("threats", accept, [{"id": "a"}, {"id": "b"}], worker, sink="alerts")
    finally:
        await worker.stop()
    assert rows("alerts") - before_alerts == 2
    assert rows("clickhouse") == before_clickhouse
