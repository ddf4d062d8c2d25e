"""A broker that restarts or loses its data, on real Tansu subprocesses (each test has its own stack).

- memory storage forgets everything on restart: the worker used to exit with Faust's
  ConsistencyError on every start (reproduced with ``recover_broker_loss=False``); now it drops the
  table partitions and committed offsets that are ahead of the broker and goes on;
- while the broker is down the worker logs a line every few seconds, not ~80 a second;
- a restart mid-stream: memory storage loses what the broker held and the worker had not read
  yet (nothing else); durable storage loses nothing.
"""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer

from tests.integration.conftest import clickhouse_rows, produce, publish
from typostream.streams.config import Settings
from typostream.streams.stack import EmbeddedStack, StackState
from typostream.streams.stack.processes import free_port
from typostream.streams.worker_process import WorkerProcess

pytestmark = pytest.mark.integration

TYPOSTREAM = [sys.executable, "-m", "typostream.streams.cli"]
RECOVERED = "the broker lost data"


def stack_settings(state: StackState, tmp_path: Path, **overrides: object) -> Settings:
    base = Settings.from_env({}, data_dir=state.data_dir)
    return base.replace(
        app_id=f"typostream-{uuid.uuid4().hex[:6]}",
        clickhouse_dsn=f"chdb://{tmp_path / 'clickhouse'}",
        web_port=free_port(),
        sink_batch_seconds=0.2,
        **overrides,
    )


@pytest.fixture
def memory_stack(tmp_path: Path) -> Iterator[EmbeddedStack]:
    stack = EmbeddedStack(tmp_path / "stack", die_with_parent=True)
    stack.up()
    yield stack
    stack.down()


@pytest.fixture
def durable_stack(tmp_path: Path) -> Iterator[EmbeddedStack]:
    stack = EmbeddedStack(tmp_path / "stack", die_with_parent=True, durable=True)
    stack.up()
    yield stack
    stack.down()


@pytest.fixture
def workers() -> Iterator[list[WorkerProcess]]:
    started: list[WorkerProcess] = []
    yield started
    for worker in started:
        worker.kill()


def start_worker(workers: list[WorkerProcess], settings: Settings, ready: bool = True) -> WorkerProcess:
    worker = WorkerProcess(settings).start()
    workers.append(worker)
    if ready:
        worker.wait_ready(timeout_s=90)
    return worker


def events(prefix: str, n: int) -> list[bytes]:
    return [publish(f"{prefix}-internal-tool-{i}", "1.0.0", "npm" if i % 2 else "pypi", i) for i in range(n)]


def wait_stats(worker: WorkerProcess, key: str, at_least: float, timeout_s: float = 120) -> dict[str, float]:
    deadline = time.monotonic() + timeout_s
    stats: dict[str, float] = {}
    while time.monotonic() < deadline:
        assert worker.alive(), f"worker died; log: {worker.log_path.read_text()[-3000:]}"
        stats = worker.stats() or stats
        if stats.get(key, 0) >= at_least:
            return stats
        time.sleep(0.3)
    raise AssertionError(f"{key} < {at_least} after {timeout_s}s; last stats {stats}")


def log_lines(worker: WorkerProcess, since: int = 0) -> list[str]:
    text = worker.log_path.read_bytes()[since:].decode(errors="replace")
    return [line for line in text.splitlines() if line.startswith("ts=")]


def test_consistency_error_on_an_emptied_broker_then_the_worker_heals_itself(
    memory_stack: EmbeddedStack, tmp_path: Path, workers: list[WorkerProcess]
) -> None:
    state = memory_stack.status()
    assert state is not None
    settings = stack_settings(state, tmp_path)
    worker = start_worker(workers, settings)
    asyncio.run(produce(settings, events("before", 400)))
    wait_stats(worker, "validated", 400)
    assert worker.stop() == 0
    memory_stack.restart_broker()  # memory storage: topics, records and offsets are gone

    # The old code path (no recovery): Faust refuses to start, on every start.
    old = WorkerProcess(settings.replace(recover_broker_loss=False), tmp_path / "old-worker.log").start()
    workers.append(old)
    code = old.process.wait(120) if old.process else None
    old_log = old.log_path.read_text()
    assert code not in (0, None)
    assert "ConsistencyError" in old_log and "is higher" in old_log

    # With recovery: one warning, the table is rebuilt from the (empty) changelog, new events flow.
    worker = start_worker(workers, settings)
    asyncio.run(produce(settings, events("after", 300)))
    stats = wait_stats(worker, "validated", 300)
    warnings = [line for line in log_lines(worker) if RECOVERED in line]
    assert len(warnings) == 1, warnings
    assert "level=WARNING" in warnings[0] and "dropped local table partitions" in warnings[0]
    assert "ConsistencyError" not in worker.log_path.read_text()
    assert stats["validated"] == 300
    assert worker.stop() == 0


def _cli(*args: str, data_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*TYPOSTREAM, *args, "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
        env={k: v for k, v in __import__("os").environ.items() if not k.startswith("TYPOSTREAM_")},
    )


def test_stack_down_and_up_in_memory_mode_then_the_worker_processes_new_events(
    tmp_path: Path, workers: list[WorkerProcess]
) -> None:
    data_dir = tmp_path / "data"
    _cli("stack", "up", data_dir=data_dir)
    try:
        state = StackState.load(data_dir)
        assert state is not None and not state.durable
        settings = stack_settings(state, tmp_path)
        worker = start_worker(workers, settings)
        asyncio.run(produce(settings, events("first", 300)))
        wait_stats(worker, "validated", 300)
        assert worker.stop() == 0

        _cli("stack", "down", data_dir=data_dir)
        up = _cli("stack", "up", data_dir=data_dir)
        assert "broker storage: memory" in up.stderr
        state = StackState.load(data_dir)
        assert state is not None
        settings = settings.replace(kafka_bootstrap=state.kafka_bootstrap, redis_url=state.redis_url)
        worker = start_worker(workers, settings)
        asyncio.run(produce(settings, events("second", 250)))
        assert wait_stats(worker, "validated", 250)["validated"] == 250
        assert len([line for line in log_lines(worker) if RECOVERED in line]) == 1
        assert worker.stop() == 0
    finally:
        _cli("stack", "down", data_dir=data_dir)


def test_broker_down_logs_at_most_a_line_every_few_seconds(
    durable_stack: EmbeddedStack, tmp_path: Path, workers: list[WorkerProcess]
) -> None:
    state = durable_stack.status()
    assert state is not None
    settings = stack_settings(state, tmp_path)
    worker = start_worker(workers, settings)
    asyncio.run(produce(settings, events("warmup", 50)))
    wait_stats(worker, "validated", 50)
    time.sleep(2)
    mark = worker.log_path.stat().st_size
    started = time.monotonic()
    durable_stack.restart_broker(pause_s=12)  # the broker is down for 12 s
    down_s = time.monotonic() - started
    lines = log_lines(worker, mark)
    print(f"\nbroker down {down_s:.1f}s: {len(lines)} log lines ({len(lines) / down_s:.2f}/s)")
    for line in lines:
        print("  ", line[:200])
    # before the fix: ~800 lines in 10 s (aiokafka connection errors, ~80/s)
    assert len(lines) <= down_s / 5 + 3
    assert worker.alive()
    # and it goes on afterwards: the durable broker kept everything
    asyncio.run(produce(settings, events("afterwards", 50)))
    wait_stats(worker, "validated", 100)


@dataclass
class StreamLog:
    """What a producer that keeps sending through a broker restart managed to send, and when."""

    acked: dict[str, float] = field(default_factory=dict)  # package name -> wall-clock ack time
    failures: int = 0


def _stream(
    settings: Settings, names: list[str], rate_per_s: float, out: StreamLog, stop: threading.Event
) -> None:
    async def run() -> None:
        producer = AIOKafkaProducer(
            bootstrap_servers=settings.kafka_bootstrap, linger_ms=5, request_timeout_ms=5000
        )
        await producer.start()
        try:
            batch = max(1, int(rate_per_s / 10))
            for start in range(0, len(names), batch):
                chunk = names[start : start + batch]
                while not stop.is_set():
                    try:
                        futures = [
                            await producer.send(settings.topic_input, publish(n, "1.0.0", "npm", 0))
                            for n in chunk
                        ]
                        for future in futures:
                            await future
                        break
                    except Exception:  # broker down: send the chunk again (same event ids)
                        out.failures += 1
                        await asyncio.sleep(0.5)
                out.acked.update(dict.fromkeys(chunk, time.time()))
                await asyncio.sleep(0.1)
        finally:
            await producer.stop()

    asyncio.run(run())


MEMORY_RESTART_RACE = pytest.mark.xfail(
    strict=False,
    reason="Tansu (memory) acks produce requests for a topic that vanished with the restart, then never "
    "serves those offsets and fails later produces to them (UnknownError); restart_broker recreates the "
    "topic layout at once, which narrows but does not close that window for clients already sending",
)


@pytest.mark.parametrize(
    "durable", [pytest.param(False, marks=MEMORY_RESTART_RACE), True], ids=["memory", "durable"]
)
def test_broker_restart_mid_stream_counts_sent_processed_lost(
    tmp_path: Path, workers: list[WorkerProcess], durable: bool
) -> None:
    stack = EmbeddedStack(tmp_path / "stack", die_with_parent=True, durable=durable)
    state = stack.up()
    try:
        settings = stack_settings(state, tmp_path)
        worker = start_worker(workers, settings)
        names = [f"restart-{i}-tool" for i in range(3000)]
        sent = StreamLog()
        stop = threading.Event()
        producer = threading.Thread(target=_stream, args=(settings, names, 300.0, sent, stop), daemon=True)
        producer.start()
        while len(sent.acked) < 1200:
            time.sleep(0.1)
        stack.restart_broker(pause_s=1.0)
        restarted_at = time.time()
        producer.join(180)
        assert not producer.is_alive(), f"producer stuck after {len(sent.acked)} sends"
        if not durable:  # the worker restarts itself (same process) and rebuilds its state first
            deadline = time.monotonic() + 120
            while not [line for line in log_lines(worker) if RECOVERED in line]:
                assert time.monotonic() < deadline, worker.log_path.read_text()[-3000:]
                time.sleep(0.5)
        # then drain: until the ClickHouse count stays put for 10 s (or everything is in, durable)
        last, stable_since = -1.0, time.monotonic()
        while time.monotonic() - stable_since < 10:
            assert worker.alive(), worker.log_path.read_text()[-3000:]
            stats = worker.stats()
            count = -1.0 if stats is None else stats.get("clickhouse_events", -1)
            if count != last or stats is None:
                last, stable_since = count, time.monotonic()
            if durable and count >= len(names):
                break
            time.sleep(0.5)
        late = events("late", 200)  # after the recovery everything flows again
        asyncio.run(produce(settings, late))
        wait_stats(worker, "validated", len(late) if not durable else len(names) + len(late))
        time.sleep(2)
        assert worker.stop() == 0
        rows = clickhouse_rows(settings, "SELECT name FROM events FINAL")
        processed = {row["name"] for row in rows}
        assert {f"late-internal-tool-{i}" for i in range(len(late))} <= processed
        lost = set(sent.acked) - processed
        # acks before the restart returned came from the old broker, later ones from the new one
        old = {n for n, at in sent.acked.items() if at < restarted_at}
        recovered_at = _first_ts(log_lines(worker), RECOVERED)
        unrecreated = {n for n, at in sent.acked.items() if restarted_at <= at < recovered_at}
        mode = "durable" if durable else "memory"
        print(
            f"\n[{mode}] sent={len(sent.acked)} processed={len(processed & set(sent.acked))} "
            f"lost={len(lost)} "
            f"(acked by the old broker {len(old)}, by the restarted one before the worker recovered "
            f"{len(unrecreated)}, after {len(sent.acked) - len(old) - len(unrecreated)}; "
            f"send retries {sent.failures}); late batch {len(late)}/{len(late)}"
        )
        assert len(sent.acked) == len(names)
        assert processed <= set(names) | {f"late-internal-tool-{i}" for i in range(len(late))}
        if durable:
            assert lost == set()
        else:
            # Memory storage loses what the old broker held and the worker had not read yet (the
            # restarted broker gets the topic layout back at once, so what it acks is kept).
            assert lost <= old | unrecreated
            restarts = [line for line in log_lines(worker) if "restarting the worker" in line]
            assert len(restarts) == 1, restarts
    finally:
        stack.down()


def _first_ts(lines: list[str], text: str) -> float:
    """Wall-clock time of the first log line containing ``text`` (``inf`` if none)."""
    for line in lines:
        if text in line:
            stamp, _, millis = line.split(" level=", 1)[0].removeprefix("ts=").partition(",")
            return time.mktime(time.strptime(stamp, "%Y-%m-%d %H:%M:%S")) + int(millis or 0) / 1000
    return float("inf")


def test_recovery_warning_reads_as_one_line() -> None:
    from faust.types import TP

    from typostream.streams.recovery import LocalTable, RecoveryReport

    report = RecoveryReport(
        reason="topic x disappeared",
        dropped=[LocalTable(TP("app-packages-changelog", 0), Path("/x"), 978)],
        offsets_reset={TP("registry.publish", 1): (5000, 0)},
        highwaters={TP("app-packages-changelog", 0): 0},
    )
    line = report.line()
    assert "\n" not in line
    assert re.search(r"app-packages-changelog\[0\] at 978 \(end 0\)", line)
    assert "registry.publish[1] 5000->0" in line
