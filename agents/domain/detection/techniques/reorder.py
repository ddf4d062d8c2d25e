"""Word reordering: the target's words in another order (``parser-body`` for ``body-parser``)."""

from __future__ import annotations

from typing import ClassVar

from typostream.agents.domain.detection.index import Target, word_key
from typostream.agents.domain.detection.names import tokens
from typostream.agents.domain.detection.techniques.base import Match, Query, Severity, Technique
from typostream.agents.domain.detection.techniques.probes import look_alikes
from typostream.agents.domain.detection.tunables import REORDER_MAX_RANK

__all__ = ["Reorder", "is_reordered"]


def is_reordered(squat: str, target: str) -> bool:
    """True when both names have the same words in a different order."""
    key = word_key(squat)
    return key is not None and key == word_key(target) and tokens(squat) != tokens(target)


class Reorder(Technique):
    id = "typosquat.reorder"
    description = "The words of a protected name appear in a different order."
    severity: ClassVar[Severity] = "medium"
    popular_max_rank: ClassVar[int | None] = REORDER_MAX_RANK
    confidence = 0.7
    min_len = 5
    min_len_watchlist = 3
    length_deltas = frozenset({0})
    probes = (look_alikes,)

    def match(self, query: Query, target: Target) -> Match | None:
        # ``serverless-sentry`` for ``@sentry/serverless``: an organisation's name used as a word is
        # how community plugins are named; flagged for watchlisted targets only
        if target.forms.scope is not None and query.scope is None and not target.watched:
            return None
        if not is_reordered(query.key, target.forms.key):
            return None
        return Match(f"reorders the words of '{target.forms.key}'", self.confidence, 0)
