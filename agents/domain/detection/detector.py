"""The detector: one pure, read-only object that scans a name against the indexes of a registry."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from typostream.agents.domain.detection.index import CandidateIndex, Target, paused_gc
from typostream.agents.domain.detection.names import NameForms, check_registry, normalize
from typostream.agents.domain.detection.popular import load_popular
from typostream.agents.domain.detection.scoring import score, severity_for, verdict_for
from typostream.agents.domain.detection.techniques import (
    DEFAULT_TECHNIQUES,
    Match,
    Query,
    Technique,
    TechniqueSet,
)
from typostream.agents.domain.detection.tunables import MIN_REPORT_SCORE
from typostream.agents.domain.errors import InvalidInputError, NameListError
from typostream.agents.domain.vocabulary import DETECTOR_REGISTRIES, Verdict

__all__ = ["Detector", "NameSource", "ScanResult", "Threat"]

NameSource = None | Iterable[str] | Path | str
"""A watchlist/allowlist: None, names, or a path to a file :meth:`Detector.load_names` reads."""

MAX_THREATS = 5
_REQ_NAME = re.compile(r"^\s*([A-Za-z0-9@][A-Za-z0-9._/@-]*)")
_PACKAGE_JSON_KEYS = ("dependencies", "devDependencies", "peerDependencies", "optionalDependencies")


@dataclass(frozen=True, slots=True)
class Threat:
    """One reason to distrust a name: ``type`` is ``typosquat`` or ``dependency_confusion``."""

    type: str
    target: str
    technique: str
    score: float
    severity: str
    evidence: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "target": self.target,
            "technique": self.technique,
            "score": self.score,
            "severity": self.severity,
            "evidence": self.evidence,
        }


@dataclass(frozen=True, slots=True)
class ScanResult:
    """The verdict on one scanned name; :meth:`to_dict` is the CLI's JSON line."""

    name: str
    registry: str
    verdict: Verdict = "clean"
    threats: list[Threat] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "registry": self.registry,
            "verdict": self.verdict,
            "threats": [t.to_dict() for t in self.threats],
        }


_new_object = object.__new__
_SET_NAME, _SET_REGISTRY, _SET_VERDICT, _SET_THREATS = (
    ScanResult.__dict__[attr].__set__ for attr in ("name", "registry", "verdict", "threats")
)


def _clean(name: str, registry: str) -> ScanResult:
    """``ScanResult(name, registry)``, the result of most scans, in half the time: a frozen
    dataclass's ``__init__`` sets each field through ``object.__setattr__``."""
    result: ScanResult = _new_object(ScanResult)
    _SET_NAME(result, name)
    _SET_REGISTRY(result, registry)
    _SET_VERDICT(result, "clean")
    _SET_THREATS(result, [])
    return result


def _describe(target: Target, registry: str) -> str:
    parts = []
    if target.popular:
        parts.append(f"popular {registry} package #{target.rank}")
    if target.watched:
        parts.append("watchlisted")
    return " and ".join(parts)


@cache
def _popular_targets(registry: str) -> tuple[Target, ...]:
    with paused_gc():
        return tuple(
            Target(NameForms.of(row.name, registry), row.rank, row.popularity)
            for row in load_popular(registry)
        )


@cache
def _popular_index(registry: str) -> CandidateIndex:
    targets = _popular_targets(registry)
    with paused_gc():
        return CandidateIndex.build(registry, targets)


def build_index(registry: str, watched: Sequence[str] = ()) -> CandidateIndex:
    """The candidate index of ``registry``: its bundled popular names plus the ``watched`` names."""
    if not watched:
        return _popular_index(registry)
    popular = _popular_targets(registry)
    with paused_gc():
        extra = [Target(NameForms.of(name, registry), watched=True) for name in watched]
        return CandidateIndex.build(registry, (*popular, *extra))


_Entry = tuple[CandidateIndex, frozenset[str], dict[str, tuple[Technique, ...]]]


class _Entries(dict[str, _Entry]):
    """A detector's ``registry -> (index, allowlist, per-target plans)``. Filled at construction
    from a dict of indexes; from any other mapping (the disk cache's, which reads an index the
    first time it is asked for) on the registry's first scan: there ``scan``'s ``.get`` misses
    and its ``[registry]`` calls ``__missing__``, which fills the entry."""

    __slots__ = ("_allow", "_indexes", "_plans")

    def __init__(
        self,
        indexes: Mapping[str, CandidateIndex],
        allow: dict[str, frozenset[str]],
        plans: dict[str, dict[str, tuple[Technique, ...]]],
    ) -> None:
        super().__init__()
        self._indexes, self._allow, self._plans = indexes, allow, plans
        if type(indexes) is dict:
            for registry in indexes:
                self.__missing__(registry)

    def __missing__(self, registry: str) -> _Entry:
        entry = self[registry] = (self._indexes[registry], self._allow[registry], self._plans[registry])
        return entry


class Detector:
    """Scans names against per-registry candidate indexes. Immutable after construction: thread safe
    (given indexes as a lazy mapping, that mapping must be thread safe: the cache's is).

    Every technique is run the same way, from its declarations (``techniques/base.py``).
    """

    __slots__ = ("_allow", "_entries", "_indexes", "_plans", "_probes", "_scoped_probes", "_techniques")

    def __init__(
        self,
        indexes: Mapping[str, CandidateIndex],
        allowlist: dict[str, frozenset[str]],
        techniques: TechniqueSet = DEFAULT_TECHNIQUES,
    ) -> None:
        """``indexes``: a dict is copied and used as it is; another mapping is asked for a
        registry's index on that registry's first scan (a lazy mapping loads only what is used)."""
        self._indexes: Mapping[str, CandidateIndex] = dict(indexes) if isinstance(indexes, dict) else indexes
        self._allow = dict(allowlist)
        self._techniques = techniques
        self._probes, self._scoped_probes = techniques.probes, techniques.scoped_probes
        # per-target technique lists, filled on first use (a target's data, not a cache of names)
        self._plans: dict[str, dict[str, tuple[Technique, ...]]] = {reg: {} for reg in self._indexes}
        self._entries = _Entries(self._indexes, self._allow, self._plans)

    # --- construction ------------------------------------------------------------------------
    @classmethod
    def default(
        cls,
        watchlist: NameSource = None,
        allowlist: NameSource = None,
        *,
        indexes: Mapping[str, CandidateIndex] | None = None,
    ) -> Detector:
        """Detector over the bundled popular snapshots, plus the user's watchlist and allowlist.

        ``indexes``: prebuilt indexes of every registry (:meth:`build_indexes` of the watchlist,
        e.g. read back by ``adapters.index_cache``), used instead of ``watchlist``.
        """
        allowed = cls._names(allowlist)
        if indexes is None:
            indexes = cls.build_indexes(cls._names(watchlist))
        elif set(indexes) != set(DETECTOR_REGISTRIES):  # (the keys only: a lazy mapping loads nothing)
            raise InvalidInputError(
                f"prebuilt indexes for {sorted(indexes)}; expected {sorted(DETECTOR_REGISTRIES)}"
            )
        allow = {reg: frozenset(normalize(n, reg) for n in allowed) for reg in DETECTOR_REGISTRIES}
        return cls(indexes, allow)

    @staticmethod
    def build_indexes(watched: Sequence[str] = ()) -> dict[str, CandidateIndex]:
        """The candidate index of every registry: its popular names plus the ``watched`` names."""
        return {registry: build_index(registry, watched) for registry in DETECTOR_REGISTRIES}

    @staticmethod
    def read_names(source: NameSource) -> list[str]:
        """The names of a watchlist/allowlist: None (none), names, or a file (:meth:`load_names`)."""
        return Detector._names(source)

    @staticmethod
    def _names(source: NameSource) -> list[str]:
        if source is None:
            return []
        if isinstance(source, (str, Path)):
            return Detector.load_names(source)
        return [n.strip() for n in source if n and n.strip()]

    @staticmethod
    def load_names(path: str | Path) -> list[str]:
        """Names in a file: one per line with ``#`` comments, or a requirements.txt / package.json."""
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise NameListError(
                f"cannot read {path}: {exc.strerror if isinstance(exc, OSError) else exc}"
            ) from exc
        lower = path.name.lower()
        if lower == "package.json" or lower.endswith(".package.json"):
            return _package_json_names(text, path)
        if lower.endswith(".txt") and "requirements" in lower:
            return _requirements_names(text)
        names = []
        for line in text.splitlines():
            line = line.split("#", 1)[0].strip() if not line.lstrip().startswith("@") else line.strip()
            if line and not line.startswith("#"):
                names.append(line.split()[0])
        return names

    # --- scanning ----------------------------------------------------------------------------
    def registries(self) -> tuple[str, ...]:
        return tuple(self._indexes)

    def index(self, registry: str) -> CandidateIndex:
        return self._indexes[check_registry(registry)]

    def allowed(self, name: str, registry: str) -> bool:
        """Whether ``name`` is on the allowlist of ``registry`` (never flagged by this detector)."""
        registry = check_registry(registry)
        return normalize(name, registry) in self._allow[registry]

    def scan(self, name: str, registry: str) -> ScanResult:
        """Scan one name; raise :class:`UnknownRegistryError` for a registry the detector lacks."""
        entry = self._entries.get(registry)
        if entry is None:
            registry = check_registry(registry)
            entry = self._entries[registry]
        reg = registry
        index, allow, plans = entry
        by_key = index.by_key
        popular = by_key.get(name)
        if popular is not None and popular.popular:
            return _clean(name, reg)  # fast path: a popular name spelt as its key is never flagged
        query = Query.of(name, reg)
        key = query.key
        if not key or key in allow:
            return _clean(name, reg)
        threats: list[Threat] = []
        critical = False
        exact = popular if key == name else by_key.get(key)
        if exact is not None:
            if exact.popular:
                return _clean(name, reg)  # never flag a popular name
            best = self._best(query, exact, reg, self._plan(exact, self._techniques.exact))
            if best is not None:
                threats.append(best[0])
                critical = best[1].forces_malicious
        # candidates: a few dict probes; most names have none and stop here
        found: list[Target] = []
        # (a scoped name needs only the probes of the techniques that compare scoped names)
        for probe in self._probes if query.scope is None else self._scoped_probes:
            hits = probe(query, index)
            if hits:
                found.extend(hits)
        if found:
            candidates = {target.forms.key: target for target in found}
            candidates.pop(key, None)  # judged above, by the exact-key techniques only
            for target in candidates.values():
                if query.scope is not None and target.forms.scope in (query.scope, None):
                    continue  # only the scope's owner publishes there; @types/x is no squat of x
                plan = plans.get(target.forms.key)
                if plan is None:
                    plan = plans[target.forms.key] = self._plan(target, self._techniques.candidates)
                best = self._best(query, target, reg, plan)
                if best is not None:
                    threats.append(best[0])
                    critical = critical or best[1].forces_malicious
        if not threats:
            return _clean(name, reg)
        threats.sort(key=lambda t: (-t.score, t.target))
        threats = threats[:MAX_THREATS]
        return ScanResult(name, reg, verdict_for([t.score for t in threats], critical), threats)

    @staticmethod
    def _plan(target: Target, techniques: Sequence[Technique]) -> tuple[Technique, ...]:
        """The techniques whose length gate lets them judge ``target`` (per target, not per name)."""
        return tuple(t for t in techniques if t.applies(target))

    def _best(
        self, query: Query, target: Target, registry: str, techniques: tuple[Technique, ...]
    ) -> tuple[Threat, Technique] | None:
        """The best-scoring threat of ``techniques`` on ``target``, and the technique behind it."""
        forms = target.forms
        if query.scope == forms.scope:
            delta = len(query.bare) - len(forms.bare)
        else:
            delta = len(query.key) - len(forms.key)
        squashed_delta = len(query.squashed) - len(forms.squashed)
        scoped = query.scope is not None
        best: tuple[Technique, Match, float] | None = None
        for technique in techniques:
            if scoped and not technique.scoped_queries:
                continue
            deltas = technique.length_deltas
            if deltas is not None and delta not in deltas and squashed_delta not in deltas:
                continue  # e.g. an omission needs a name one character shorter
            match = technique.match(query, target)
            if match is None:
                continue
            value = score(match, target)
            if value >= MIN_REPORT_SCORE and (best is None or value > best[2]):
                best = technique, match, value
        if best is None:
            return None
        technique, match, value = best  # the evidence is written for the winner only
        return self._threat(technique, match, value, target, query, registry), technique

    @staticmethod
    def _threat(
        technique: Technique, match: Match, value: float, target: Target, query: NameForms, registry: str
    ) -> Threat:
        evidence = (
            f"{technique.technique.replace('_', ' ')}: '{query.name}' {match.detail} "
            f"(target '{target.name}', {_describe(target, registry)})"
        )
        return Threat(technique.type, target.name, technique.technique, value, severity_for(value), evidence)


def _requirements_names(text: str) -> list[str]:
    names = []
    for raw in text.splitlines():
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith(("#", "-", "git+", "http:", "https:", "file:")):
            continue
        m = _REQ_NAME.match(line)
        if m:
            names.append(re.split(r"[\[<>=!~;@ ]", m.group(1), maxsplit=1)[0] or m.group(1))
    return names


def _package_json_names(text: str, path: Path) -> list[str]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise NameListError(f"{path} is not valid JSON: {exc.msg} (line {exc.lineno})") from exc
    if not isinstance(data, dict):
        raise NameListError(f"{path} is not a package.json object")
    names: list[str] = []
    for key in _PACKAGE_JSON_KEYS:
        deps = data.get(key) or {}
        if isinstance(deps, dict):
            names.extend(n for n in deps if n not in names)
    return names
