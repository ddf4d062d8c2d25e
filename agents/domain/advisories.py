"""Exact lookup of known-malicious package versions from OSV advisories.

Reads the OSV format used by ossf/malicious-packages::

    {"id": "MAL-2022-1", "summary": "...", "affected": [{
        "package": {"ecosystem": "npm", "name": "crossenv"},
        "versions": ["1.0.0"],                                     # exact versions, and/or
        "ranges": [{"type": "SEMVER", "events": [{"introduced": "0"}]}]}]}   # all versions

- A range whose only event is ``introduced: "0"`` (no ``fixed``/``last_affected``/``limit``) means
  every version, the form ossf/malicious-packages uses for packages published as malware.
  Other ranges are not evaluated (no version ordering is attempted); their explicit ``versions``
  still match. Advisories with ``withdrawn`` set are skipped.
- Ecosystems ``npm`` and ``PyPI`` are indexed under the registries ``npm`` and ``pypi``; others are
  skipped (counted in :attr:`KnownMalicious.skipped`). Names are normalized like the detector
  (:func:`typostream.agents.domain.detection.names.normalize`: PEP 503 for PyPI, lowercase for npm, scope
  kept), versions are compared as exact strings.
- A file holds one advisory, a list of advisories, or ``{"advisories": [...]}``; directories are
  searched recursively for ``*.json``.

Production: point :meth:`KnownMalicious.from_paths` at a checkout of
https://github.com/ossf/malicious-packages (its ``osv/malicious/`` directory, refreshed with
``git pull``), optionally together with the bundled seed. The bundled seed
(``typostream.data.patterns/known_malicious.seed.json``, ids ``TYPOSTREAM-SEED-<n>``) only covers a
handful of well-documented historical incidents so the pipeline flags something out of the box.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, Final

from typostream.agents.domain.detection.names import normalize
from typostream.agents.domain.errors import AdvisoryFileError

__all__ = ["ECOSYSTEMS", "KnownMalicious", "MaliciousMatch"]

ECOSYSTEMS: Final = {"npm": "npm", "PyPI": "pypi"}
"""OSV ecosystem -> typostream registry."""
_BOUND_EVENTS: Final = ("fixed", "last_affected", "limit")


@dataclass(frozen=True, slots=True)
class MaliciousMatch:
    """One advisory covering the looked-up version; ``all_versions`` when it covers every version."""

    advisory_id: str
    summary: str
    all_versions: bool


@dataclass(slots=True)
class _Entry:
    all_versions: dict[str, MaliciousMatch] = field(default_factory=dict)
    by_version: dict[str, dict[str, MaliciousMatch]] = field(default_factory=dict)


def _covers_all_versions(ranges: Any) -> bool:
    if not isinstance(ranges, list):
        return False
    for rng in ranges:
        events = rng.get("events") if isinstance(rng, dict) else None
        if not isinstance(events, list):
            continue
        introduced = [e.get("introduced") for e in events if isinstance(e, dict) and "introduced" in e]
        bounded = any(isinstance(e, dict) and any(k in e for k in _BOUND_EVENTS) for e in events)
        if "0" in introduced and not bounded:
            return True
    return False


class KnownMalicious:
    """In-memory index ``(registry, normalized name) -> advisories``; lookups are dict gets."""

    def __init__(self) -> None:
        self._index: dict[tuple[str, str], _Entry] = {}
        self.advisories = 0
        """Advisories indexed (with at least one npm/PyPI package)."""
        self.skipped = 0
        """Affected entries skipped: unknown ecosystem, no name, or withdrawn advisories."""

    def __len__(self) -> int:
        """Number of distinct (registry, name) keys indexed."""
        return len(self._index)

    # --- loading -------------------------------------------------------------------------------
    @classmethod
    def from_paths(cls, paths: Iterable[str | Path]) -> KnownMalicious:
        """Load advisory files and directories (recursively, ``*.json``)."""
        known = cls()
        for path in paths:
            for file in _json_files(Path(path)):
                try:
                    raw = json.loads(file.read_bytes())
                except (OSError, ValueError) as exc:
                    raise AdvisoryFileError(f"cannot read OSV file {file}: {exc}") from exc
                known.add_many(_advisories_in(raw))
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
        advisory_id = advisory.get("id")
        affected = advisory.get("affected")
        if not isinstance(advisory_id, str) or not isinstance(affected, list):
            self.skipped += 1
            return
        if advisory.get("withdrawn"):
            self.skipped += len(affected) or 1
            return
        summary = str(advisory.get("summary") or advisory.get("details") or "")[:500]
        indexed = False
        for item in affected:
            package = item.get("package") if isinstance(item, dict) else None
            registry = ECOSYSTEMS.get(package.get("ecosystem", "")) if isinstance(package, dict) else None
            name = package.get("name") if isinstance(package, dict) else None
            if registry is None or not isinstance(name, str) or not name.strip():
                self.skipped += 1
                continue
            entry = self._index.setdefault((registry, normalize(name, registry)), _Entry())
            if _covers_all_versions(item.get("ranges")):
                entry.all_versions[advisory_id] = MaliciousMatch(advisory_id, summary, True)
            versions = item.get("versions")
            if isinstance(versions, list):
                match = MaliciousMatch(advisory_id, summary, False)
                for version in versions:
                    if isinstance(version, str) and version.strip():
                        entry.by_version.setdefault(version.strip(), {})[advisory_id] = match
            indexed = True
        if indexed:
            self.advisories += 1

    # --- lookup --------------------------------------------------------------------------------
    def lookup(self, registry: str, name: str, version: str | None = None) -> list[MaliciousMatch]:
        """Advisories covering ``name@version`` (all-versions ones first); ``[]`` when none.

        ``registry`` is ``npm`` or ``pypi`` (any other registry returns ``[]``). With
        ``version=None`` only all-versions advisories match.
        """
        registry = registry.strip().lower()
        entry = self._index.get((registry, normalize(name, registry)))
        if entry is None:
            return []
        matches = dict(entry.all_versions)
        if version is not None:
            for advisory_id, match in entry.by_version.get(version.strip(), {}).items():
                matches.setdefault(advisory_id, match)
        return list(matches.values())

    def __contains__(self, key: object) -> bool:
        """``("npm", "crossenv") in known``: the package has any advisory (any version)."""
        if not isinstance(key, tuple) or len(key) != 2:
            return False
        registry, name = key
        return (registry, normalize(str(name), str(registry))) in self._index


def _json_files(path: Path) -> Iterator[Path]:
    if path.is_dir():
        yield from sorted(p for p in path.rglob("*.json") if p.is_file())
    elif path.is_file():
        yield path
    else:
        raise AdvisoryFileError(f"no such advisory file or directory: {path}")


def _advisories_in(raw: Any) -> list[Mapping[str, Any]]:
    if isinstance(raw, dict) and isinstance(raw.get("advisories"), list):
        raw = raw["advisories"]
    if isinstance(raw, dict):
        return [raw]
    if isinstance(raw, list):
        return [item for item in raw if isinstance(item, dict)]
    return []


@cache
def _seed() -> KnownMalicious:
    return KnownMalicious.from_paths([KnownMalicious.seed_path()])
