"""Context detectors: what a publish's circumstances say beyond its name (pure, no I/O).

GuardDog's layout: one heuristic per file (a :class:`ContextDetector`: ``id``, ``description``,
``needs_metadata``, ``detect(context) -> [Signal]``), an explicit class list turned into
``{id: instance}`` (:data:`DETECTORS`), and a runner that gives each detector its own try/except
and collects errors per detector (:func:`run_detectors`). ``score.py`` combines the signals with
the name evidence into one risk score. Adding a detector: its module, one line in ``_CLASSES``,
its tests (``tests/agents/domain/context/``), weights in ``tunables.py``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from types import MappingProxyType

from typostream.agents.domain.context.base import (
    ContextDetector,
    PublishContext,
    SeenHistory,
    Signal,
    Standing,
)
from typostream.agents.domain.context.description import Description
from typostream.agents.domain.context.history import History
from typostream.agents.domain.context.install_script import InstallScript
from typostream.agents.domain.context.maintainer import NewMaintainer
from typostream.agents.domain.context.repository import RepositoryMismatch
from typostream.agents.domain.context.score import (
    NAME_THREAT_TYPES,
    ContextThreat,
    ContextVerdict,
    NameEvidence,
    combine,
    context_only_threat,
    judge,
    needs_history,
    with_context,
)
from typostream.agents.domain.context.version import DependencyConfusionVersion, version_signals

__all__ = [
    "DETECTORS",
    "NAME_THREAT_TYPES",
    "ContextDetector",
    "ContextThreat",
    "ContextVerdict",
    "DetectorRun",
    "NameEvidence",
    "PublishContext",
    "SeenHistory",
    "Signal",
    "Standing",
    "assess_context",
    "combine",
    "context_only_threat",
    "judge",
    "needs_history",
    "run_detectors",
    "version_signals",
    "with_context",
]

_CLASSES: tuple[type[ContextDetector], ...] = (
    History,
    DependencyConfusionVersion,
    InstallScript,
    Description,
    RepositoryMismatch,
    NewMaintainer,
)

DETECTORS: MappingProxyType[str, ContextDetector] = MappingProxyType({cls.id: cls() for cls in _CLASSES})


@dataclass(frozen=True, slots=True)
class DetectorRun:
    """The signals of every detector that ran, and ``{detector id: error}`` for those that raised."""

    signals: tuple[Signal, ...] = ()
    errors: dict[str, str] = field(default_factory=dict)


def run_detectors(context: PublishContext, detectors: Iterable[ContextDetector] | None = None) -> DetectorRun:
    """Run ``detectors`` (default: all of :data:`DETECTORS`) on ``context``, each on its own: a
    detector that raises (a bug, odd metadata) is reported in ``errors`` and the others still run.
    Metadata detectors are skipped when the context has no metadata."""
    signals: list[Signal] = []
    errors: dict[str, str] = {}
    for detector in DETECTORS.values() if detectors is None else detectors:
        if detector.needs_metadata and context.metadata is None:
            continue
        try:
            signals.extend(detector.detect(context))
        except Exception as exc:  # one heuristic's bug must not hide the others' evidence
            errors[detector.id] = f"{type(exc).__name__}: {exc}"
    return DetectorRun(tuple(signals), errors)


def assess_context(
    context: PublishContext, evidence: NameEvidence | None, severity_so_far: str = ""
) -> ContextVerdict:
    """Every detector on ``context``, combined with ``evidence`` (:func:`score.judge`)."""
    run = run_detectors(context)
    return judge(context, run.signals, evidence, severity_so_far, run.errors)
