"""The suite's judge catches every way an outcome can be wrong (pure: no servers)."""

from __future__ import annotations

import hashlib

import pytest

from tests.faults.harness import judge
from tests.faults.inputs import Replay, malformed, valid_message

pytestmark = pytest.mark.faults

TOPIC = "registry.publish"


def small_replay() -> Replay:
    valid = [valid_message(name, "1.0.0", "npm", "2026-11-25T10:00:00Z") for name in ("expresss", "acme-a")]
    return Replay([*valid, *malformed("judge", untaggable=False)[:3]])


def dead_letters(replay: Replay) -> list[dict]:
    return [
        {
            "reason": m.reason,
            "source_topic": TOPIC,
            "source_partition": 0,
            "source_offset": i,
            "original_sha256": hashlib.sha256(m.raw).hexdigest(),
        }
        for i, m in enumerate(replay.invalid)
    ]


def perfect(replay: Replay) -> dict:
    threat = "t-1"
    return {
        "event_counts": [[e, 1] for e in replay.event_ids],
        "threat_counts": [[threat, 1]],
        "dlq_records": dead_letters(replay),
        "threat_records": [{"id": threat}, {"id": threat}],  # at least once is fine on the topic
        "threat_ids": {threat},
    }


def test_a_perfect_outcome_passes() -> None:
    replay = small_replay()
    outcome = judge(replay, input_topic=TOPIC, **perfect(replay))
    assert outcome.ok, outcome.problems
    assert (outcome.processed, outcome.dlq, outcome.lost, outcome.duplicated) == (2, 3, 0, 0)


@pytest.mark.parametrize(
    ("damage", "lost", "duplicated", "says"),
    [
        (lambda o: o["event_counts"].pop(), 1, 0, "not in ClickHouse"),
        (lambda o: o["event_counts"][0].__setitem__(1, 2), 0, 1, "duplicate event"),
        (lambda o: o["event_counts"].append(["stranger", 1]), 0, 0, "match no input"),
        (lambda o: o["dlq_records"].pop(), 1, 0, "missing from the DLQ"),
        (lambda o: o["dlq_records"][0].__setitem__("reason", "internal_error"), 1, 0, "another reason"),
        (lambda o: o["dlq_records"].append({**o["dlq_records"][0], "source_topic": "x"}), 0, 0, "internal"),
        (lambda o: o["threat_records"].clear(), 0, 0, "never on the threats topic"),
        (lambda o: o["threat_records"].append({"id": "t-2"}), 0, 0, "match no expected threat"),
        (lambda o: o["threat_counts"][0].__setitem__(1, 3), 0, 2, "duplicate threat"),
        (lambda o: o["threat_counts"].clear(), 0, 0, "not in ClickHouse"),
        (lambda o: o["threat_ids"].clear() or o["threat_records"].clear() or o["threat_counts"].clear(), 0, 0,
         "no expected threats"),
    ],
)  # fmt: skip
def test_each_kind_of_damage_is_reported(damage, lost: int, duplicated: int, says: str) -> None:
    replay = small_replay()
    parts = perfect(replay)
    damage(parts)
    outcome = judge(replay, input_topic=TOPIC, **parts)
    assert not outcome.ok
    assert any(says in p for p in outcome.problems), outcome.problems
    assert (outcome.lost, outcome.duplicated) == (lost, duplicated)


def test_a_redelivered_dead_letter_is_counted_apart_not_as_a_failure() -> None:
    replay = small_replay()
    parts = perfect(replay)
    parts["dlq_records"].append(dict(parts["dlq_records"][0]))  # same source offset, sent again
    outcome = judge(replay, input_topic=TOPIC, **parts)
    assert outcome.ok, outcome.problems
    assert outcome.dlq_redelivered == 1 and outcome.dlq == 3
