"""One verdict per package version: name-based detection plus known-malicious advisories (pure, no I/O).

The detect agent, the HTTP scan endpoint and ``typostream scan`` all ask one :class:`Assessor`,
so a package gets the same answer wherever it is asked about. The version (when known: a pin, a
lockfile entry, a publish event) decides which advisories match (:mod:`.advisories`, OSV range
semantics); without one, only advisories covering every version do.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from typostream.agents.domain.advisories import AdvisorySource, KnownMalicious
from typostream.agents.domain.detection import Detector, ScanResult, Threat

__all__ = ["Assessment", "Assessor", "advisory_threats", "load_known"]

KNOWN_MALICIOUS_SCORE: Final = 1.0


def load_known(extra_paths: str = "", sources: Sequence[AdvisorySource] = ()) -> KnownMalicious:
    """The bundled seed plus OSV advisories from comma-separated files/directories (loaded into
    memory), plus ``sources`` looked up per package (the on-disk index of ``advisories sync``)."""
    extra = [Path(p.strip()) for p in extra_paths.split(",") if p.strip()]
    if not extra and not sources:
        return KnownMalicious.default()
    return KnownMalicious.from_paths([KnownMalicious.seed_path(), *extra], sources=sources)


def advisory_threats(known: KnownMalicious, registry: str, name: str, version: str | None) -> list[Threat]:
    """``malicious_package`` threats for ``name@version`` from the advisories (no I/O)."""
    return [
        Threat(
            type="malicious_package",
            target=match.advisory_id,
            technique="known_malicious",
            score=KNOWN_MALICIOUS_SCORE,
            severity="critical",
            evidence=f"{match.advisory_id} ({match.detail}): {match.summary}",
        )
        for match in known.lookup(registry, name, version)
    ]


@dataclass(frozen=True, slots=True)
class Assessment(ScanResult):
    """A :class:`ScanResult` for one version of a package (``version`` None: any/unknown version)."""

    version: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """``{"name", "version", "registry", "verdict", "threats"}`` — the CLI's JSON line and the API's."""
        return {
            "name": self.name,
            "version": self.version,
            "registry": self.registry,
            "verdict": self.verdict,
            "threats": [t.to_dict() for t in self.threats],
        }


@dataclass(frozen=True)
class Assessor:
    """Name detection plus advisories; immutable and thread safe like the detector it holds."""

    detector: Detector
    known: KnownMalicious

    def assess(self, name: str, registry: str, version: str | None = None) -> Assessment:
        """``detector.scan`` plus advisories for ``name@version`` (all-versions ones when no version)."""
        result = self.detector.scan(name, registry)
        version = (version or "").strip() or None
        malicious = advisory_threats(self.known, result.registry, name, version)
        if not malicious:
            return Assessment(name, result.registry, result.verdict, result.threats, version)
        return Assessment(name, result.registry, "malicious", [*malicious, *result.threats], version)
