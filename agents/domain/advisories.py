"""Known-malicious package versions from OSV advisories, matched with OSV's version semantics.

Reads the OSV format (https://ossf.github.io/osv-schema/) used by ossf/malicious-packages::

    {"id": "MAL-2022-1", "summary": "...", "affected": [{
        "package": {"ecosystem": "npm", "name": "crossenv"},
        "versions": ["1.0.0"],                                              # listed versions, and/or
        "ranges": [{"type": "SEMVER", "events": [{"introduced": "0"}]}]}]}   # ranges of versions

A version is affected when it is listed in ``versions`` or lies in any range (the schema's
``IsVulnerable`` evaluation):

- ``SEMVER`` ranges are ordered by SemVer 2.0 precedence (the ``semver`` library; build metadata
  ignored); ``ECOSYSTEM`` ranges by the ecosystem's own ordering: PEP 440 for PyPI
  (``packaging.version``), SemVer for npm. ``GIT`` ranges (commit hashes) and unknown types are
  not evaluated; a listed ``versions`` entry still matches.
- Within a range, events are sorted by version (``introduced: "0"`` first); walking them,
  ``introduced`` at or below the version sets "affected", ``fixed`` at or below it clears it,
  ``last_affected`` below it clears it. ``limit`` events bound the range from above (the version
  must be below one of them; ``"*"`` is infinity; none means no limit).
- A range whose only event is ``introduced: "0"`` covers every version: the form
  ossf/malicious-packages uses for packages published as malware. Such advisories also match a
  lookup without a version (a name scanned without one).
- No silent "clean": when the looked-up version, or a bound of a range, cannot be ordered (e.g.
  ``latest``, a non-PEP 440 string), the range is taken to cover the version, and the match says
  so in :attr:`MaliciousMatch.detail`.
- Listed versions compare by their canonical form: PEP 440 normalization for PyPI
  (``2.31.0 == 2.31``), SemVer for npm (``v1.0.0 == 1.0.0``); anything unparsable as itself.
- Advisories with ``withdrawn`` set are skipped. Ecosystems ``npm`` and ``PyPI`` are indexed under
  the registries ``npm`` and ``pypi``; others are skipped (counted in :attr:`KnownMalicious.skipped`).
  Names are normalized like the detector (:func:`typostream.agents.domain.detection.names.normalize`:
  PEP 503 for PyPI, lowercase for npm, scope kept).
- A file holds one advisory, a list of advisories, or ``{"advisories": [...]}``; directories are
  searched recursively for ``*.json``.

One evaluation for every store: :func:`affected_packages` turns an advisory into
:class:`PackageAdvisory` records (one per npm/PyPI package it names, versions canonical, ranges
checked), and :func:`match_advisories` decides which records cover a version. The in-memory
:class:`KnownMalicious` keeps the records in a dict; the on-disk index
(``typostream.agents.adapters.advisory_index``, built by ``typostream advisories sync``) stores them
with :meth:`PackageAdvisory.to_json` and hands them back through :class:`AdvisorySource`, which
:class:`KnownMalicious` consults next to its own records.

Production: ``typostream advisories sync`` a checkout or zip of
https://github.com/ossf/malicious-packages into the index (scan and the worker use it when present,
with the bundled seed); :meth:`KnownMalicious.from_paths` still loads OSV files into memory (the
``TYPOSTREAM_KNOWN_MALICIOUS_PATHS`` setting, tests). The bundled seed
(``typostream.data.patterns/known_malicious.seed.json``, ids ``TYPOSTREAM-SEED-<n>``) only covers a
handful of well-documented historical incidents so the pipeline flags something out of the box.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, Final, Protocol

import semver
from packaging.utils import canonicalize_version
from packaging.version import InvalidVersion, Version

from typostream.agents.domain.detection.names import normalize
from typostream.agents.domain.errors import AdvisoryFileError

__all__ = [
    "ECOSYSTEMS",
    "AdvisorySource",
    "KnownMalicious",
    "MaliciousMatch",
    "PackageAdvisory",
    "VersionRange",
    "advisories_in",
    "affected_packages",
    "canonical_version",
    "match_advisories",
    "order_key",
]

ECOSYSTEMS: Final = {"npm": "npm", "PyPI": "pypi"}
"""OSV ecosystem -> typostream registry."""
_EVENTS: Final = ("introduced", "fixed", "last_affected", "limit")
_BOUNDS: Final = ("fixed", "last_affected", "limit")


# --- version orderings -----------------------------------------------------------------------
def _semver(text: str) -> semver.Version:
    """SemVer 2.0, loosely as npm reads versions: surrounding blanks and a leading ``v``/``=`` dropped."""
    text = text.strip().lstrip("=v").strip()
    try:
        return semver.Version.parse(text, optional_minor_and_patch=True)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"not a SemVer version: {text!r}") from exc


def _pep440(text: str) -> Version:
    try:
        return Version(text.strip())
    except InvalidVersion as exc:
        raise ValueError(f"not a PEP 440 version: {text!r}") from exc


_ORDERINGS: Final[Mapping[str, Callable[[str], Any]]] = {"semver": _semver, "pep440": _pep440}
"""Ordering id -> parser returning a comparable key (raises ValueError on an unorderable string)."""
_REGISTRY_ORDERING: Final = {"npm": "semver", "pypi": "pep440"}


def order_key(registry: str, version: str) -> Any:
    """A comparable key for ``version`` in ``registry``'s ordering; ``ValueError`` if unorderable."""
    return _ORDERINGS[_REGISTRY_ORDERING.get(registry, "semver")](version)


def canonical_version(registry: str, version: str) -> str:
    """The form listed versions are compared in: PEP 440-normalized (PyPI), SemVer (npm), else as is."""
    version = version.strip()
    if registry == "pypi":
        return canonicalize_version(version)
    try:
        return str(_semver(version))
    except ValueError:
        return version


# --- ranges ----------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class VersionRange:
    """One OSV ``SEMVER``/``ECOSYSTEM`` range, pre-parsed in its ordering.

    ``events`` are ``(kind, version)`` pairs as given; ``parsed`` the same with comparable keys,
    sorted (``None`` for ``introduced: "0"`` and ``limit: "*"``), or ``None`` when a bound cannot be
    ordered (then the range covers every version: no silent "clean").
    """

    ordering: str
    events: tuple[tuple[str, str], ...]
    parsed: tuple[tuple[str, Any], ...] | None

    @classmethod
    def of(cls, raw: Any, registry: str) -> VersionRange | None:
        """The range in an OSV ``ranges[]`` item, or None when it is not evaluated (GIT, unknown, empty)."""
        if not isinstance(raw, dict) or raw.get("type") not in ("SEMVER", "ECOSYSTEM"):
            return None
        ordering = "semver" if raw["type"] == "SEMVER" else _REGISTRY_ORDERING[registry]
        events: list[tuple[str, str]] = []
        raw_events = raw.get("events")
        for event in raw_events if isinstance(raw_events, list) else ():
            if isinstance(event, dict):
                events.extend((k, str(event[k])) for k in _EVENTS if isinstance(event.get(k), str | int))
        return cls.build(ordering, events)

    @classmethod
    def build(cls, ordering: str, events: Iterable[tuple[str, str]]) -> VersionRange | None:
        """A range from its ordering (``semver``/``pep440``) and ``(kind, version)`` events, as stored
        by :meth:`PackageAdvisory.to_json`; None without an ``introduced`` event (nothing is affected)."""
        given = tuple((str(k), str(v)) for k, v in events if k in _EVENTS)
        if ordering not in _ORDERINGS or not any(kind == "introduced" for kind, _ in given):
            return None
        return cls(ordering, given, _parse_events(list(given), _ORDERINGS[ordering]))

    @property
    def all_versions(self) -> bool:
        """Only ``introduced: "0"`` (and no bound): every version."""
        return all(k == "introduced" for k, _ in self.events) and ("introduced", "0") in self.events

    def describe(self) -> str:
        """``>=1.0.0, <1.0.2`` — the events as comparisons."""
        ops = {"introduced": ">=", "fixed": "<", "last_affected": "<=", "limit": "<"}
        return ", ".join(f"{ops[kind]}{version}" for kind, version in self.events)

    def covers(self, key: Any) -> bool:
        """OSV's ``IncludedInRanges`` for one range; ``key`` from the same ordering."""
        if self.parsed is None:
            return True
        limits = [v for k, v in self.parsed if k == "limit"]
        if limits and not any(limit is None or key < limit for limit in limits):
            return False
        affected = False
        for kind, bound in self.parsed:
            if kind == "introduced" and (bound is None or key >= bound):
                affected = True
            elif (kind == "fixed" and key >= bound) or (kind == "last_affected" and key > bound):
                affected = False
        return affected


def _parse_events(
    events: list[tuple[str, str]], parse: Callable[[str], Any]
) -> tuple[tuple[str, Any], ...] | None:
    parsed: list[tuple[str, Any]] = []
    for kind, version in events:
        if (kind == "introduced" and version == "0") or (kind == "limit" and "*" in version):
            parsed.append((kind, None))
            continue
        try:
            parsed.append((kind, parse(version)))
        except ValueError:
            return None
    # sorted by version, introduced "0" first and limit "*" last; ties keep the given order
    lowest = [e for e in parsed if e[1] is None and e[0] == "introduced"]
    highest = [e for e in parsed if e[1] is None and e[0] == "limit"]
    ordered = sorted((e for e in parsed if e[1] is not None), key=lambda e: e[1])
    return (*lowest, *ordered, *highest)


# --- records and matching (shared by the in-memory and the on-disk index) -------------------
@dataclass(frozen=True, slots=True)
class MaliciousMatch:
    """One advisory covering the looked-up version; ``all_versions`` when it covers every version.

    ``detail`` says how it matched: ``all versions``, ``version 1.0.1 listed``, ``version 0.5.0 in
    range >=0, <1.0.0``, or that the version could not be ordered against a range.
    """

    advisory_id: str
    summary: str
    all_versions: bool
    detail: str = "all versions"


@dataclass(frozen=True, slots=True)
class PackageAdvisory:
    """What one advisory says about one package (one ``affected[]`` entry): the unit every index stores.

    ``versions`` are canonical (:func:`canonical_version`); ``ranges`` the evaluated ones (empty when
    ``all_versions``, which makes them moot).
    """

    advisory_id: str
    summary: str
    all_versions: bool
    versions: frozenset[str] = frozenset()
    ranges: tuple[VersionRange, ...] = ()

    def to_json(self) -> list[Any]:
        """A compact JSON-able form: ``[id, summary, all, [versions], [[ordering, [[kind, v]...]]...]]``
        (trailing empty parts dropped); :meth:`from_json` reads it back."""
        out: list[Any] = [self.advisory_id, self.summary, int(self.all_versions)]
        if self.versions or self.ranges:
            out.append(sorted(self.versions))
        if self.ranges:
            out.append([[r.ordering, [list(e) for e in r.events]] for r in self.ranges])
        return out

    @classmethod
    def from_json(cls, raw: Sequence[Any]) -> PackageAdvisory:
        versions = frozenset(str(v) for v in raw[3]) if len(raw) > 3 else frozenset()
        built = (VersionRange.build(str(o), events) for o, events in raw[4]) if len(raw) > 4 else ()
        ranges = tuple(r for r in built if r is not None)
        return cls(str(raw[0]), str(raw[1]), bool(raw[2]), versions, ranges)


class AdvisorySource(Protocol):
    """Advisories held elsewhere (the on-disk index), consulted by :class:`KnownMalicious` per lookup."""

    def records(self, registry: str, name: str) -> Sequence[PackageAdvisory]:
        """The records of ``(registry, normalized name)``; empty when the package has none."""
        ...


def advisories_in(raw: Any) -> list[Mapping[str, Any]]:
    """The advisories in a parsed OSV file: one advisory, a list of them, or ``{"advisories": [...]}``."""
    if isinstance(raw, dict) and isinstance(raw.get("advisories"), list):
        raw = raw["advisories"]
    if isinstance(raw, dict):
        return [raw]
    if isinstance(raw, list):
        return [item for item in raw if isinstance(item, dict)]
    return []


def affected_packages(advisory: Mapping[str, Any]) -> tuple[list[tuple[str, str, PackageAdvisory]], int]:
    """``(registry, normalized name, record)`` for each npm/PyPI package ``advisory`` affects, and the
    number of entries skipped (unknown ecosystem, no name; a withdrawn or id-less advisory counts its
    entries, at least one)."""
    advisory_id = advisory.get("id")
    affected = advisory.get("affected")
    if not isinstance(advisory_id, str) or not isinstance(affected, list):
        return [], 1
    if advisory.get("withdrawn"):
        return [], len(affected) or 1
    summary = str(advisory.get("summary") or advisory.get("details") or "")[:500]
    out: list[tuple[str, str, PackageAdvisory]] = []
    skipped = 0
    for item in affected:
        package = item.get("package") if isinstance(item, dict) else None
        ecosystem = package.get("ecosystem") if isinstance(package, dict) else None
        registry = ECOSYSTEMS.get(ecosystem) if isinstance(ecosystem, str) else None
        name = package.get("name") if isinstance(package, dict) else None
        if not isinstance(item, dict) or registry is None or not isinstance(name, str) or not name.strip():
            skipped += 1
            continue
        raw_ranges = item.get("ranges")
        ranges = [VersionRange.of(r, registry) for r in raw_ranges] if isinstance(raw_ranges, list) else []
        evaluated = tuple(r for r in ranges if r is not None)
        all_versions = any(r.all_versions for r in evaluated)
        raw_versions = item.get("versions")
        versions = frozenset(
            canonical_version(registry, v)
            for v in (raw_versions if isinstance(raw_versions, list) and not all_versions else ())
            if isinstance(v, str) and v.strip()
        )
        record = PackageAdvisory(
            advisory_id, summary, all_versions, versions, () if all_versions else evaluated
        )
        out.append((registry, normalize(name, registry), record))
    return out, skipped


def match_advisories(
    registry: str, records: Iterable[PackageAdvisory], version: str | None
) -> list[MaliciousMatch]:
    """The advisories among one package's ``records`` that cover ``version`` (OSV's evaluation), once
    each: all-versions ones first, then listed versions, then ranges (records in the order given).

    With ``version=None`` (or blank) only all-versions advisories match.
    """
    records = list(records)
    matches: dict[str, MaliciousMatch] = {}
    for record in records:
        if record.all_versions and record.advisory_id not in matches:
            matches[record.advisory_id] = MaliciousMatch(record.advisory_id, record.summary, True)
    if version is None or not version.strip() or len(matches) == len({r.advisory_id for r in records}):
        return list(matches.values())
    version = version.strip()
    canonical: str | None = None
    for record in records:
        if record.versions and record.advisory_id not in matches:
            canonical = canonical_version(registry, version) if canonical is None else canonical
            if canonical in record.versions:
                detail = f"version {version} listed"
                matches[record.advisory_id] = MaliciousMatch(
                    record.advisory_id, record.summary, False, detail
                )
    keys: dict[str, Any] = {}
    for record in records:
        if record.advisory_id in matches:
            continue
        for rng in record.ranges:
            detail = _range_detail(rng, version, keys)
            if detail:
                matches[record.advisory_id] = MaliciousMatch(
                    record.advisory_id, record.summary, False, detail
                )
                break
    return list(matches.values())


def _range_detail(rng: VersionRange, version: str, keys: dict[str, Any]) -> str:
    """How ``rng`` covers ``version`` ("" when it does not); ``keys`` caches parsed versions."""
    if rng.parsed is None:
        return f"range {rng.describe()} cannot be ordered; taken to cover version {version}"
    if rng.ordering not in keys:
        try:
            keys[rng.ordering] = _ORDERINGS[rng.ordering](version)
        except ValueError:
            keys[rng.ordering] = None
    key = keys[rng.ordering]
    if key is None:
        return f"version {version} cannot be ordered; range {rng.describe()} taken to cover it"
    return f"version {version} in range {rng.describe()}" if rng.covers(key) else ""


# --- the in-memory index -------------------------------------------------------------------------
class KnownMalicious:
    """Advisories by ``(registry, normalized name)``: records held in memory (a dict; lookups are one
    get plus that package's few records), plus any :class:`AdvisorySource` (the on-disk index)
    consulted on each lookup; every record is evaluated by :func:`match_advisories`."""

    def __init__(self, sources: Sequence[AdvisorySource] = ()) -> None:
        self._index: dict[tuple[str, str], list[PackageAdvisory]] = {}
        self.sources: tuple[AdvisorySource, ...] = tuple(sources)
        """Other stores looked up after the in-memory records (e.g. the on-disk index)."""
        self.advisories = 0
        """Advisories indexed in memory (with at least one npm/PyPI package)."""
        self.skipped = 0
        """Affected entries skipped: unknown ecosystem, no name, or withdrawn advisories."""

    def __len__(self) -> int:
        """Number of distinct (registry, name) keys held in memory (sources not counted)."""
        return len(self._index)

    # --- loading -------------------------------------------------------------------------------
    @classmethod
    def from_paths(
        cls, paths: Iterable[str | Path], sources: Sequence[AdvisorySource] = ()
    ) -> KnownMalicious:
        """Load advisory files and directories (recursively, ``*.json``), next to ``sources``."""
        known = cls(sources)
        for path in paths:
            for file in _json_files(Path(path)):
                try:
                    raw = json.loads(file.read_bytes())
                except (OSError, ValueError, RecursionError) as exc:
                    raise AdvisoryFileError(f"cannot read OSV file {file}: {exc}") from exc
                known.add_many(advisories_in(raw))
        return known

    @classmethod
    def from_advisories(cls, advisories: Iterable[Mapping[str, Any]]) -> KnownMalicious:
        known = cls()
        known.add_many(advisories)
        return known

    @classmethod
    def default(cls) -> KnownMalicious:
        """The bundled seed only (built once per process); production adds ossf/malicious-packages."""
        return _seed()

    @staticmethod
    def seed_path() -> Path:
        """Path of the bundled seed file, to pass to :meth:`from_paths` next to an OSV checkout."""
        return Path(str(resources.files("typostream.data.patterns").joinpath("known_malicious.seed.json")))

    def add_many(self, advisories: Iterable[Mapping[str, Any]]) -> None:
        for advisory in advisories:
            self.add(advisory)

    def add(self, advisory: Mapping[str, Any]) -> None:
        """Index one OSV advisory (skipping withdrawn ones and unknown ecosystems)."""
        records, skipped = affected_packages(advisory)
        self.skipped += skipped
        for registry, name, record in records:
            self._index.setdefault((registry, name), []).append(record)
        if records:
            self.advisories += 1

    # --- lookup --------------------------------------------------------------------------------
    def records(self, registry: str, name: str) -> list[PackageAdvisory]:
        """Every record of the package, in memory then in each source (``name`` as given; normalized here)."""
        registry = registry.strip().lower()
        key = normalize(name, registry)
        found = list(self._index.get((registry, key), ()))
        for source in self.sources:
            found.extend(source.records(registry, key))
        return found

    def lookup(self, registry: str, name: str, version: str | None = None) -> list[MaliciousMatch]:
        """Advisories covering ``name@version``: all-versions ones first, then listed versions, then
        ranges; ``[]`` when none.

        ``registry`` is ``npm`` or ``pypi`` (any other registry returns ``[]``). With
        ``version=None`` only all-versions advisories match.
        """
        registry = registry.strip().lower()
        if registry not in _REGISTRY_ORDERING:
            return []
        records = self.records(registry, name)
        return match_advisories(registry, records, version) if records else []

    def __contains__(self, key: object) -> bool:
        """``("npm", "crossenv") in known``: the package has any advisory (any version)."""
        if not isinstance(key, tuple) or len(key) != 2:
            return False
        registry, name = key
        return str(registry) in _REGISTRY_ORDERING and bool(self.records(str(registry), str(name)))


def _json_files(path: Path) -> Iterator[Path]:
    if path.is_dir():
        yield from sorted(p for p in path.rglob("*.json") if p.is_file())
    elif path.is_file():
        yield path
    else:
        raise AdvisoryFileError(f"no such advisory file or directory: {path}")


@cache
def _seed() -> KnownMalicious:
    return KnownMalicious.from_paths([KnownMalicious.seed_path()])
