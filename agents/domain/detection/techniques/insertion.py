"""Insertion: one extra character added to the target (``colour-string`` for ``color-string``)."""

from __future__ import annotations

from typing import ClassVar

from typostream.agents.domain.detection.index import Target
from typostream.agents.domain.detection.techniques.base import Match, Query, Severity, Technique, string_pairs
from typostream.agents.domain.detection.techniques.omission import omitted_index
from typostream.agents.domain.detection.techniques.probes import neighbours
from typostream.agents.domain.detection.tunables import (
    MIN_TYPO_LEN,
    MIN_TYPO_LEN_WATCHLIST,
    WEAK_SIGNAL_MAX_RANK,
)

__all__ = ["Insertion", "inserted_index"]


def inserted_index(squat: str, target: str) -> int | None:
    """Index in ``squat`` of the one extra character, or None."""
    return omitted_index(target, squat)


class Insertion(Technique):
    id = "typosquat.insertion"
    description = "One extra character is inserted into a protected name."
    severity: ClassVar[Severity] = "medium"
    popular_max_rank: ClassVar[int | None] = WEAK_SIGNAL_MAX_RANK
    confidence = 0.66
    min_len = MIN_TYPO_LEN + 1
    min_len_top = MIN_TYPO_LEN
    min_len_watchlist = MIN_TYPO_LEN_WATCHLIST
    length_deltas = frozenset({1})
    probes = (neighbours,)

    def match(self, query: Query, target: Target) -> Match | None:
        for squat, name in string_pairs(query, target.forms):
            i = inserted_index(squat, name)
            if i is None:
                continue
            # prefixing/suffixing a letter or adding a digit is how legitimate names are derived
            if not target.watched and (i == 0 or i == len(squat) - 1 or squat[i].isdigit()):
                continue
            return Match(f"inserts '{squat[i]}' at position {i + 1}", self.confidence)
        return None
