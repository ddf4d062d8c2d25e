"""Repetition: one character of the target doubled (``reequest`` for ``request``)."""

from __future__ import annotations

from typing import ClassVar

from typostream.agents.domain.detection.index import Target
from typostream.agents.domain.detection.techniques.base import Match, Query, Severity, Technique, string_pairs
from typostream.agents.domain.detection.techniques.probes import neighbours
from typostream.agents.domain.detection.tunables import MIN_REPETITION_LEN, MIN_TYPO_LEN_WATCHLIST

__all__ = ["Repetition", "repeated_index"]


def repeated_index(squat: str, target: str) -> int | None:
    """Index in ``target`` of the character ``squat`` repeats, or None."""
    if len(squat) != len(target) + 1:
        return None
    i = 0
    while i < len(target) and squat[i] == target[i]:
        i += 1
    # squat[i] is the extra character; it must repeat a neighbour
    if squat[i + 1 :] != target[i:]:
        return None
    if i > 0 and squat[i] == squat[i - 1]:
        return i - 1
    if i + 1 < len(squat) and squat[i] == squat[i + 1]:
        return i
    return None


class Repetition(Technique):
    id = "typosquat.repetition"
    description = "One character of a protected name is typed twice."
    severity: ClassVar[Severity] = "medium"
    confidence = 0.74
    min_len = MIN_REPETITION_LEN
    min_len_top = 4
    min_len_watchlist = MIN_TYPO_LEN_WATCHLIST
    length_deltas = frozenset({1})
    probes = (neighbours,)

    def match(self, query: Query, target: Target) -> Match | None:
        for squat, name in string_pairs(query, target.forms):
            i = repeated_index(squat, name)
            if i is not None:
                return Match(f"repeats '{name[i]}' at position {i + 1}", self.confidence)
        return None
