"""Poison messages and shutdown on the real embedded stack (Tansu, chDB, worker subprocesses).

- A message far over the size limit, in the middle of a batch, is dead-lettered (bounded record:
  a prefix, its size and sha256) and every valid message around it still reaches ClickHouse.
- ``typostream dlq --replay`` refuses a record that holds only a prefix of its original.
- A worker whose sink keeps failing stops within seconds of SIGTERM, commits nothing it did not
  write, and a restarted worker with a working sink writes everything.
- A message that can be neither processed nor dead-lettered stops the worker (exit 1) without
  committing it or anything behind it; the restarted worker processes them all.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import subprocess
import sys
import time
from collections.abc import Callable

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from jsonschema import Draft202012Validator

from tests.integration.conftest import (
    WorkerFactory,
    clickhouse_rows,
    consume_all,
    produce,
    publish,
)
from typostream.agents.domain.events import parse_publish
from typostream.schemas import load_json_schema
from typostream.streams.config import Settings
from typostream.streams.stack.processes import spawn
from typostream.streams.worker_process import WorkerProcess, settings_env

pytestmark = pytest.mark.integration

POISON_SIZE = 900_000


def valid_messages(n: int, prefix: str) -> list[bytes]:
    return [publish(f"{prefix}-acme-tool-{i}", "1.0.0", "npm" if i % 2 else "pypi", i) for i in range(n)]


def event_ids(messages: list[bytes]) -> set[str]:
    return {parse_publish(m, 1 << 20).event_id for m in messages}


def oversized_publish(size: int) -> bytes:
    """A publish that is valid in every way except its size (exactly ``size`` bytes)."""
    head = b'{"name":"big-blob","version":"1.0.0","created_date":"2026-11-25T10:00:00Z","type":"npm","pad":"'
    tail = b'"}'
    return head + b"x" * (size - len(head) - len(tail)) + tail


def settle(worker: WorkerProcess, done: Callable[[dict], bool], timeout_s: float) -> dict:
    """Wait until ``done(stats)``, or until nothing changed for 10 s, or the timeout; last stats."""
    deadline = time.monotonic() + timeout_s
    stats: dict = {}
    last, last_change = None, time.monotonic()
    while time.monotonic() < deadline:
        assert worker.alive(), f"worker died; log: {worker.log_path.read_text()[-3000:]}"
        stats = worker.stats() or stats
        if stats and done(stats):
            return stats
        if stats != last:
            last, last_change = dict(stats), time.monotonic()
        elif time.monotonic() - last_change > 10:
            return stats
        time.sleep(0.3)
    return stats


def cli(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "TYPOSTREAM_TOPIC_DLQ": settings.topic_dlq,
        "TYPOSTREAM_TOPIC_INPUT": settings.topic_input,
        "COLUMNS": "200",
    }
    return subprocess.run(
        [sys.executable, "-m", "typostream.streams.cli", *args, "--kafka", settings.kafka_bootstrap],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=settings.data_dir.parent,
    )


def test_oversized_message_mid_batch_loses_no_valid_message_and_is_not_replayed(
    pipeline_settings: Settings, worker_factory: WorkerFactory
) -> None:
    settings = pipeline_settings
    valid = valid_messages(1_000, "poison")
    poison = oversized_publish(POISON_SIZE)
    asyncio.run(produce(settings, [*valid[:500], poison, *valid[500:]]))
    worker = worker_factory(settings)

    stats = settle(worker, lambda s: s["clickhouse_events"] >= len(valid) and s["rejected"] >= 1, 120)
    assert worker.alive()
    assert worker.stop() == 0
    stored = {r["event_id"] for r in clickhouse_rows(settings, "SELECT event_id FROM events FINAL")}
    missing = event_ids(valid) - stored
    assert not missing, f"{len(missing)} valid events never reached ClickHouse; stats {stats}"
    assert len(stored) == len(valid)

    [record] = asyncio.run(consume_all(settings, settings.topic_dlq))
    Draft202012Validator(load_json_schema("dlq_record")).validate(record)
    assert record["reason"] == "oversized"
    assert record["original_size"] == POISON_SIZE
    assert record["original_sha256"] == hashlib.sha256(poison).hexdigest()
    assert record["original_truncated"] is True
    prefix = base64.b64decode(record["original_b64"])
    assert 0 < len(prefix) < POISON_SIZE and poison.startswith(prefix)
    assert len(orjson.dumps(record)) < 1_000_000  # the producer's message limit

    # Replaying a prefix would publish a different message: refused, with a line saying why.
    replay = cli(settings, "dlq", "--replay", "--yes")
    assert replay.returncode == 1, replay.stdout + replay.stderr
    assert "not replaying" in replay.stderr and "truncated" in replay.stderr
    assert f"{POISON_SIZE:,}" in replay.stderr or str(POISON_SIZE) in replay.stderr
    assert "replayed 0 record(s)" in replay.stdout
    assert len(asyncio.run(consume_all(settings, settings.topic_input))) == len(valid) + 1


REFUSE_INSERTS = "ALTER TABLE events ADD CONSTRAINT refuse_inserts CHECK 0"
ACCEPT_INSERTS = "ALTER TABLE events DROP CONSTRAINT refuse_inserts"


def chdb_command(settings: Settings, *statements: str) -> None:
    """Run DDL on the worker's chDB dir from another process (chDB locks a path per process)."""
    script = (
        "import sys\n"
        "from typostream.agents.adapters.clickhouse import ClickHouseConnection\n"
        "from typostream.agents.adapters.sinks.clickhouse import ClickHouseSink\n"
        "sink = ClickHouseSink(ClickHouseConnection.open(sys.argv[1], sys.argv[2]))\n"
        "sink.ensure_schema()\n"
        "for sql in sys.argv[3:]:\n"
        "    sink.connection.client.command(sql)\n"
        "sink.connection.close()\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, settings.clickhouse_dsn, str(settings.chdb_path), *statements],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_sigterm_stops_a_worker_whose_sink_keeps_failing_and_a_restart_writes_everything(
    pipeline_settings: Settings, worker_factory: WorkerFactory
) -> None:
    """ClickHouse refuses every insert into ``events`` (a server-side error the sink retries)."""
    settings = pipeline_settings
    chdb_command(settings, REFUSE_INSERTS)
    valid = valid_messages(600, "stuck")
    worker = worker_factory(settings)
    asyncio.run(produce(settings, valid))
    settle(worker, lambda s: s["analysed"] >= len(valid), 60)
    deadline = time.monotonic() + 30
    while "sink write to events failed" not in worker.log_path.read_text() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert "sink write to events failed" in worker.log_path.read_text()
    time.sleep(1.5)  # the sink is now in its retry loop

    started = time.monotonic()
    code = worker.stop(timeout_s=30)
    stop_s = time.monotonic() - started
    print(f"\n[sigterm] worker with a failing sink exited {code} after {stop_s:.2f} s")
    assert stop_s < 5.0, f"SIGTERM took {stop_s:.1f} s; log: {worker.log_path.read_text()[-2000:]}"
    assert code == 0

    chdb_command(settings, ACCEPT_INSERTS)
    worker = worker_factory(settings)
    settle(worker, lambda s: s["clickhouse_events"] >= len(valid), 90)
    assert worker.stop() == 0
    stored = {r["event_id"] for r in clickhouse_rows(settings, "SELECT event_id FROM events FINAL")}
    assert stored == event_ids(valid), f"lost {len(event_ids(valid) - stored)} events"


# Fault injection: in this worker subprocess every DLQ send raises (as when the DLQ topic cannot be
# reached); Kafka, chDB and Faust's acking and committing are the real ones.
DLQ_DOWN = """
import sys
from typostream.agents.stream.outbox import Outbox

async def dlq_down(self, topic, error, message, value=None):
    raise RuntimeError("the DLQ cannot be reached")

Outbox.dead_letter = dlq_down
from typostream.streams.cli import main
sys.argv = ["typostream", "worker"]
main()
"""


class DlqDownWorker(WorkerProcess):
    def start(self) -> DlqDownWorker:
        argv = [sys.executable, "-c", DLQ_DOWN]
        self.process = spawn(argv, self.log_path, die_with_parent=True, env=settings_env(self.settings))
        return self


async def committed_offsets(settings: Settings, topic: str) -> dict[int, int | None]:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap, group_id=settings.app_id, enable_auto_commit=False
    )
    await consumer.start()
    try:
        return {p: await consumer.committed(TopicPartition(topic, p)) for p in range(settings.partitions)}
    finally:
        await consumer.stop()


async def position_of(settings: Settings, topic: str, value: bytes) -> tuple[int, int]:
    """(partition, offset) of the record holding ``value``."""
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(settings.partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            for tp, records in (await consumer.getmany(timeout_ms=300)).items():
                for record in records:
                    if record.value == value:
                        return tp.partition, record.offset
        raise AssertionError(f"{value!r} not found on {topic}")
    finally:
        await consumer.stop()


def test_a_dead_letter_that_cannot_be_sent_stops_the_worker_without_committing_it(
    pipeline_settings: Settings, worker_factory: WorkerFactory
) -> None:
    settings = pipeline_settings
    valid = valid_messages(2_000, "halt")
    poison = b"this is not json"
    worker = DlqDownWorker(settings).start()
    worker.wait_ready(timeout_s=90)
    asyncio.run(produce(settings, valid[:1_000]))
    settle(worker, lambda s: s["validated"] >= 1_000, 60)
    time.sleep(4)  # Faust commits every 2.8 s: the offsets so far are committed
    asyncio.run(produce(settings, [poison, *valid[1_000:]]))
    deadline = time.monotonic() + 90
    while worker.alive() and time.monotonic() < deadline:
        time.sleep(0.2)
    log = worker.log_path.read_text()
    assert worker.returncode == 1, log[-3000:]  # crashed: its supervisor restarts it
    assert "cannot handle" in log and "the DLQ cannot be reached" in log
    partition, offset = asyncio.run(position_of(settings, settings.topic_input, poison))
    committed = asyncio.run(committed_offsets(settings, settings.topic_input))
    print(f"\n[dlq down] poison at {partition}:{offset}, committed {committed}")
    assert committed[partition] is not None and 0 < committed[partition] <= offset  # redelivered

    worker = worker_factory(settings)  # the DLQ works again
    settle(worker, lambda s: s["clickhouse_events"] >= len(valid) and s["rejected"] >= 1, 120)
    assert worker.stop() == 0
    stored = {r["event_id"] for r in clickhouse_rows(settings, "SELECT event_id FROM events FINAL")}
    assert stored == event_ids(valid)
    assert [r["reason"] for r in asyncio.run(consume_all(settings, settings.topic_dlq))] == ["not_json"]
