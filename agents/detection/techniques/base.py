"""Base class every technique extends: identity, defaults and one pure ``match``."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from typing import ClassVar, Literal, NamedTuple

from typostream.agents.detection.index import Target
from typostream.agents.detection.names import NameForms

__all__ = ["Match", "Severity", "Technique", "string_pairs"]

Severity = Literal["low", "medium", "high", "critical"]


class Match(NamedTuple):
    """A technique's verdict on one (scanned name, target) pair."""

    detail: str
    confidence: float
    distance: int = 1


def string_pairs(query: NameForms, target: NameForms) -> Iterator[tuple[str, str]]:
    """Compare raw keys, then squashed, then folded forms (each pair once)."""
    seen: set[tuple[str, str]] = set()
    for pair in (
        (query.bare, target.bare) if query.scope == target.scope else (query.key, target.key),
        (query.squashed, target.squashed),
        (query.skeleton, target.skeleton),
    ):
        if pair not in seen:
            seen.add(pair)
            yield pair


class Technique(ABC):
    """One way of imitating a name. Subclasses declare identity and implement :meth:`match`."""

    id: ClassVar[str]
    description: ClassVar[str]
    severity: ClassVar[Severity] = "medium"
    confidence: ClassVar[float] = 0.7
    min_len: ClassVar[int] = 5
    """Shortest target skeleton this technique flags for popular names."""
    min_len_watchlist: ClassVar[int] = 3
    """Same, for watchlisted names."""

    @property
    def type(self) -> str:
        return self.id.split(".", 1)[0]

    @property
    def technique(self) -> str:
        return self.id.split(".", 1)[1]

    def applies(self, target: Target) -> bool:
        limit = self.min_len_watchlist if target.watched else self.min_len
        return len(target.forms.skeleton) >= limit

    @abstractmethod
    def match(self, query: NameForms, target: Target) -> Match | None:
        """Return a :class:`Match` when ``query`` imitates ``target`` by this technique, else None."""
