"""Agents in Faust's test context: memory store, no broker; outbound topics are recorded."""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any
from unittest.mock import AsyncMock

import orjson
import pytest
from faust import Sensor
from mode import Service

from typostream.agents.adapters.sinks.base import Sink, StreamName
from typostream.agents.domain.assess import Assessor, load_known
from typostream.agents.domain.detection import Detector, Threat
from typostream.agents.domain.errors import StoreError
from typostream.agents.domain.messages import threat_db_rows, threat_event
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


def make_pipeline(tmp_path: Path, detector: Any) -> Iterator[tuple[WorkerApp, dict[str, AsyncMock]]]:
    assessor = Assessor(detector, load_known())
    pipeline = build_app(
        Settings(data_dir=tmp_path), assessor=assessor, sinks=[RecordingSink()], store="memory://"
    )
    sends = {}
    for name in ("events", "analysed", "threats", "dlq"):
        topic = getattr(pipeline.topics, name)
        sends[name] = AsyncMock()
        object.__setattr__(topic, "send", sends[name])
    yield pipeline, sends


@pytest.fixture
def pipeline(tmp_path: Path, detector: Detector) -> Iterator[tuple[WorkerApp, dict[str, AsyncMock]]]:
    yield from make_pipeline(tmp_path, detector)


def publish(name: str, registry: str = "npm", version: str = "1.0.0") -> bytes:
    return orjson.dumps(
        {"name": name, "version": version, "created_date": "2026-11-25T10:00:00Z", "type": registry}
    )


def event_value(**overrides: Any) -> dict[str, Any]:
    """A validated event as the detect agent receives it from ``typostream.events``."""
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


def sent_values(mock: AsyncMock) -> list[Any]:
    return [call.kwargs["value"] for call in mock.await_args_list]


async def test_validate_forwards_valid_and_dead_letters_invalid(pipeline: tuple) -> None:
    app_pipeline, sends = pipeline
    agent = app_pipeline.app.agents["validate"]
    async with agent.test_context() as context:
        await context.put(publish("Left_Pad", "pypi"))
        await context.put(b"{oops")
    [event] = sent_values(sends["events"])
    assert (event["name"], event["registry"]) == ("Left_Pad", "pypi")
    assert sends["events"].await_args.kwargs["key"] == "pypi:left-pad"
    [record] = sent_values(sends["dlq"])
    assert record["reason"] == "not_json"


async def test_detect_emits_threats_updates_table_and_analysed(pipeline: tuple) -> None:
    app_pipeline, sends = pipeline
    value = event_value()
    agent = app_pipeline.app.agents["detect"]
    async with agent.test_context() as context:
        await context.put(value, key=b"pypi:reqeusts")
        state = app_pipeline.tables.packages["pypi:reqeusts"]
    threats = sent_values(sends["threats"])
    assert [t["threat"]["target"] for t in threats] == ["requests"]
    assert threats[0]["metadata"]["correlation_id"] == "0" * 32
    [analysed] = sent_values(sends["analysed"])
    assert analysed["verdict"] in ("suspicious", "malicious") and analysed["threat_count"] == 1
    assert state["versions_seen"] == ["1.0.0"] and state["last_threat"]["target"] == "requests"


async def test_detector_failure_dead_letters_the_event_and_continues(tmp_path: Path) -> None:
    app_pipeline, sends = next(make_pipeline(tmp_path, ExplodingDetector()))
    value = event_value(event_id="1" * 32, registry="npm", name="x", version="1")
    agent = app_pipeline.app.agents["detect"]
    async with agent.test_context() as context:
        await context.put(value, key=b"npm:x")
        await context.put({**value, "name": "y"}, key=b"npm:y")
    records = sent_values(sends["dlq"])
    assert [r["reason"] for r in records] == ["internal_error", "internal_error"]
    assert "RuntimeError: boom" in records[0]["error"]
    assert orjson.loads(base64.b64decode(records[0]["original_b64"]))["name"] == "x"
    assert not sends["analysed"].await_args_list


async def test_known_malicious_version_is_flagged_malicious(pipeline: tuple) -> None:
    app_pipeline, sends = pipeline
    value = event_value(
        event_id="2" * 32,
        registry="npm",
        name="flatmap-stream",
        version="0.1.1",
        created_date="2018-11-26T00:00:00.000Z",
    )
    agent = app_pipeline.app.agents["detect"]
    async with agent.test_context() as context:
        await context.put(value, key=b"npm:flatmap-stream")
        await context.put({**value, "event_id": "3" * 32, "version": "0.1.2"}, key=b"npm:flatmap-stream")
    malicious = [t for t in sent_values(sends["threats"]) if t["type"] == "malicious_package"]
    assert [(t["package"]["version"], t["severity"]) for t in malicious] == [("0.1.1", "critical")]
    verdicts = [a["verdict"] for a in sent_values(sends["analysed"])]
    assert verdicts[0] == "malicious" and verdicts[1] != "malicious"


async def test_sink_dead_letters_a_bad_row_and_writes_the_rest(pipeline: tuple) -> None:
    app_pipeline, sends = pipeline
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
    [record] = sent_values(sends["dlq"])
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


async def test_validate_halts_without_acking_what_it_could_not_dead_letter(pipeline: tuple) -> None:
    app_pipeline, sends = pipeline
    outcome = Outcome(app_pipeline.app)
    sends["dlq"].side_effect = RuntimeError("DLQ unreachable")
    agent = app_pipeline.app.agents["validate"]
    first, after = publish("first-pkg"), publish("after-pkg")
    async with agent.test_context() as context:
        for value in (first, b"{oops", after):
            await context.put(value)
        await asyncio.sleep(0.1)  # the batch closes after 5 ms
    assert [v["name"] for v in sent_values(sends["events"])] == ["first-pkg"]
    assert outcome.acked == [first]  # not the message the DLQ refused, nor the one behind it
    assert [str(r) for r in outcome.crashes] == ["DLQ unreachable"]


async def test_detect_halts_when_an_output_topic_refuses_a_send(pipeline: tuple) -> None:
    app_pipeline, sends = pipeline
    outcome = Outcome(app_pipeline.app)
    sends["analysed"].side_effect = RuntimeError("analysed topic unreachable")
    agent = app_pipeline.app.agents["detect"]
    async with agent.test_context() as context:
        await context.put(event_value(), key=b"pypi:reqeusts")
        await context.put(event_value(event_id="9" * 32, name="other-pkg"), key=b"pypi:other-pkg", wait=False)
        await asyncio.sleep(0.2)
    assert sends["analysed"].await_count == 1  # the second event was not processed...
    assert outcome.acked == []  # ...and neither event was acked
    assert [str(r) for r in outcome.crashes] == ["analysed topic unreachable"]


async def test_sink_halts_when_a_bad_rows_dead_letter_cannot_be_sent(pipeline: tuple) -> None:
    app_pipeline, sends = pipeline
    outcome = Outcome(app_pipeline.app)
    sends["dlq"].side_effect = RuntimeError("DLQ unreachable")
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
