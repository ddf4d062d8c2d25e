"""Base class every technique extends: identity, defaults and one pure ``match``."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from typing import ClassVar, Literal, NamedTuple

from typostream.agents.detection.index import Target
from typostream.agents.detection.names import NameForms
from typostream.agents.detection.tunables import SHORT_TARGET_MAX_RANK

__all__ = ["Match", "Severity", "Technique", "string_pairs"]

Severity = Literal["low", "medium", "high", "critical"]


class Match(NamedTuple):
    """A technique's verdict on one (scanned name, target) pair."""

    detail: str
    confidence: float
    distance: int = 1


def string_pairs(query: NameForms, target: NameForms) -> Iterator[tuple[str, str]]:
    """Compare raw keys, then squashed forms (folded forms are the homoglyph technique's job)."""
    first = (query.bare, target.bare) if query.scope == target.scope else (query.key, target.key)
    yield first
    if (query.squashed, target.squashed) != first:
        yield query.squashed, target.squashed


class Technique(ABC):
    """One way of imitating a name. Subclasses declare identity and implement :meth:`match`."""

    id: ClassVar[str]
    description: ClassVar[str]
    severity: ClassVar[Severity] = "medium"
    confidence: ClassVar[float] = 0.7
    min_len: ClassVar[int] = 5
    """Shortest target skeleton this technique flags for popular names."""
    min_len_top: ClassVar[int] = 4
    """Shortest target skeleton flagged when the target is among the SHORT_TARGET_MAX_RANK most popular."""
    min_len_watchlist: ClassVar[int] = 3
    """Same, for watchlisted names."""
    scoped_queries: ClassVar[bool] = False
    """Whether the technique compares scoped (``@scope/x``) names at all (only its owner publishes there)."""
    popular_max_rank: ClassVar[int | None] = None
    """Rank limit for popular, not watchlisted targets (None: the whole popular index)."""
    length_deltas: ClassVar[frozenset[int] | None] = None
    """``len(squat) - len(target)`` of a :func:`string_pairs` pair at which :meth:`match` can succeed
    (None: any). The detector does not call ``match`` on a pair no delta of which is listed."""

    @property
    def type(self) -> str:
        return self.id.split(".", 1)[0]

    @property
    def technique(self) -> str:
        return self.id.split(".", 1)[1]

    def applies(self, target: Target) -> bool:
        """Length-aware gate: short names need a watchlist entry or a very popular target."""
        if target.watched and len(target.forms.skeleton) >= self.min_len_watchlist:
            return True
        if not target.popular:
            return False
        if self.popular_max_rank is not None and target.rank > self.popular_max_rank:
            return False
        length = target.core_len
        return length >= self.min_len or (length >= self.min_len_top and target.rank <= SHORT_TARGET_MAX_RANK)

    @abstractmethod
    def match(self, query: NameForms, target: Target) -> Match | None:
        """Return a :class:`Match` when ``query`` imitates ``target`` by this technique, else None."""
