"""ClickHouse failing mid-stream, and a ClickHouse server that cannot be reached at start.

Mid-stream: while a replay streams in, the worker's own chDB starts refusing every insert into
``events`` and ``threats`` (``ADD CONSTRAINT ... CHECK 0``: the engine rejects the block, as a
full disk or a broken server would), for a few seconds, then accepts again (``DROP CONSTRAINT``).
chDB locks its data dir to one process, so the statements run inside the worker process: a
thread of the fault harness below watches a control file and runs them on the worker's own
connection. Everything else is the real worker. Expected: nothing is stored while refused, the
worker keeps serving its API, and once ClickHouse accepts again every event lands exactly once.

Unreachable server: a worker whose ``TYPOSTREAM_CLICKHOUSE_DSN`` names a server nobody listens
on exits 2 at start with one line saying so (no traceback) and consumes nothing; a worker with a
working store then processes every event produced meanwhile.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from tests.faults.harness import (
    PacedProducer,
    Profile,
    assert_exactly_once,
    collect,
    expected_threat_ids,
    produce,
    record,
    stop,
    wait_stored,
)
from tests.faults.inputs import replay
from tests.integration.conftest import WorkerFactory
from typostream.streams.config import Settings
from typostream.streams.stack.processes import free_port, spawn
from typostream.streams.worker_process import WorkerProcess, settings_env

pytestmark = [pytest.mark.faults, pytest.mark.integration]

REFUSE_S = 3.0
TABLES = ("events", "threats")

# The worker, plus a thread that adds/drops a CHECK 0 constraint on its own ClickHouse connection
# when <control>/refuse appears/disappears, and acknowledges in <control>/state.
CLICKHOUSE_FAULT = """
import sys, threading, time, traceback
from pathlib import Path
from typostream.agents.adapters.clickhouse import ClickHouseConnection

control, tables = Path(sys.argv[1]), sys.argv[2].split(",")
opened = []
original_open = ClickHouseConnection.open.__func__

def open_and_remember(cls, dsn, chdb_path):
    connection = original_open(cls, dsn, chdb_path)
    opened.append(connection)
    return connection

ClickHouseConnection.open = classmethod(open_and_remember)

def inject():
    refusing = False
    while True:
        try:
            want = (control / "refuse").exists()
            if want != refusing and opened:
                connection = opened[0]
                change = "ADD CONSTRAINT fault_refuse CHECK 0" if want else "DROP CONSTRAINT fault_refuse"
                with connection.lock:
                    for table in tables:
                        connection.client.command(f"ALTER TABLE {table} {change}")
                refusing = want
                (control / "state").write_text("refusing" if want else "accepting")
        except Exception:
            (control / "error").write_text(traceback.format_exc())
        time.sleep(0.05)

threading.Thread(target=inject, daemon=True, name="clickhouse-fault").start()
from typostream.streams.cli import main
sys.argv = ["typostream", "worker"]
main()
"""


class ClickHouseFaultWorker(WorkerProcess):
    def __init__(self, settings: Settings, control: Path) -> None:
        super().__init__(settings)
        self.control = control
        control.mkdir(parents=True, exist_ok=True)

    def start(self) -> ClickHouseFaultWorker:
        argv = [sys.executable, "-c", CLICKHOUSE_FAULT, str(self.control), ",".join(TABLES)]
        self.process = spawn(argv, self.log_path, die_with_parent=True, env=settings_env(self.settings))
        return self

    def set_refusing(self, refusing: bool, timeout_s: float = 30.0) -> None:
        flag = self.control / "refuse"
        if refusing:
            flag.write_text("")
        else:
            flag.unlink(missing_ok=True)
        want = "refusing" if refusing else "accepting"
        state = self.control / "state"
        deadline = time.monotonic() + timeout_s
        while not (state.exists() and state.read_text() == want):
            error = self.control / "error"
            assert not error.exists(), error.read_text()
            assert self.alive(), f"worker died; log: {self.log_path.read_text()[-3000:]}"
            assert time.monotonic() < deadline, f"fault harness did not switch to {want}"
            time.sleep(0.05)

    def stored(self) -> int:
        stats = self.stats() or {}
        return int(stats.get("clickhouse_events") or 0)


def test_clickhouse_refusing_inserts_mid_stream_loses_and_duplicates_nothing(
    pipeline_settings: Settings, fault_profile: Profile, tmp_path: Path
) -> None:
    settings = pipeline_settings
    reps = fault_profile.repetitions
    inputs = replay(seed=31, n_valid=fault_profile.events, prefix="chfail", rounds=fault_profile.rounds)
    threats = expected_threat_ids(settings, inputs)
    worker = ClickHouseFaultWorker(settings, tmp_path / "fault")
    worker.start().wait_ready(timeout_s=90)
    try:
        # The replay spans every failure window with time to spare around each one.
        producer = PacedProducer(settings, inputs.raw(), len(inputs) / (reps * (REFUSE_S + 3.0) + 2.0))
        producer.start()
        windows: list[str] = []
        for _ in range(reps):
            # mid-stream: the worker is storing (and more is coming) when ClickHouse starts refusing
            wait_stored(worker, worker.stored() + min(100, len(inputs.valid) // (4 * reps)), timeout_s=60)
            worker.set_refusing(True)
            log_mark = worker.log_path.stat().st_size
            at_start = worker.stored()
            time.sleep(REFUSE_S)
            during = worker.stored()  # /api/v1/stats still answers while the sink retries
            failed = worker.log_path.read_bytes()[log_mark:].count(b"sink write to events failed")
            worker.set_refusing(False)
            windows.append(
                f"{producer.sent} sent, stored {at_start}->{during} while refused, {failed} retries"
            )
            assert during == at_start, f"rows were stored while ClickHouse refused inserts: {windows[-1]}"
            assert failed > 0 or producer.done, f"the sink never hit the refusal: {windows[-1]}"
        producer.finish()
        outcome = collect(settings, inputs, threats, worker, timeout_s=120)
        stop(worker, outcome)
        record("ClickHouse refuses inserts mid-stream (CHECK 0, chDB)", reps, outcome,
               f"{REFUSE_S:.0f} s each; " + "; ".join(windows))  # fmt: skip
    finally:
        worker.kill()
    assert_exactly_once(outcome)


def test_an_unreachable_clickhouse_server_stops_the_worker_at_start_and_loses_nothing(
    pipeline_settings: Settings, worker_factory: WorkerFactory, fault_profile: Profile
) -> None:
    settings = pipeline_settings
    inputs = replay(seed=41, n_valid=fault_profile.events // 4, prefix="chdown", rounds=1)
    threats = expected_threat_ids(settings, inputs)
    produce(settings, inputs.raw())
    nobody = f"http://fault:s3cret@127.0.0.1:{free_port()}/typostream"
    down = WorkerProcess(settings.replace(clickhouse_dsn=nobody), settings.data_dir / "logs" / "down.log")
    down.start()
    assert down.process is not None
    code = down.process.wait(120)
    log = down.log_path.read_text()
    lines = [line for line in log.splitlines() if line and not line.startswith("---")]
    assert code == 2, log
    assert "Traceback" not in log, log
    assert "s3cret" not in log, "the DSN's password leaked into the log"
    errors = [line for line in lines if line.startswith("typostream: error:")]
    assert len(errors) == 1, log
    assert "127.0.0.1" in errors[0] and "ClickHouse" in errors[0], errors[0]

    worker = worker_factory(settings)  # a working store: everything produced meanwhile is still there
    outcome = collect(settings, inputs, threats, worker, timeout_s=90)
    assert "refused" in errors[0].lower(), errors[0]
    stop(worker, outcome)
    record("ClickHouse server unreachable at start (exit 2), then a working store", 1, outcome,
           "first worker: exit 2, one line 'cannot open ClickHouse at http://fault:***@127.0.0.1:PORT/"
           "typostream: ... Connection refused', nothing consumed")  # fmt: skip
    assert_exactly_once(outcome)
