"""One verdict per package: name-based detection plus known-malicious advisories (pure, no I/O).

The detect agent, the HTTP scan endpoint and ``typostream scan`` all ask one :class:`Assessor`,
so a name gets the same answer wherever it is asked about.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Final

from typostream.agents.domain.advisories import KnownMalicious
from typostream.agents.domain.detection import Detector, ScanResult, Threat

__all__ = ["Assessor", "advisory_threats", "load_known"]

KNOWN_MALICIOUS_SCORE: Final = 1.0


def load_known(extra_paths: str = "") -> KnownMalicious:
    """The bundled seed plus OSV advisories from comma-separated files/directories."""
    extra = [Path(p.strip()) for p in extra_paths.split(",") if p.strip()]
    return (
        KnownMalicious.from_paths([KnownMalicious.seed_path(), *extra]) if extra else KnownMalicious.default()
    )


def advisory_threats(known: KnownMalicious, registry: str, name: str, version: str | None) -> list[Threat]:
    """``malicious_package`` threats for ``name@version`` from the advisories (no I/O)."""
    findings = []
    for match in known.lookup(registry, name, version):
        scope = "all versions" if match.all_versions else f"version {version}"
        findings.append(
            Threat(
                type="malicious_package",
                target=match.advisory_id,
                technique="known_malicious",
                score=KNOWN_MALICIOUS_SCORE,
                severity="critical",
                evidence=f"{match.advisory_id} ({scope}): {match.summary}",
            )
        )
    return findings


@dataclass(frozen=True)
class Assessor:
    """Name detection plus advisories; immutable and thread safe like the detector it holds."""

    detector: Detector
    known: KnownMalicious

    def assess(self, name: str, registry: str, version: str | None = None) -> ScanResult:
        """``detector.scan`` plus advisories for ``name@version`` (all-versions ones when no version)."""
        result = self.detector.scan(name, registry)
        malicious = advisory_threats(self.known, result.registry, name, version)
        if not malicious:
            return result
        return ScanResult(name, result.registry, "malicious", [*malicious, *result.threats])
