"""Insertion: one extra character added to the target (``colour-string`` for ``color-string``).

Against popular names a letter added at either end, or a digit, is how legitimate names are
derived; only a letter appended to a very popular name (``matplotlibp``) is flagged there, unless
it derives an English word (``resolver``, ``clicky``; a trailing ``s`` is the plural technique's).
"""

from __future__ import annotations

from typing import ClassVar

from typostream.agents.domain.detection.index import Target
from typostream.agents.domain.detection.techniques.base import Match, Query, Severity, Technique, string_pairs
from typostream.agents.domain.detection.techniques.omission import omitted_index
from typostream.agents.domain.detection.techniques.probes import neighbours
from typostream.agents.domain.detection.tunables import (
    APPEND_DERIVATIONS,
    APPEND_MAX_RANK,
    APPEND_MIN_LEN,
    MIN_TYPO_LEN,
    MIN_TYPO_LEN_WATCHLIST,
    WEAK_SIGNAL_MAX_RANK,
)

__all__ = ["Insertion", "appended_typo", "inserted_index"]


def inserted_index(squat: str, target: str) -> int | None:
    """Index in ``squat`` of the one extra character, or None."""
    return omitted_index(target, squat)


def appended_typo(squat: str, target: str) -> bool:
    """True when ``squat`` is ``target`` plus one letter at the end that derives no word from it."""
    if len(squat) != len(target) + 1 or not squat.startswith(target):
        return False
    letter = squat[-1]
    if not letter.isalpha() or target[-1:] in "-_.":
        return False
    return not any(target.endswith(end) and letter == added for end, added in APPEND_DERIVATIONS)


class Insertion(Technique):
    id = "typosquat.insertion"
    description = (
        "One extra character is inserted into a protected name (or a letter appended to a very popular one)."
    )
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
                if not (i == len(squat) - 1 and self._popular_append(query, target)):
                    continue
                return Match(f"appends '{squat[i]}' to '{target.forms.key}'", self.confidence)
            return Match(f"inserts '{squat[i]}' at position {i + 1}", self.confidence)
        return None

    @staticmethod
    def _popular_append(query: Query, target: Target) -> bool:
        """Whether a letter appended to the key of a popular target is flagged (top ranks only)."""
        key = target.forms.key
        return (
            target.rank <= APPEND_MAX_RANK
            and len(key) >= APPEND_MIN_LEN
            and query.scope == target.forms.scope
            and appended_typo(query.key, key)
        )
