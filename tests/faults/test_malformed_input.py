"""Every malformed kind, 1 MB messages among them, interleaved with valid publishes, into a real worker.

Not JSON, not an object, schema violations, bad encodings, names with bidi/zero-width/control
characters or look-alike letters, out-of-range dates, over the event limit, 1 MB and 1 MiB: each is
dead-lettered once with its reason and loses none of the valid publishes around it.
"""

from __future__ import annotations

import pytest

from tests.faults.harness import (
    Profile,
    assert_exactly_once,
    collect,
    expected_threat_ids,
    produce,
    record,
    stop,
)
from tests.faults.inputs import check_catalogue, malformed, replay
from tests.integration.conftest import WorkerFactory
from typostream.streams.config import Settings

pytestmark = [pytest.mark.faults, pytest.mark.integration]


def test_the_catalogue_gets_the_reasons_the_suite_expects() -> None:
    """The pure validator agrees with the fate the suite assigns to each kind (else every check lies)."""
    messages = malformed("catalogue", big=True)
    check_catalogue(messages)
    assert {m.reason for m in messages} == {"not_json", "not_object", "bad_encoding", "schema", "oversized"}


def test_every_malformed_kind_and_1mb_messages_are_dead_lettered_and_lose_nothing(
    pipeline_settings: Settings, worker_factory: WorkerFactory, fault_profile: Profile
) -> None:
    settings = pipeline_settings
    inputs = replay(seed=7, n_valid=fault_profile.events // 2, prefix="malformed",
                    rounds=fault_profile.rounds, big=True)  # fmt: skip
    check_catalogue(inputs.messages)
    threats = expected_threat_ids(settings, inputs)
    worker = worker_factory(settings)
    produce(settings, inputs.raw())
    outcome = collect(settings, inputs, threats, worker, timeout_s=90)
    kinds = len({m.kind for m in inputs.invalid})
    stop(worker, outcome)
    record("malformed inputs (every kind, 1 MB + 1 MiB)", fault_profile.rounds, outcome,
           f"{len(inputs.invalid)} malformed of {kinds} kinds")  # fmt: skip
    assert_exactly_once(outcome)
