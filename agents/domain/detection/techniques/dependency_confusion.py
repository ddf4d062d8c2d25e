"""Dependency confusion: a public publish of a watchlisted (internal) name that is not public-popular."""

from __future__ import annotations

from typing import ClassVar

from typostream.agents.domain.detection.index import Target
from typostream.agents.domain.detection.names import NameForms
from typostream.agents.domain.detection.techniques.base import Match, Query, Severity, Technique

__all__ = ["DependencyConfusion", "is_dependency_confusion"]


def is_dependency_confusion(query: NameForms, target: Target) -> bool:
    """True when ``query`` is exactly a watchlisted name that is not a known public package."""
    return target.watched and not target.popular and query.key == target.forms.key


class DependencyConfusion(Technique):
    id = "dependency_confusion.public_publish"
    description = "A watchlisted internal name is published on the public registry."
    severity: ClassVar[Severity] = "critical"
    confidence = 0.95
    min_len = 1
    min_len_watchlist = 0  # an exact copy is no coincidence, however short
    scoped_queries = True
    exact_key = True
    forces_malicious = True

    def match(self, query: Query, target: Target) -> Match | None:
        if not is_dependency_confusion(query, target):
            return None
        return Match(f"'{query.key}' is on the watchlist of internal names", self.confidence, 0)
