"""One verdict per package version: name-based detection plus known-malicious advisories (pure, no I/O).

The detect agent, the HTTP scan endpoint and ``typostream scan`` all ask one :class:`Assessor`,
so a package gets the same answer wherever it is asked about. The version (when known: a pin, a
lockfile entry, a publish event) decides which advisories match (:mod:`.advisories`, OSV range
semantics); without one, only advisories covering every version do.

The version is also publish context (:mod:`.context`): a version made for dependency confusion
(``99.0.0``, ``999.9.9``) rescores every name threat with that evidence (``ContextThreat``, its
signals listed) and, for a name with none that is not itself popular, can be a
``dependency_confusion`` threat of its own (technique ``version_pattern``). Without a version, or
with an ordinary one, the result is exactly the name detection's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from typostream.agents.domain.advisories import AdvisorySource, KnownMalicious
from typostream.agents.domain.context import (
    NAME_THREAT_TYPES,
    Signal,
    context_only_threat,
    version_signals,
    with_context,
)
from typostream.agents.domain.detection import Detector, ScanResult, Threat
from typostream.agents.domain.detection.names import normalize
from typostream.agents.domain.detection.scoring import verdict_for
from typostream.agents.domain.vocabulary import Verdict

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
        """``detector.scan`` plus advisories for ``name@version`` (all-versions ones when no version),
        name threats rescored with the version's dependency-confusion signals (when it has any)."""
        result = self.detector.scan(name, registry)
        version = (version or "").strip() or None
        verdict, threats = result.verdict, result.threats
        signals = version_signals(name, version)
        if signals:
            verdict, threats = self._with_version_context(result, signals)
        malicious = advisory_threats(self.known, result.registry, name, version)
        if not malicious:
            return Assessment(name, result.registry, verdict, threats, version)
        return Assessment(name, result.registry, "malicious", [*malicious, *threats], version)

    def _with_version_context(
        self, result: ScanResult, signals: list[Signal]
    ) -> tuple[Verdict, list[Threat]]:
        threats = [with_context(t, signals) if t.type in NAME_THREAT_TYPES else t for t in result.threats]
        if not threats and not self._exempt(result.name, result.registry):
            alone = context_only_threat(result.name, signals)
            threats = [alone] if alone is not None else []
        if not threats:
            return result.verdict, threats
        threats.sort(key=lambda t: (-t.score, t.target))
        critical = result.verdict == "malicious"  # (a forcing technique, e.g. a watchlisted name)
        return verdict_for([t.score for t in threats], critical), threats

    def _exempt(self, name: str, registry: str) -> bool:
        """A popular name publishing 9999.0.0 is its owner (deprecating a line), not confusion; an
        allowlisted name is the team's own (an internal placeholder at 99.x, say)."""
        if self.detector.allowed(name, registry):
            return True
        target = self.detector.index(registry).by_key.get(normalize(name, registry))
        return target is not None and target.popular
