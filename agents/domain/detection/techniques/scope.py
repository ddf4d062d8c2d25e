"""npm scope confusion: ``angular-cli`` for ``@angular/cli``, ``cli`` for ``@acme/cli`` (the scope
dropped), or a misspelt scope (``@angullar/core``)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from typing import ClassVar

from rapidfuzz.distance import DamerauLevenshtein

from typostream.agents.domain.detection import derived
from typostream.agents.domain.detection.index import CandidateIndex, Target
from typostream.agents.domain.detection.names import NameForms, fold
from typostream.agents.domain.detection.popular import load_popular
from typostream.agents.domain.detection.techniques.base import Match, Query, Severity, Technique
from typostream.agents.domain.detection.techniques.probes import look_alikes
from typostream.agents.domain.detection.tunables import (
    SCOPE_BARE_MIN_LEN,
    SCOPE_DROP_MAX_RANK,
    SCOPE_LEGACY_FAMILY,
    SCOPE_MISSPELL_MAX_EDITS,
    SCOPE_MISSPELL_MIN_LEN,
)

__all__ = ["ScopeConfusion", "legacy_families", "legacy_scopes", "scope_confusion", "scoped_bare"]

_NONE: Sequence[Target] = ()


def scoped_bare(query: Query, index: CandidateIndex) -> Sequence[Target]:
    """Probe: scoped targets whose bare name is the (unscoped) query's key (``@acme/cli`` for ``cli``)."""
    if query.scope is not None:
        return _NONE
    by_scope = index.scoped_edit.get(query.key)
    if by_scope is None:
        return _NONE
    return [t for targets in by_scope.values() for t in targets if t.forms.bare == query.key]


def scope_confusion(query: NameForms, target: NameForms) -> str | None:
    """Describe how ``query`` confuses ``target``'s npm scope, or None."""
    if target.scope is None or query.scope == target.scope:
        return None
    if query.scope is None:
        if query.skeleton == target.skeleton:
            return f"drops the scope of '{target.key}'"
        if query.key == target.bare:
            return f"drops the scope '@{target.scope}' of '{target.key}'"
        return None
    if (
        query.bare == target.bare
        and DamerauLevenshtein.distance(
            fold(query.scope), fold(target.scope), score_cutoff=SCOPE_MISSPELL_MAX_EDITS
        )
        <= SCOPE_MISSPELL_MAX_EDITS
    ):
        return f"misspells scope '@{target.scope}' as '@{query.scope}'"
    return None


def legacy_families(names: Iterable[str], min_names: int = SCOPE_LEGACY_FAMILY) -> frozenset[str]:
    """Prefixes ``p`` with at least ``min_names`` unscoped ``p-*`` names (``babel``: ``babel-core``, ...)."""
    counts = Counter(name.split("-", 1)[0] for name in names if "-" in name and not name.startswith("@"))
    return frozenset(prefix for prefix, n in counts.items() if n >= min_names)


@derived.table("scope.legacy_scopes", per="npm")  # once per process, or read with a cached index
def legacy_scopes() -> frozenset[str]:
    """npm scopes that moved from a popular unscoped family (``@babel`` from ``babel-*``)."""
    return legacy_families(row.name.lower() for row in load_popular("npm"))


class ScopeConfusion(Technique):
    id = "typosquat.scope_confusion"
    description = "An npm scoped name republished unscoped (@org/x as org-x or x), or under a misspelt scope."
    severity: ClassVar[Severity] = "high"
    confidence = 0.8
    min_len = 4
    min_len_watchlist = 2
    scoped_queries = True
    probes = (look_alikes, scoped_bare)
    scoped_probes = (look_alikes,)  # ``scoped_bare`` looks for unscoped names only

    def match(self, query: Query, target: Target) -> Match | None:
        scope = target.forms.scope
        if not target.watched and scope is not None:
            if query.scope is None and (target.rank > SCOPE_DROP_MAX_RANK or scope in legacy_scopes()):
                return None
            if query.scope is None and query.key == target.forms.bare and not _distinctive(query):
                return None  # ``generator`` for ``@babel/generator``: an older package, usually
            if query.scope is not None and len(fold(scope)) < SCOPE_MISSPELL_MIN_LEN:
                return None
        detail = scope_confusion(query, target.forms)
        return None if detail is None else Match(detail, self.confidence, 0)


def _distinctive(query: Query) -> bool:
    """A bare name of several words and ``SCOPE_BARE_MIN_LEN`` characters (``structured-clone``)."""
    return len(query.words) >= 2 and len(query.key) >= SCOPE_BARE_MIN_LEN
