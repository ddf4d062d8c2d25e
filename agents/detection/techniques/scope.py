"""npm scope confusion: ``angular-cli`` for ``@angular/cli``, or a misspelt scope (``@angullar/core``)."""

from __future__ import annotations

from typing import ClassVar

from rapidfuzz.distance import DamerauLevenshtein

from typostream.agents.detection.index import Target
from typostream.agents.detection.names import NameForms, fold
from typostream.agents.detection.techniques.base import Match, Severity, Technique
from typostream.agents.detection.tunables import SCOPE_DROP_MAX_RANK

__all__ = ["ScopeConfusion", "scope_confusion"]


def scope_confusion(query: NameForms, target: NameForms) -> str | None:
    """Describe how ``query`` confuses ``target``'s npm scope, or None."""
    if target.scope is None or query.scope == target.scope:
        return None
    if query.scope is None:
        if query.skeleton == target.skeleton:
            return f"drops the scope of '{target.key}'"
        return None
    if (
        query.bare == target.bare
        and DamerauLevenshtein.distance(fold(query.scope), fold(target.scope), score_cutoff=2) <= 2
    ):
        return f"misspells scope '@{target.scope}' as '@{query.scope}'"
    return None


class ScopeConfusion(Technique):
    id = "typosquat.scope_confusion"
    description = "An npm scoped name republished unscoped, or under a misspelt scope."
    severity: ClassVar[Severity] = "high"
    confidence = 0.8
    min_len = 4
    min_len_watchlist = 2
    scoped_queries = True

    def match(self, query: NameForms, target: Target) -> Match | None:
        if query.scope is None and not target.watched and target.rank > SCOPE_DROP_MAX_RANK:
            return None
        detail = scope_confusion(query, target.forms)
        return None if detail is None else Match(detail, self.confidence, 0)
