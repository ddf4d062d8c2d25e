"""Omission: one character of the target left out (``reqest`` for ``request``)."""

from __future__ import annotations

from typing import ClassVar

from typostream.agents.domain.detection.index import Target
from typostream.agents.domain.detection.techniques.base import Match, Query, Severity, Technique, string_pairs
from typostream.agents.domain.detection.techniques.probes import neighbours
from typostream.agents.domain.detection.tunables import (
    APPEND_MIN_LEN,
    MIN_TYPO_LEN,
    MIN_TYPO_LEN_WATCHLIST,
    OMIT_LAST_DERIVING,
    OMIT_LAST_MAX_RANK,
    SEPARATORS,
)

__all__ = ["Omission", "omitted_index"]


def omitted_index(squat: str, target: str) -> int | None:
    """Index of the target character left out, or None if ``squat`` is not ``target`` minus one char."""
    if len(squat) != len(target) - 1:
        return None
    i = 0
    while i < len(squat) and squat[i] == target[i]:
        i += 1
    return i if squat[i:] == target[i + 1 :] else None


class Omission(Technique):
    id = "typosquat.omission"
    description = "One character of a protected name is omitted (the last one only on very popular names)."
    severity: ClassVar[Severity] = "medium"
    confidence = 0.72
    min_len = MIN_TYPO_LEN
    min_len_top = 5
    min_len_watchlist = MIN_TYPO_LEN_WATCHLIST
    length_deltas = frozenset({-1})
    probes = (neighbours,)

    def match(self, query: Query, target: Target) -> Match | None:
        for squat, name in string_pairs(query, target.forms):
            i = omitted_index(squat, name)
            # dropping the target's last character gives its base word (handlebar/handlebars,
            # sanitize/sanitizer, eslint-plugin/eslint-plugin-n): how legitimate names are derived
            if i is None:
                continue
            # a dropped separator is a separator change: leave it to that technique (and its gates)
            if not target.watched and (
                name[i] in SEPARATORS or (i == len(name) - 1 and not _typo_at_end(name, target))
            ):
                continue
            return Match(f"omits '{name[i]}' at position {i + 1}", self.confidence)
        return None


def _typo_at_end(name: str, target: Target) -> bool:
    """Whether dropping ``name``'s last character is flagged on a popular target: top ranks, a
    letter that derives no word (``reques`` for ``request``, not ``handlebar`` for ``handlebars``)."""
    last = name[-1]
    return (
        target.rank <= OMIT_LAST_MAX_RANK
        and len(name) >= APPEND_MIN_LEN
        and last.isalpha()
        and last not in OMIT_LAST_DERIVING
        and name[-2:-1] not in SEPARATORS
    )
