"""Scoring: confidence 0-1 and severity from technique, distance and the target's popularity.

``score = technique confidence + popularity bonus (by target rank) + watchlist bonus
- short-name penalty``, clamped to [0, 1]. A scanned name that is itself popular is never scored
(the detector returns it clean), so the target is always more popular than the candidate.
Severity is the band of the score (``tunables.SEVERITY_THRESHOLDS``); a technique's declared
``severity`` is what it gets against a mid-popularity target.
"""

from __future__ import annotations

from collections.abc import Sequence

from typostream.agents.domain.detection.index import Target
from typostream.agents.domain.detection.techniques import Match
from typostream.agents.domain.detection.tunables import (
    MALICIOUS_SCORE,
    SEVERITY_THRESHOLDS,
    SHORT_NAME_PENALTY,
    TOP_RANK_BONUS,
    WATCHLIST_BONUS,
)
from typostream.agents.domain.vocabulary import Severity, Verdict

__all__ = ["Verdict", "score", "severity_for", "verdict_for"]


def score(match: Match, target: Target) -> float:
    value = match.confidence
    if target.popular:
        for bound, bonus in TOP_RANK_BONUS:
            if target.rank <= bound:
                value += bonus
                break
    if target.watched:
        value += WATCHLIST_BONUS
    length = len(target.forms.skeleton)
    if length < 8:
        value -= SHORT_NAME_PENALTY * (8 - length)
    return round(min(1.0, max(0.0, value)), 3)


def severity_for(value: float) -> Severity:
    for name, floor in SEVERITY_THRESHOLDS:
        if value >= floor:
            return name  # type: ignore[return-value]
    return "low"


def verdict_for(scores: Sequence[float], critical: bool = False) -> Verdict:
    if not scores:
        return "clean"
    if critical or max(scores) >= MALICIOUS_SCORE:
        return "malicious"
    return "suspicious"
