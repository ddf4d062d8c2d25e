"""Substitution: one character replaced, weighted by QWERTY adjacency (``reqyest`` for ``request``)."""

from __future__ import annotations

from typing import ClassVar

from typostream.agents.domain.detection.index import Target
from typostream.agents.domain.detection.techniques.base import Match, Query, Severity, Technique, string_pairs
from typostream.agents.domain.detection.techniques.probes import neighbours
from typostream.agents.domain.detection.tunables import (
    MIN_TYPO_LEN,
    MIN_TYPO_LEN_WATCHLIST,
    NON_ADJACENT_MIN_LEN,
    NON_ADJACENT_POPULAR,
    QWERTY_NEIGHBOURS,
    WEAK_SIGNAL_MAX_RANK,
)

__all__ = ["Substitution", "keyboard_adjacent", "substituted_index"]

ADJACENT_CONFIDENCE = 0.78
OTHER_CONFIDENCE = 0.6


def substituted_index(squat: str, target: str) -> int | None:
    """Index of the single differing character of two equal-length names, or None."""
    if len(squat) != len(target) or squat == target:
        return None
    i = 0
    while squat[i] == target[i]:
        i += 1
    return i if squat[i + 1 :] == target[i + 1 :] else None


def keyboard_adjacent(a: str, b: str) -> bool:
    """True when ``a`` and ``b`` are neighbours on a QWERTY keyboard."""
    return b in QWERTY_NEIGHBOURS.get(a, ())


class Substitution(Technique):
    id = "typosquat.substitution"
    description = "One character of a protected name is replaced (a neighbouring key scores higher)."
    severity: ClassVar[Severity] = "medium"
    popular_max_rank: ClassVar[int | None] = WEAK_SIGNAL_MAX_RANK
    confidence = ADJACENT_CONFIDENCE
    min_len = MIN_TYPO_LEN
    min_len_top = 5
    min_len_watchlist = MIN_TYPO_LEN_WATCHLIST
    length_deltas = frozenset({0})
    probes = (neighbours,)

    def match(self, query: Query, target: Target) -> Match | None:
        for squat, name in string_pairs(query, target.forms):
            i = substituted_index(squat, name)
            if i is None:
                continue
            adjacent = keyboard_adjacent(name[i], squat[i])
            if not target.watched and (
                (squat[i].isdigit() and name[i].isdigit())  # versions (cuda11/cuda12), not typos
                or (not adjacent and (not NON_ADJACENT_POPULAR or len(name) < NON_ADJACENT_MIN_LEN))
            ):
                continue
            how = "neighbouring key " if adjacent else ""
            return Match(
                f"replaces '{name[i]}' with {how}'{squat[i]}' at position {i + 1}",
                ADJACENT_CONFIDENCE if adjacent else OTHER_CONFIDENCE,
            )
        return None
