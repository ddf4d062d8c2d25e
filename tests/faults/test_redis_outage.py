"""Redis goes away for seconds while enrichment is on; the pipeline neither stalls nor loses anything.

The worker runs with ``registry_metadata=True`` against the 127.0.0.1 fixture registry
(``tests/agents/enrichment/fixture_registry.py``) and its own redis-server, which the test
stops (the process is gone: connections refused) and freezes (SIGSTOP: a hung server, reads
time out), each for a few seconds, while a replay streams in. Expected: every event exactly once
in ClickHouse, the DLQ exactly the malformed inputs, the detector's threats and the enrichment's
(``crossenv``'s install script, computed here from the fixture document) with stable ids, the
cache counting the Redis errors and serving from Redis again once it is back.
"""

from __future__ import annotations

import re
import signal
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from aiohttp import web

from tests.agents.enrichment.fixture_registry import FIXTURES, HITS, make_app
from tests.faults.harness import (
    PacedProducer,
    Profile,
    assert_exactly_once,
    collect,
    expected_threat_ids,
    record,
    stop,
    wait_stored,
)
from tests.faults.inputs import KNOWN_MALICIOUS, Replay, replay
from tests.integration.conftest import WorkerFactory, serve_in_thread
from typostream.agents.domain.content import analyse
from typostream.agents.domain.messages import threat_id_for
from typostream.agents.domain.metadata import parse_npm
from typostream.agents.domain.patterns import PatternSet
from typostream.streams.config import Settings
from typostream.streams.stack import redis_server
from typostream.streams.stack.processes import free_port, spawn, stop_popen, wait_ready
from typostream.streams.worker_process import WorkerProcess

pytestmark = [pytest.mark.faults, pytest.mark.integration]

OUTAGE_S = 3.0


class RedisProcess:
    """A private redis-server on a fixed port that the test can stop, restart, freeze and thaw."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return redis_server.url(self.port)

    def start(self) -> None:
        argv = redis_server.command(self.port, self.workdir)
        self.process = spawn(argv, self.workdir / "redis.log", die_with_parent=True, cwd=self.workdir)
        wait_ready(self.process, self.port, redis_server.ping_ready, 15)

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait(10)

    def freeze(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)

    def close(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.thaw()
            stop_popen(self.process, 5)


@pytest.fixture
def redis_proc(tmp_path: Path) -> Iterator[RedisProcess]:
    proc = RedisProcess(tmp_path / "redis")
    proc.start()
    yield proc
    proc.close()


@pytest.fixture
def registry() -> Iterator[tuple[str, web.Application]]:
    """The fixture npm/PyPI registry from a background thread: (base URL, its aiohttp app)."""
    app = make_app()
    with serve_in_thread(app) as url:
        yield url, app


def enrichment_threat_ids(inputs: Replay) -> set[str]:
    """The ids of the content findings for every ``crossenv@6.1.1`` publish of the replay, computed
    from the fixture registry's document with the default pattern set (not by the worker)."""
    name, version, _ = KNOWN_MALICIOUS
    metadata = parse_npm(orjson.loads((FIXTURES / "npm_evil_1.0.0.json").read_text()), name, version)
    findings = analyse(metadata, PatternSet.default())
    assert findings, "the fixture's install script should match patterns"
    ids: set[str] = set()
    for message in inputs.valid:
        doc = orjson.loads(message.raw)
        if (doc["name"], doc["version"]) == (name, version):
            ids.update(threat_id_for(str(message.event_id), f) for f in findings)
    return ids


def cache_metrics(worker: WorkerProcess) -> dict[str, float]:
    with urllib.request.urlopen(f"{worker.base_url}/metrics", timeout=5) as response:
        text = response.read().decode()
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith(("typostream_cache_requests_total{", "typostream_cache_redis_errors_total{")):
            labels, value = line.rsplit(" ", 1)
            out[labels] = out.get(labels, 0.0) + float(value)
    return out


def l2_lookups(metrics: dict[str, float]) -> float:
    return sum(v for k, v in metrics.items() if re.search(r'level="l2"', k) and 'cls="metadata"' in k)


def redis_errors(metrics: dict[str, float]) -> float:
    return sum(v for k, v in metrics.items() if k.startswith("typostream_cache_redis_errors_total"))


def test_redis_stopped_and_frozen_mid_stream_with_enrichment_loses_nothing(
    pipeline_settings: Settings,
    worker_factory: WorkerFactory,
    fault_profile: Profile,
    redis_proc: RedisProcess,
    registry: tuple[str, web.Application],
) -> None:
    base_url, registry_app = registry
    settings = pipeline_settings.replace(
        registry_metadata=True, npm_registry_url=base_url, pypi_url=base_url, redis_url=redis_proc.url
    )
    reps = fault_profile.repetitions
    # Every 100th publish is crossenv@6.1.1 (known malicious + an install script the patterns find);
    # the others are unknown names: each misses L1 and asks Redis, then the registry (404).
    inputs = replay(seed=53, n_valid=fault_profile.events // 2, prefix="redis", rounds=fault_profile.rounds)
    threats = expected_threat_ids(settings, inputs) | enrichment_threat_ids(inputs)
    worker = worker_factory(settings)
    outages = 2 * reps
    producer = PacedProducer(settings, inputs.raw(), len(inputs) / (outages * (OUTAGE_S + 2.5) + 2.0))
    producer.start()
    notes: list[str] = []
    stored = 0
    for i in range(outages):
        # mid-stream: events are being enriched when Redis goes away
        stored = max(stored, int((worker.stats() or {}).get("clickhouse_events") or 0))
        wait_stored(worker, stored + min(50, len(inputs.valid) // (4 * outages)), timeout_s=60)
        hung = i % 2 == 1
        before, hits_before = cache_metrics(worker), sum(registry_app[HITS].values())
        redis_proc.freeze() if hung else redis_proc.stop()
        time.sleep(OUTAGE_S)
        during = cache_metrics(worker)
        redis_proc.thaw() if hung else redis_proc.start()
        hits = sum(registry_app[HITS].values()) - hits_before
        errors = redis_errors(during) - redis_errors(before)
        notes.append(
            f"{'frozen' if hung else 'stopped'}: {errors:.0f} Redis errors, {hits} registry requests"
        )
        assert worker.alive(), f"worker died; log: {worker.log_path.read_text()[-3000:]}"
    producer.finish()
    outcome = collect(settings, inputs, threats, worker, timeout_s=120)
    after = cache_metrics(worker)
    stop(worker, outcome)
    record("Redis stopped / frozen mid-stream (enrichment on)", outages, outcome,
           f"{OUTAGE_S:.0f} s each; " + "; ".join(notes))  # fmt: skip
    assert_exactly_once(outcome)
    assert redis_errors(after) > 0, "the outages never reached the cache: the fault proved nothing"
    # Redis serves again after the last outage: L2 lookups went on growing after it came back.
    assert l2_lookups(after) > l2_lookups(during)
