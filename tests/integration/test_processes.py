"""``typostream worker --processes N`` on the real embedded stack: N detect processes over the input
partitions plus one store process (packages table, sinks, API), under one supervisor.

- Every valid event exactly once in ClickHouse, every malformed one in the DLQ, every threat with
  its stable id, the table served by the store process, SIGTERM exits 0 (all processes).
- SIGKILL of the supervisor mid-stream kills every process (a crash, nothing committed on the way
  out); a new worker on the same data dir loses and duplicates nothing.
- A single-process worker started after ``--processes N`` goes on from the input offsets the detect
  processes committed.
"""

from __future__ import annotations

import asyncio
import socket
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from tests.conftest import SettingsFactory
from tests.faults.harness import (
    PacedProducer,
    assert_exactly_once,
    collect,
    expected_threat_ids,
    wait_stored,
)
from tests.faults.inputs import replay
from tests.integration.conftest import WorkerFactory, produce, publish, wait_for
from typostream.streams.app import detect_group
from typostream.streams.config import Settings
from typostream.streams.stack.processes import pid_exists
from typostream.streams.worker import adopt_input_offsets
from typostream.streams.worker_process import WorkerProcess

pytestmark = pytest.mark.integration


def port_run(count: int) -> int:
    """A base port with ``count`` consecutive free ports (store on the base, detect i on base + i)."""
    for _ in range(200):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            base = int(sock.getsockname()[1])
        if base + count >= 65535:
            continue
        try:
            for port in range(base + 1, base + count):
                with socket.socket() as probe:
                    probe.bind(("127.0.0.1", port))
        except OSError:
            continue
        return base
    raise RuntimeError("no run of free ports")


@pytest.fixture
def multi_settings(settings_factory: SettingsFactory, tmp_path: Path) -> Settings:
    return settings_factory(
        clickhouse_dsn=f"chdb://{tmp_path / 'clickhouse'}",
        web_port=port_run(3),
        worker_processes=2,
        sink_batch_seconds=0.2,
    )


def children(worker: WorkerProcess) -> list[int]:
    assert worker.process is not None
    path = Path(f"/proc/{worker.process.pid}/task/{worker.process.pid}/children")
    return [int(pid) for pid in path.read_text().split()]


@pytest.fixture
def started() -> Iterator[list[int]]:
    """Worker process ids seen by a test: none may outlive it (checked after ``worker_factory`` has
    killed what is left: list this fixture before it)."""
    pids: list[int] = []
    yield pids
    deadline = time.monotonic() + 10
    while any(pid_exists(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [pid for pid in pids if pid_exists(pid)], "a worker process outlived its supervisor"


def test_processes_deliver_everything_once_and_survive_sigkill(
    started: list[int], multi_settings: Settings, worker_factory: WorkerFactory
) -> None:
    settings = multi_settings
    inputs = replay(seed=7, n_valid=1_500, prefix="procs", rounds=1)
    threats = expected_threat_ids(settings, inputs)
    producer = PacedProducer(settings, inputs.raw(), rate=len(inputs) / 12)
    worker = worker_factory(settings)
    started.extend(children(worker))
    assert len(started) == 3  # the store process and two detect processes
    producer.start()
    wait_stored(worker, 300, timeout_s=120, poll_s=0.05)
    assert worker.kill() == -9  # the supervisor: its processes die with it (PR_SET_PDEATHSIG)
    worker = worker_factory(settings)
    started.extend(children(worker))
    producer.finish()
    outcome = collect(settings, inputs, threats, worker, timeout_s=120)
    doc = orjson.loads(inputs.valid[-1].raw)
    state = worker.get(f"/api/v1/package?registry={doc['type']}&name={doc['name']}")
    assert state["versions_seen"], state  # the table lives in the store process, behind the API
    for port in (settings.web_port, settings.web_port + 1):  # the store builds its assessor on demand
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/api/v1/scan",
            data=orjson.dumps({"registry": "npm", "names": ["expresss"]}),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            [result] = orjson.loads(response.read())["results"]
        assert "express" in [t["target"] for t in result["threats"]], result
    assert worker.stop() == 0  # SIGTERM: every process stops cleanly, the supervisor exits 0
    counts = f"lost {outcome.lost}, duplicated {outcome.duplicated}, DLQ {outcome.dlq}/{outcome.invalid}"
    print(f"\n[--processes 2, one SIGKILL] {outcome.valid} valid, {outcome.processed} stored, {counts}")
    assert_exactly_once(outcome)


def test_a_crashing_process_stops_the_others_and_the_supervisor_exits_with_its_code(
    started: list[int], multi_settings: Settings, worker_factory: WorkerFactory
) -> None:
    import os
    import signal

    worker = worker_factory(multi_settings)
    started.extend(children(worker))
    os.kill(started[-1], signal.SIGKILL)  # a detect process dies
    deadline = time.monotonic() + 60
    while worker.alive() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert worker.returncode == 1, worker.log_path.read_text()[-2000:]  # its service manager restarts all
    assert "exited with code -9: stopping the others" in worker.log_path.read_text()


def test_processes_go_on_from_where_a_single_process_worker_got(
    multi_settings: Settings, worker_factory: WorkerFactory
) -> None:
    settings = multi_settings
    values = [publish(f"adopt-acme-tool-{i}", "1.0.0", "npm" if i % 2 else "pypi", i) for i in range(200)]
    asyncio.run(produce(settings, values))
    single = worker_factory(settings.replace(worker_processes=1))
    wait_for(single, lambda s: s["clickhouse_events"] >= len(values), timeout_s=120)
    time.sleep(4)  # a commit interval (2.8 s): the input offsets are committed
    assert single.stop() == 0
    # The detect group never read the input: started, it adopts the single-process group's offsets.
    moved = asyncio.run(adopt_input_offsets(settings, detect_group(settings), settings.app_id))
    assert sum(moved.values()) == len(values)
    assert asyncio.run(adopt_input_offsets(settings, detect_group(settings), settings.app_id)) == {}
    worker = worker_factory(settings)
    more = [publish(f"adopt-acme-tool-{i}", "2.0.0", "npm", i) for i in range(20)]
    asyncio.run(produce(settings, more))
    wait_stored(worker, len(values) + len(more), timeout_s=120)
    validated = sum(
        _counter(_metrics(settings.web_port + i), "typostream_events_validated_total") for i in (1, 2)
    )
    assert validated == len(more)  # only what came after: nothing read twice
    assert worker.stop() == 0


def _metrics(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        return response.read().decode()


def _counter(text: str, name: str) -> float:
    return sum(float(line.split()[1]) for line in text.splitlines() if line.startswith(name + " "))
