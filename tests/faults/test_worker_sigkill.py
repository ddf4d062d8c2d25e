"""SIGKILL the worker at random points (seeded) while a replay streams in; restart it each time.

The replay is produced at a steady rate from a thread, so each kill lands somewhere in the middle
of validating, detecting and sinking; a new worker on the same data dir (RocksDB table, consumer
group, chDB) takes over. At-least-once upstream plus idempotent sinks: every valid event exactly
once in ClickHouse, every malformed one in the DLQ (a dead letter may be sent again for an offset
the killed worker had not committed: counted apart, by source offset), threats with stable ids.
"""

from __future__ import annotations

import random
import time

import pytest

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
from tests.faults.inputs import replay
from tests.integration.conftest import WorkerFactory
from typostream.streams.config import Settings

pytestmark = [pytest.mark.faults, pytest.mark.integration]

SEED = 20261125
RESTART_S = 9.0  # about what a SIGKILL, a restart, the group join and a kill point take on 2 cores


def test_sigkill_at_random_points_during_a_replay_loses_and_duplicates_nothing(
    pipeline_settings: Settings, worker_factory: WorkerFactory, fault_profile: Profile
) -> None:
    settings = pipeline_settings
    rng = random.Random(SEED)
    inputs = replay(seed=SEED, n_valid=fault_profile.events, prefix="sigkill", rounds=fault_profile.rounds)
    threats = expected_threat_ids(settings, inputs)
    # Sent slowly enough that the replay spans every kill and restart. Each worker is killed once it
    # has stored a random number of events more than it found (seeded), a random moment later:
    # mid-stream, with events in flight between validate, detect and the sinks.
    rate = len(inputs) / (fault_profile.kills * RESTART_S)
    producer = PacedProducer(settings, inputs.raw(), rate)
    n = len(inputs.valid)
    step = max(1, n // (3 * fault_profile.kills))
    worker = worker_factory(settings)
    started = time.monotonic()
    producer.start()
    kills: list[str] = []
    for _ in range(fault_profile.kills):
        found = int((worker.stats() or {}).get("clickhouse_events") or 0)
        wait_stored(worker, min(n - 1, found + rng.randint(step, 2 * step)), timeout_s=120, poll_s=0.05)
        time.sleep(rng.uniform(0.0, 0.3))
        stored = (worker.stats() or {}).get("clickhouse_events")
        code = worker.kill()
        assert code == -9, f"worker was not running when killed (exit {code}); log: {worker.log_path}"
        kills.append(
            f"{time.monotonic() - started:.1f}s: {producer.sent}/{len(inputs)} sent, {stored} stored"
        )
        worker = worker_factory(settings)
    producer.finish()
    outcome = collect(settings, inputs, threats, worker, timeout_s=120)
    stored_at = "/".join(k.rsplit(", ", 1)[1].split()[0] for k in kills)
    stop(worker, outcome)
    record(f"SIGKILL worker at random points (seed {SEED})", len(kills), outcome,
           f"{rate:.0f} msg/s; killed with {stored_at} of {n} events stored")  # fmt: skip
    print("\n[sigkill] killed at: " + "; ".join(kills))
    assert_exactly_once(outcome)
