"""Two edits on a long name (``bitcoisnj-lib`` for ``bitcoinjs-lib``), verified with rapidfuzz."""

from __future__ import annotations

from typing import ClassVar

from rapidfuzz.distance import DamerauLevenshtein

from typostream.agents.domain.detection.index import Target
from typostream.agents.domain.detection.techniques.base import Match, Query, Severity, Technique
from typostream.agents.domain.detection.techniques.probes import neighbours

__all__ = ["MultiEdit", "is_two_edits"]


def is_two_edits(squat: str, target: str) -> bool:
    """True when the Damerau-Levenshtein distance is exactly 2."""
    return DamerauLevenshtein.distance(squat, target, score_cutoff=2) == 2


class MultiEdit(Technique):
    id = "typosquat.multi_edit"
    description = "Two typing errors in a long protected name."
    severity: ClassVar[Severity] = "low"
    confidence = 0.58
    min_len = 10**6  # popular names: too many legitimate two-edit neighbours
    min_len_top = 10**6
    min_len_watchlist = 7
    probes = (neighbours,)

    def match(self, query: Query, target: Target) -> Match | None:
        if is_two_edits(query.skeleton, target.forms.skeleton):
            return Match(f"two edits away from '{target.forms.key}'", self.confidence, 2)
        return None
