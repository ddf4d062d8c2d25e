"""Detection engine: decide whether a new npm/PyPI name imitates a popular or watchlisted one.

Pure library (no Kafka): ``Detector.default(...).scan(name, registry) -> ScanResult``.
"""

from __future__ import annotations

from typostream.agents.domain.detection.detector import Detector, ScanResult, Threat
from typostream.agents.domain.detection.techniques import TECHNIQUES, Technique

__all__ = [
    "TECHNIQUES",
    "Detector",
    "ScanResult",
    "Technique",
    "Threat",
]
