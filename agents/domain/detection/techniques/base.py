"""What a technique is, and what the detector gives it: the extension point of the detection engine.

A technique is a small pure class: it declares, as class attributes, which targets it judges and
which index lookups find them, and it implements :meth:`Technique.match`. The detector reads only
these declarations (through :class:`TechniqueSet`), so adding a technique is one module, one line
in the registry (``techniques/__init__.py``) and its tests. Per scan the detector:

1. builds one :class:`Query` for the scanned name (its forms, plus what the probes and
   techniques derive from it, computed once and shared for the rest of the scan);
2. judges the target spelt exactly like the name (if any) with the ``exact_key`` techniques;
3. runs every distinct :data:`Probe` the other techniques declare, once each, and judges each
   candidate found with those techniques;
4. keeps the best-scoring match per target; a match of a ``forces_malicious`` technique makes the
   verdict ``malicious`` whatever its score.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator
from functools import cached_property
from typing import ClassVar, NamedTuple, TypeVar, cast

from typostream.agents.domain.detection.affixes import folded_cores
from typostream.agents.domain.detection.index import CandidateIndex, Target
from typostream.agents.domain.detection.names import NameForms, tokens
from typostream.agents.domain.detection.tunables import (
    AFFIX_WORDS,
    FUSED_PREFIXES,
    FUSED_SUFFIXES,
    SHORT_TARGET_MAX_RANK,
    SHORT_WORD_MAX_LEN,
)
from typostream.agents.domain.vocabulary import Severity

__all__ = ["Match", "Probe", "Query", "Severity", "Technique", "TechniqueSet", "string_pairs"]

_T = TypeVar("_T")


_forms_of: Callable[[type[Query], str, str], Query] = vars(NameForms)["of"].__func__
"""``NameForms.of`` for a subclass (without ``super()``'s cost on every scan)."""


class Query(NameForms):
    """The scanned name, built once per scan and given to every probe and technique.

    A query is its name's :class:`NameForms` plus what the probes and techniques derive from it,
    computed once: :attr:`words`, :attr:`cores`, and any function of the query through
    :meth:`derived` (so two techniques, or a probe and its technique, never repeat that work).
    """

    @classmethod
    def of(cls, name: str, registry: str) -> Query:
        query = _forms_of(cls, name, registry)
        query.__dict__["registry"] = registry
        if query.scope is None:
            # every scan of an unscoped name reads both (the look-alike and affix probes): set them
            # now, as the detector did inline, rather than pay for a lazy attribute on each scan
            key, flat = query.key, query.squashed
            words = [key] if key.isalnum() else tokens(key)
            affixed = (  # the conditions of affix_cores: most names meet none and need no cores
                (
                    len(words) >= 2
                    and (
                        words[0] in AFFIX_WORDS
                        or words[-1] in AFFIX_WORDS
                        or len(words[0]) <= SHORT_WORD_MAX_LEN
                        or len(words[-1]) <= SHORT_WORD_MAX_LEN
                    )
                )
                or flat.startswith(FUSED_PREFIXES)
                or flat.endswith(FUSED_SUFFIXES)
                or key[-1:].isdigit()
            )
            memo = query.__dict__
            memo["words"] = words
            memo["cores"] = folded_cores(key, words, flat) if affixed else []
        return query

    @property
    def registry(self) -> str:
        """The registry the name is scanned for (``npm``, ``pypi``...)."""
        return cast(str, self.__dict__["registry"])

    @cached_property
    def words(self) -> list[str]:
        """:func:`tokens` of the key (``["koa", "body", "parser"]``)."""
        return tokens(self.key)

    @cached_property
    def cores(self) -> list[tuple[str, str, str]]:
        """:func:`~typostream.agents.domain.detection.affixes.folded_cores` of the key: the names
        left once an affix is stripped (none for a scoped name: its scope is its owner's)."""
        if self.scope is not None or not self.key:
            return []
        return folded_cores(self.key, self.words, self.squashed)

    def derived(self, compute: Callable[[Query], _T]) -> _T:
        """``compute(self)``, computed once per query (``compute`` is the cache key)."""
        memo: dict[Callable[[Query], object], object] | None = self.__dict__.get("_derived")
        if memo is None:
            memo = self.__dict__["_derived"] = {}
        elif compute in memo:
            return cast(_T, memo[compute])
        value = memo[compute] = compute(self)
        return value


Probe = Callable[[Query, CandidateIndex], Iterable[Target]]
"""An index lookup that finds the targets a technique may match for a query (``probes.py``).

Probes are cheap dict look-ups: most names find nothing and their scan ends there. A probe is
identified by the function, so techniques declaring the same one share a single call per scan.
"""


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
    probes: ClassVar[tuple[Probe, ...]] = ()
    """Where the targets this technique can match are found in the index (see :data:`Probe`)."""
    scoped_probes: ClassVar[tuple[Probe, ...] | None] = None
    """The probes a ``scoped_queries`` technique needs for a scoped name (None: all of ``probes``);
    a probe that can only find targets for unscoped names is left out of scoped scans."""
    exact_key: ClassVar[bool] = False
    """Judge only the target whose key is the scanned name's own (never a probed candidate)."""
    forces_malicious: ClassVar[bool] = False
    """A match makes the verdict ``malicious`` whatever its score."""

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
    def match(self, query: Query, target: Target) -> Match | None:
        """Return a :class:`Match` when ``query`` imitates ``target`` by this technique, else None."""


class TechniqueSet(NamedTuple):
    """A collection of techniques as the detector runs them; derived once by :meth:`of`."""

    exact: tuple[Technique, ...]
    """``exact_key`` techniques: they judge the target spelt like the scanned name."""
    candidates: tuple[Technique, ...]
    """The others: they judge the targets the probes find."""
    probes: tuple[Probe, ...]
    """Every probe the candidate techniques declare, once each, for unscoped names."""
    scoped_probes: tuple[Probe, ...]
    """The probes of the ``scoped_queries`` techniques: all a scoped name needs."""

    @classmethod
    def of(cls, techniques: Iterable[Technique]) -> TechniqueSet:
        techniques = tuple(techniques)
        candidates = tuple(t for t in techniques if not t.exact_key)
        for technique in candidates:
            if not technique.probes:
                raise ValueError(f"{technique.id} declares no probes: nothing would find its targets")
        return cls(
            exact=tuple(t for t in techniques if t.exact_key),
            candidates=candidates,
            probes=tuple(dict.fromkeys(p for t in candidates for p in t.probes)),
            scoped_probes=tuple(
                dict.fromkeys(
                    p
                    for t in candidates
                    if t.scoped_queries
                    for p in (t.probes if t.scoped_probes is None else t.scoped_probes)
                )
            ),
        )
