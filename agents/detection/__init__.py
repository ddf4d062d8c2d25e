"""Detection engine: decide whether a new npm/PyPI name imitates a popular or watchlisted one.

Pure library (no Kafka): ``Detector.default(...).scan(name, registry) -> ScanResult``.
"""

from __future__ import annotations

from typostream.agents.detection.detector import Detector, ScanResult, Threat
from typostream.agents.detection.exceptions import NameListError, TypostreamError, UnknownRegistryError
from typostream.agents.detection.techniques import TECHNIQUES, Technique

__all__ = [
    "TECHNIQUES",
    "Detector",
    "NameListError",
    "ScanResult",
    "Technique",
    "Threat",
    "TypostreamError",
    "UnknownRegistryError",
]
