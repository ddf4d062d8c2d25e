"""One verdict per package: name-based detection plus known-malicious advisories (pure, no I/O).

The detect agent, the HTTP scan endpoint and ``typostream scan`` all call :func:`assess`, so a
name gets the same answer wherever it is asked about.
"""

from __future__ import annotations

from pathlib import Path

from typostream.agents.detection import Detector, ScanResult
from typostream.agents.enrichment import KnownMalicious, known_only


def load_known(extra_paths: str = "") -> KnownMalicious:
    """The bundled seed plus OSV advisories from comma-separated files/directories."""
    extra = [Path(p.strip()) for p in extra_paths.split(",") if p.strip()]
    return (
        KnownMalicious.from_paths([KnownMalicious.seed_path(), *extra]) if extra else KnownMalicious.default()
    )


def assess(
    detector: Detector, known: KnownMalicious, name: str, registry: str, version: str | None = None
) -> ScanResult:
    """``detector.scan`` plus advisories for ``name@version`` (all-versions ones when no version)."""
    result = detector.scan(name, registry)
    malicious = known_only(known, result.registry, name, version)
    if not malicious:
        return result
    return ScanResult(name, result.registry, "malicious", [*malicious, *result.threats])
