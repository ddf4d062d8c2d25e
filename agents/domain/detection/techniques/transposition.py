"""Transposition: two adjacent characters swapped (``reqeust`` for ``request``)."""

from __future__ import annotations

from typing import ClassVar

from typostream.agents.domain.detection.index import Target
from typostream.agents.domain.detection.techniques.base import Match, Query, Severity, Technique, string_pairs
from typostream.agents.domain.detection.techniques.probes import neighbours
from typostream.agents.domain.detection.tunables import MIN_TRANSPOSE_LEN, MIN_TYPO_LEN_WATCHLIST

__all__ = ["Transposition", "swapped_index"]


def swapped_index(squat: str, target: str) -> int | None:
    """Index i such that ``squat`` is ``target`` with chars i and i+1 swapped, or None."""
    if len(squat) != len(target) or squat == target:
        return None
    i = 0
    while squat[i] == target[i]:
        i += 1
    if (
        i + 1 < len(squat)
        and squat[i] == target[i + 1]
        and squat[i + 1] == target[i]
        and squat[i + 2 :] == target[i + 2 :]
    ):
        return i
    return None


class Transposition(Technique):
    id = "typosquat.transposition"
    description = "Two adjacent characters of a protected name are swapped."
    severity: ClassVar[Severity] = "high"
    confidence = 0.78
    min_len = MIN_TRANSPOSE_LEN
    min_len_top = 4
    min_len_watchlist = MIN_TYPO_LEN_WATCHLIST
    length_deltas = frozenset({0})
    probes = (neighbours,)

    def match(self, query: Query, target: Target) -> Match | None:
        for squat, name in string_pairs(query, target.forms):
            i = swapped_index(squat, name)
            if i is not None:
                return Match(f"swaps '{name[i]}{name[i + 1]}' at position {i + 1}", self.confidence)
        return None
