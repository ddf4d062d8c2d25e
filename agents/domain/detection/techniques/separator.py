"""Separator changes: ``-``, ``_``, ``.`` swapped, added or dropped (``babelcli`` for ``babel-cli``).

For popular names, ``x.js``/``x-js``/``xjs`` are one name spelt three ways (npm convention), not a squat.
"""

from __future__ import annotations

from typing import ClassVar

from typostream.agents.domain.detection.index import Target
from typostream.agents.domain.detection.names import squash
from typostream.agents.domain.detection.techniques.base import Match, Query, Severity, Technique
from typostream.agents.domain.detection.techniques.probes import look_alikes
from typostream.agents.domain.detection.tunables import MIN_SEPARATOR_LEN, SEPARATORS, WEAK_SIGNAL_MAX_RANK

__all__ = ["Separator", "is_separator_change", "js_spelling"]


def is_separator_change(squat: str, target: str) -> bool:
    """True when the names differ only in separators."""
    return squat != target and squash(squat) == squash(target)


def js_spelling(squat: str, target: str) -> bool:
    """True when the names differ only in how a trailing ``js`` is attached (``fft-js``/``fft.js``)."""
    return (
        squat.endswith("js")
        and target.endswith("js")
        and squat[:-2].rstrip(SEPARATORS) == target[:-2].rstrip(SEPARATORS)
    )


class Separator(Technique):
    id = "typosquat.separator"
    description = "Separators (-, _, .) of a protected name are changed, added or removed."
    severity: ClassVar[Severity] = "medium"
    popular_max_rank: ClassVar[int | None] = WEAK_SIGNAL_MAX_RANK
    confidence = 0.74
    min_len = MIN_SEPARATOR_LEN
    min_len_watchlist = 2
    length_deltas = frozenset({0})
    probes = (look_alikes,)

    def match(self, query: Query, target: Target) -> Match | None:
        t = target.forms
        if query.scope != t.scope or not is_separator_change(query.key, t.key):
            return None
        if not target.watched and js_spelling(query.key, t.key):
            return None
        return Match(f"changes separators of '{t.key}' to '{query.key}'", self.confidence, 0)
