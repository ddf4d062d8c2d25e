"""The context-aware score: name evidence plus publish context -> one risk score and severity.

``score = sigmoid(logit(name score) + sum of the signals' weights)``, the name score clamped to
[``SCORE_FLOOR``, ``SCORE_CEILING``] and :data:`~.tunables.BASE_SCORE` standing in for it when
there is no name threat. A weight is a log-likelihood ratio (``tunables.py`` says where each comes
from), so the combination is naive Bayes with the name score as the prior: independent signals
multiply the odds, a negative one (a long history, the target's own maintainer) divides them. No
signal leaves the name score exactly as it was, so name-only callers keep their results. Severity
is the detection engine's band of the score (``detection.scoring.severity_for``), so a context
threat sorts with name threats.

Every signal is listed in the threat (:class:`ContextThreat` ``signals``, a threat event's
``threat.signals`` and ``threat.evidence``), also the ones that weigh nothing (already counted).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from typostream.agents.domain.context.base import PublishContext, Signal
from typostream.agents.domain.context.tunables import (
    BASE_SCORE,
    CONTEXT_ALERT_SCORE,
    INSTALL_HOOKS,
    SCORE_CEILING,
    SCORE_FLOOR,
    SEVERITY_FLOOR_SCORES,
)
from typostream.agents.domain.context.version import DependencyConfusionVersion
from typostream.agents.domain.detection import Threat
from typostream.agents.domain.detection.scoring import severity_for
from typostream.agents.domain.vocabulary import SEVERITY_RANK

__all__ = [
    "NAME_THREAT_TYPES",
    "ContextThreat",
    "ContextVerdict",
    "NameEvidence",
    "combine",
    "context_only_threat",
    "needs_history",
    "with_context",
]

NAME_THREAT_TYPES = ("typosquat", "dependency_confusion")
"""Threat types that are name evidence (advisories and content patterns are not)."""
CONTEXT_TECHNIQUE = "context"
VERSION_TECHNIQUE = "version_pattern"
_COUNTED = " (already in the name threat's severity)"


def _logit(p: float) -> float:
    return math.log(p / (1.0 - p))


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x)) if x >= 0 else math.exp(x) / (1.0 + math.exp(x))


def combine(name_score: float | None, signals: Iterable[Signal]) -> float:
    """One 0-1 score from a name score (None: no name evidence) and context signals.

    Without signals a name score comes back unchanged (exactly); without either it is 0.
    """
    weights = [s.weight for s in signals]
    if not weights:
        return name_score if name_score is not None else 0.0
    prior = BASE_SCORE if name_score is None else min(SCORE_CEILING, max(SCORE_FLOOR, float(name_score)))
    return round(_sigmoid(_logit(prior) + math.fsum(weights)), 3)


@dataclass(frozen=True, slots=True)
class ContextThreat(Threat):
    """A :class:`Threat` whose score combines its name evidence with the publish context."""

    signals: tuple[Signal, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {**Threat.to_dict(self), "signals": [s.to_dict() for s in self.signals]}


def with_context(threat: Threat, signals: Sequence[Signal]) -> Threat:
    """``threat`` (a name threat) rescored with ``signals``; the same threat when there are none."""
    if not signals:
        return threat
    value = combine(threat.score, signals)
    return ContextThreat(
        threat.type,
        threat.target,
        threat.technique,
        value,
        severity_for(value),
        threat.evidence,
        tuple(signals),
    )


def _summary(signals: Sequence[Signal]) -> str:
    return "; ".join(s.detail for s in signals if s.weight > 0) or "no raising signal"


def context_only_threat(
    name: str, signals: Sequence[Signal], technique: str = VERSION_TECHNIQUE
) -> ContextThreat | None:
    """A threat from context alone (no name evidence), when it reaches ``CONTEXT_ALERT_SCORE``.

    Its type is ``dependency_confusion`` when a version pattern raises it, else ``suspicious_pattern``;
    its target is the package itself (the internal name it may be claiming).
    """
    value = combine(None, signals)
    if not signals or value < CONTEXT_ALERT_SCORE:
        return None
    confusion = any(s.kind.startswith(f"{DependencyConfusionVersion.id}.") and s.weight > 0 for s in signals)
    kind = "dependency_confusion" if confusion else "suspicious_pattern"
    evidence = f"context of '{name}': {_summary(signals)}"
    return ContextThreat(kind, name, technique, value, severity_for(value), evidence, tuple(signals))


@dataclass(frozen=True, slots=True)
class NameEvidence:
    """The name threat a publish already has (``detect``'s riskiest, as the analysed record carries
    it): its type, target and severity; its score is the floor of that severity's band."""

    type: str
    target: str
    severity: str

    @property
    def score(self) -> float:
        return SEVERITY_FLOOR_SCORES.get(self.severity, SEVERITY_FLOOR_SCORES["low"])

    @classmethod
    def from_last_threat(cls, last: Mapping[str, Any] | None) -> NameEvidence | None:
        """From the ``{id, type, target, severity, timestamp}`` of an event's riskiest threat; None
        when there is none or it is no name threat (an advisory, a content pattern)."""
        if not isinstance(last, Mapping) or last.get("type") not in NAME_THREAT_TYPES:
            return None
        target, severity = last.get("target"), last.get("severity")
        if not isinstance(target, str) or severity not in SEVERITY_FLOOR_SCORES:
            return None
        return cls(str(last["type"]), target, str(severity))


@dataclass(frozen=True, slots=True)
class ContextVerdict:
    """What the context says about one publish: every signal, the combined score and severity, and
    the threat to emit (None when the context does not raise the publish's severity)."""

    signals: tuple[Signal, ...]
    score: float
    severity: str
    threat: ContextThreat | None
    errors: Mapping[str, str] = field(default_factory=dict)


def judge(
    context: PublishContext,
    signals: Sequence[Signal],
    evidence: NameEvidence | None,
    severity_so_far: str = "",
    errors: Mapping[str, str] | None = None,
) -> ContextVerdict:
    """Combine ``evidence`` with ``signals`` and decide whether that is a threat worth emitting.

    The version signals of a publish with name evidence are already in that evidence's severity
    (``Assessor.assess`` applied them): they are listed with weight 0. A threat is emitted when the
    combined severity is above ``severity_so_far`` (the publish's riskiest threat until now); with
    no name evidence, also only from ``CONTEXT_ALERT_SCORE`` on.
    """
    version_kind = f"{DependencyConfusionVersion.id}."
    listed = tuple(
        Signal(s.kind, s.detail + _COUNTED, 0.0)
        if evidence is not None and s.kind.startswith(version_kind)
        else s
        for s in signals
    )
    counted = [s for s in listed if s.weight]
    value = combine(evidence.score if evidence else None, counted)
    severity = severity_for(value)
    threat: ContextThreat | None = None
    raises = counted and SEVERITY_RANK[severity] > SEVERITY_RANK.get(severity_so_far, -1)
    if raises and evidence is not None:
        headline = (
            f"{evidence.type.replace('_', ' ')} of '{evidence.target}' ({evidence.severity} by name) "
            f"is {severity} in context: {_summary(counted)}"
        )
        threat = ContextThreat(
            evidence.type, evidence.target, CONTEXT_TECHNIQUE, value, severity, headline, listed
        )
    elif raises:
        threat = context_only_threat(context.name, listed, CONTEXT_TECHNIQUE)
    return ContextVerdict(listed, value, severity, threat, dict(errors or {}))


def needs_history(context: PublishContext, evidence: NameEvidence | None, signals: Sequence[Signal]) -> bool:
    """Whether the registry's history of the package is worth a request for this publish: its
    metadata was fetched, the packages table has not shown earlier versions, and there is something
    a first release would weigh on (a name threat, an install hook, a version pattern)."""
    metadata = context.metadata
    if metadata is None or context.history is not None or context.standing() == "later":
        return False
    hooks = any(k in INSTALL_HOOKS for k in metadata.install_scripts)
    sdist_only = metadata.registry == "pypi" and metadata.package_types == ("sdist",)
    version = any(s.kind.startswith(f"{DependencyConfusionVersion.id}.") for s in signals)
    return evidence is not None or hooks or sdist_only or version
