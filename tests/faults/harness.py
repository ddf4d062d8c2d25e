"""The fault suite's common parts: profiles, producing a replay, checking what came out, the ledger.

After a fault, :func:`collect` reads everything the pipeline made of a :class:`~inputs.Replay`
and :class:`Outcome` compares it with what it must be:

- every valid input's event id exactly once in ClickHouse ``events`` (raw rows, not ``FINAL``);
- the DLQ holds exactly the invalid inputs, each with its reason (by sha256 of the original and
  by count per reason, one per source offset: a redelivered dead letter is counted apart);
- every threat the detector finds for the valid inputs on ``typostream.threats`` at least once
  with its stable id (none with another id), and exactly once in ClickHouse ``threats``.

:func:`record` adds the outcome to the ledger printed at the end of the session (``conftest.py``)
and written to ``benchmarks/results/faults.md``.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from tests.faults.inputs import Replay
from typostream.agents.domain.messages import threat_id_for
from typostream.streams.components import build_assessor
from typostream.streams.config import Settings
from typostream.streams.topics import ensure_topics
from typostream.streams.worker_process import WorkerProcess

PRODUCER_MAX_BYTES = 4 << 20  # the suite sends 1 MiB messages on purpose
STOP_TIMEOUT_S = 20.0  # SIGTERM must stop a worker within seconds (then it gets SIGKILL)


@dataclass(frozen=True)
class Profile:
    """How hard each fault pushes. ``short`` runs in CI (a few seconds a fault), ``full`` locally."""

    name: str
    events: int
    """valid publishes in a replay"""
    kills: int
    """SIGKILLs during the kill replay"""
    rounds: int
    """copies of the malformed catalogue in a replay"""
    rate: float
    """publishes per second of a replay produced while faults happen"""
    repetitions: int
    """how often the broker / Redis / ClickHouse fault is repeated in one run"""
    hypothesis_examples: int
    api_examples: int
    """schemathesis examples per API operation"""


PROFILES = {
    "short": Profile("short", events=1_200, kills=3, rounds=1, rate=300.0, repetitions=1,
                     hypothesis_examples=400, api_examples=25),
    "full": Profile("full", events=20_000, kills=10, rounds=4, rate=1_500.0, repetitions=3,
                    hypothesis_examples=10_000, api_examples=300),
}  # fmt: skip


def profile() -> Profile:
    name = os.environ.get("TYPOSTREAM_FAULTS", "short").strip().lower() or "short"
    if name not in PROFILES:
        raise ValueError(f"TYPOSTREAM_FAULTS={name!r}: use one of {', '.join(PROFILES)}")
    return PROFILES[name]


# ---------------------------------------------------------------- producing


async def _send_all(settings: Settings, values: Sequence[bytes]) -> None:
    await ensure_topics(settings)
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap, linger_ms=5, max_request_size=PRODUCER_MAX_BYTES
    )
    await producer.start()
    try:
        futures = [await producer.send(settings.topic_input, value) for value in values]
        for future in futures:
            await future
    finally:
        await producer.stop()


def produce(settings: Settings, values: Sequence[bytes]) -> None:
    """Send ``values`` to the input topic, in order, and wait until the broker has them all."""
    asyncio.run(_send_all(settings, values))


class PacedProducer(threading.Thread):
    """Sends a replay at ``rate`` messages a second from a thread, while the test injects faults."""

    def __init__(self, settings: Settings, values: Sequence[bytes], rate: float, chunk: int = 50) -> None:
        super().__init__(daemon=True, name="paced-producer")
        self.settings, self.values, self.rate, self.chunk = settings, list(values), rate, chunk
        self.sent = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            asyncio.run(self._run())
        except BaseException as exc:  # surfaced by join()
            self.error = exc

    async def _run(self) -> None:
        await ensure_topics(self.settings)
        producer = AIOKafkaProducer(
            bootstrap_servers=self.settings.kafka_bootstrap, linger_ms=5, max_request_size=PRODUCER_MAX_BYTES
        )
        await producer.start()
        try:
            started = time.monotonic()
            for start in range(0, len(self.values), self.chunk):
                chunk = self.values[start : start + self.chunk]
                futures = [await producer.send(self.settings.topic_input, v) for v in chunk]
                for future in futures:
                    await future
                self.sent += len(chunk)
                ahead = self.sent / self.rate - (time.monotonic() - started)
                if ahead > 0:
                    await asyncio.sleep(ahead)
        finally:
            await producer.stop()

    @property
    def done(self) -> bool:
        return not self.is_alive()

    def finish(self, timeout_s: float = 300) -> None:
        self.join(timeout_s)
        assert not self.is_alive(), f"producer still running after {timeout_s}s ({self.sent} sent)"
        if self.error is not None:
            raise self.error
        assert self.sent == len(self.values)


# ---------------------------------------------------------------- reading what came out


async def _read_topic(settings: Settings, topic: str, idle_s: float = 1.0) -> list[dict[str, Any]]:
    """Every record of ``topic`` from the beginning (reads until nothing arrives for ``idle_s``)."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap, enable_auto_commit=False, fetch_max_wait_ms=100
    )
    await consumer.start()
    try:
        partitions = consumer.partitions_for_topic(topic) or set(range(settings.partitions))
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        values: list[dict[str, Any]] = []
        idle_until = time.monotonic() + idle_s + 2.0
        while time.monotonic() < idle_until:
            batch = await consumer.getmany(timeout_ms=200)
            for records in batch.values():
                values.extend(orjson.loads(r.value) for r in records)
                idle_until = time.monotonic() + idle_s
        return values
    finally:
        await consumer.stop()


def read_topic(settings: Settings, topic: str) -> list[dict[str, Any]]:
    return asyncio.run(_read_topic(settings, topic))


def api_query(worker: WorkerProcess, sql: str, timeout_s: float = 30.0) -> list[list[Any]]:
    """Rows of a read-only query through the worker's ``POST /api/v1/query``."""
    headers = {"Content-Type": "application/json"}
    if worker.settings.api_token:
        headers["Authorization"] = f"Bearer {worker.settings.api_token}"
    request = urllib.request.Request(
        worker.base_url + "/api/v1/query", data=orjson.dumps({"sql": sql}), headers=headers, method="POST"
    )
    with urllib.request.urlopen(request, timeout=timeout_s) as response:
        rows: list[list[Any]] = orjson.loads(response.read())["rows"]
        return rows


def chdb_query(settings: Settings, sql: str) -> list[list[Any]]:
    """Rows of a query on a stopped worker's chDB (another process: chDB locks a path per process)."""
    result = subprocess.run(
        [sys.executable, "-m", "typostream.streams.cli", "query", sql, "--format", "json",
         "--clickhouse", settings.clickhouse_dsn, "--data-dir", str(settings.data_dir)],
        capture_output=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr.decode()
    return [list(orjson.loads(line).values()) for line in result.stdout.splitlines() if line.strip()]


EVENT_COUNTS = "SELECT event_id, count() FROM events GROUP BY event_id"
THREAT_COUNTS = "SELECT threat_id, count() FROM threats GROUP BY threat_id"


def expected_threat_ids(settings: Settings, replay: Replay) -> set[str]:
    """The ids the detector's threats for the replay's valid inputs must carry (same Assessor as
    the worker's, built from the same settings)."""
    assessor = build_assessor(settings)
    ids: set[str] = set()
    for message in replay.valid:
        doc = orjson.loads(message.raw)
        result = assessor.assess(doc["name"], doc["type"], doc["version"])
        ids.update(threat_id_for(str(message.event_id), t) for t in result.threats)
    return ids


@dataclass
class Outcome:
    """What the pipeline made of a replay, and every way it differs from what it must be."""

    sent: int
    valid: int
    invalid: int
    processed: int = 0
    dlq: int = 0
    lost: int = 0
    duplicated: int = 0
    dlq_redelivered: int = 0
    threats_expected: int = 0
    threats_stored: int = 0
    threats_on_topic: int = 0
    stop_note: str = ""
    dlq_reasons: Counter[str] = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def judge(
    replay: Replay,
    event_counts: Iterable[Sequence[Any]],
    threat_counts: Iterable[Sequence[Any]],
    dlq_records: Sequence[dict[str, Any]],
    threat_records: Sequence[dict[str, Any]],
    threat_ids: set[str],
    input_topic: str,
) -> Outcome:
    outcome = Outcome(sent=len(replay), valid=len(replay.valid), invalid=len(replay.invalid))
    problems = outcome.problems

    stored = {str(row[0]): int(row[1]) for row in event_counts}
    expected = replay.event_ids
    missing = expected - set(stored)
    unexpected = set(stored) - expected
    outcome.processed = len(expected & set(stored))
    outcome.duplicated = sum(n - 1 for n in stored.values() if n > 1)
    if missing:
        problems.append(f"{len(missing)} valid event(s) not in ClickHouse, e.g. {sorted(missing)[:3]}")
    if unexpected:
        problems.append(f"{len(unexpected)} event id(s) in ClickHouse match no input")
    if outcome.duplicated:
        problems.append(f"{outcome.duplicated} duplicate event row(s) in ClickHouse")

    # One dead letter per source offset of the input topic (a redelivery repeats the offset).
    by_position: dict[tuple[int, int], dict[str, Any]] = {}
    foreign = 0
    for record in dlq_records:
        if record.get("source_topic") != input_topic:
            foreign += 1
            continue
        position = (int(record["source_partition"]), int(record["source_offset"]))
        by_position.setdefault(position, record)
    outcome.dlq_redelivered = len(dlq_records) - foreign - len(by_position)
    got = Counter((r["original_sha256"], r["reason"]) for r in by_position.values())
    want = replay.dead_letters()
    outcome.dlq = sum(got.values())
    outcome.dlq_reasons = Counter(r["reason"] for r in by_position.values())
    dlq_missing, dlq_extra = want - got, got - want
    if foreign:
        reasons = Counter(r.get("reason") for r in dlq_records if r.get("source_topic") != input_topic)
        problems.append(f"{foreign} dead letter(s) from internal topics: {dict(reasons)}")
    if dlq_missing:
        reasons = Counter(r for _, r in dlq_missing.elements())
        problems.append(f"{sum(dlq_missing.values())} invalid input(s) missing from the DLQ (or with "
                        f"another reason): {dict(reasons)}")  # fmt: skip
    if dlq_extra:
        problems.append(f"{sum(dlq_extra.values())} DLQ record(s) match no invalid input: "
                        f"{dict(Counter(r for _, r in dlq_extra.elements()))}")  # fmt: skip
    if outcome.dlq_reasons != replay.reasons():
        problems.append(f"DLQ per reason {dict(outcome.dlq_reasons)} != sent {dict(replay.reasons())}")
    outcome.lost = len(missing) + sum(dlq_missing.values())

    threats_stored = {str(row[0]): int(row[1]) for row in threat_counts}
    on_topic = Counter(str(t["id"]) for t in threat_records)
    outcome.threats_expected = len(threat_ids)
    outcome.threats_stored = len(threats_stored.keys() & threat_ids)
    outcome.threats_on_topic = len(on_topic.keys() & threat_ids)
    if not threat_ids:
        problems.append("the replay has no expected threats: the check would prove nothing")
    if threat_ids - on_topic.keys():
        problems.append(
            f"{len(threat_ids - on_topic.keys())} expected threat id(s) never on the threats topic"
        )
    if on_topic.keys() - threat_ids:
        problems.append(
            f"{len(on_topic.keys() - threat_ids)} threat id(s) on the topic match no expected threat"
        )
    if threat_ids - threats_stored.keys():
        problems.append(f"{len(threat_ids - threats_stored.keys())} expected threat(s) not in ClickHouse")
    if threats_stored.keys() - threat_ids:
        problems.append(f"{len(threats_stored.keys() - threat_ids)} threat row(s) match no expected threat")
    threat_dupes = sum(n - 1 for n in threats_stored.values() if n > 1)
    if threat_dupes:
        problems.append(f"{threat_dupes} duplicate threat row(s) in ClickHouse")
        outcome.duplicated += threat_dupes
    return outcome


def collect(
    settings: Settings,
    replay: Replay,
    threat_ids: set[str],
    worker: WorkerProcess | None = None,
    timeout_s: float = 120.0,
) -> Outcome:
    """Poll until the outcome is right or ``timeout_s`` passes; the last outcome either way.

    ClickHouse is read through ``worker``'s query API, or (no worker) by opening its chDB.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        if worker is not None:
            assert worker.alive(), f"worker died; log: {worker.log_path.read_text()[-3000:]}"
            events, threats = api_query(worker, EVENT_COUNTS), api_query(worker, THREAT_COUNTS)
        else:
            events, threats = chdb_query(settings, EVENT_COUNTS), chdb_query(settings, THREAT_COUNTS)
        outcome = judge(
            replay,
            events,
            threats,
            read_topic(settings, settings.topic_dlq),
            read_topic(settings, settings.topic_threats),
            threat_ids,
            settings.topic_input,
        )
        if outcome.ok or time.monotonic() > deadline or worker is None:
            return outcome
        time.sleep(1.0)


def stop(worker: WorkerProcess, outcome: Outcome, timeout_s: float = STOP_TIMEOUT_S) -> None:
    """SIGTERM the worker after a fault: it must exit 0 within ``timeout_s`` (else a problem)."""
    started = time.monotonic()
    code = worker.stop(timeout_s=timeout_s)
    took = time.monotonic() - started
    outcome.stop_note = f"SIGTERM: exit {code} in {took:.1f} s"
    if code != 0:
        hung = f" (still running after {timeout_s:.0f} s: SIGKILLed)" if code == -9 else ""
        tail = worker.log_path.read_text(errors="replace")[-2000:]
        outcome.problems.append(f"SIGTERM: exit {code} after {took:.1f} s{hung}; log tail:\n{tail}")


def wait_stored(worker: WorkerProcess, at_least: int, timeout_s: float = 120.0, poll_s: float = 0.2) -> None:
    """Until ClickHouse holds ``at_least`` events (the worker's ``/api/v1/stats``)."""
    deadline = time.monotonic() + timeout_s
    stats: dict[str, float] = {}
    while time.monotonic() < deadline:
        assert worker.alive(), f"worker died; log: {worker.log_path.read_text()[-3000:]}"
        stats = worker.stats() or stats
        if (stats.get("clickhouse_events") or 0) >= at_least:
            return
        time.sleep(poll_s)
    raise AssertionError(f"ClickHouse has < {at_least} events after {timeout_s}s; stats {stats}")


# ---------------------------------------------------------------- the ledger


@dataclass
class LedgerRow:
    fault: str
    repetitions: int
    sent: int | str
    processed: int | str
    dlq: int | str
    lost: int | str
    duplicated: int | str
    notes: str = ""


LEDGER: list[LedgerRow] = []


def record(fault: str, repetitions: int, outcome: Outcome, notes: str = "") -> None:
    """Add ``outcome`` to the session's table (before asserting, so a failure shows in it too)."""
    extra = []
    if outcome.dlq_redelivered:
        extra.append(f"{outcome.dlq_redelivered} dead letters redelivered (same offset)")
    extra.append(f"threats {outcome.threats_stored}/{outcome.threats_expected} stored")
    if outcome.stop_note:
        extra.append(outcome.stop_note)
    if outcome.problems:
        extra.append("FAILED: " + "; ".join(p.split("; log tail:")[0] for p in outcome.problems))
    LEDGER.append(
        LedgerRow(
            fault,
            repetitions,
            outcome.sent,
            outcome.processed,
            outcome.dlq,
            outcome.lost,
            outcome.duplicated,
            "; ".join(filter(None, [notes, *extra])),
        )
    )


def record_row(row: LedgerRow) -> None:
    LEDGER.append(row)


def assert_exactly_once(outcome: Outcome) -> None:
    assert outcome.ok, "\n".join(outcome.problems)
    assert outcome.lost == 0 and outcome.duplicated == 0
    assert outcome.processed == outcome.valid and outcome.dlq == outcome.invalid
