"""The words typostream speaks, defined once: registries, severities, verdicts, threat types, DLQ reasons.

The JSON Schemas in ``schemas/`` repeat some of these as ``enum`` lists (schemas are data other
tools read); ``tests/test_vocabulary.py`` keeps the two equal. Technique ids live in the technique
registry (``detection.techniques.TECHNIQUES``), each next to its code.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Final, Literal, get_args

Registry = Literal["npm", "pypi"]
REGISTRIES: Final[tuple[Registry, ...]] = get_args(Registry)
"""Registries typostream monitors and scans: each has a popular-name snapshot, a feed, a metadata
client and is accepted by the message schemas."""

WATCHLIST_ONLY_REGISTRIES: Final = ("rubygems",)
"""Registries the name detector can check against a user's watchlist only (no popular snapshot, no
feed). ``scan`` refuses them without a watchlist rather than answer "clean" from an empty index."""

DETECTOR_REGISTRIES: Final = (*REGISTRIES, *WATCHLIST_ONLY_REGISTRIES)

Severity = Literal["low", "medium", "high", "critical"]
SEVERITIES: Final[tuple[Severity, ...]] = get_args(Severity)
"""Lowest first."""
SEVERITY_RANK: Final[MappingProxyType[str, int]] = MappingProxyType({s: i for i, s in enumerate(SEVERITIES)})

Verdict = Literal["clean", "suspicious", "malicious"]
VERDICTS: Final[tuple[Verdict, ...]] = get_args(Verdict)

ThreatType = Literal["typosquat", "dependency_confusion", "malicious_package", "suspicious_pattern"]
THREAT_TYPES: Final[tuple[ThreatType, ...]] = get_args(ThreatType)

DeadLetterReason = Literal[
    "not_json", "not_object", "schema", "oversized", "bad_encoding", "internal_error", "undeliverable"
]
"""``undeliverable``: a threat alert a target refused for good (4xx other than 429) or after every attempt."""
DEAD_LETTER_REASONS: Final[tuple[DeadLetterReason, ...]] = get_args(DeadLetterReason)

REGISTRY_URLS: Final = MappingProxyType(
    {
        "npm_registry": "https://registry.npmjs.org",
        "npm_replicate": "https://replicate.npmjs.com",
        "pypi": "https://pypi.org",
    }
)
"""Public base URLs, the defaults of the matching settings (mirrors are configured there)."""


def max_severity(severities: list[str] | tuple[str, ...]) -> str:
    """The highest of ``severities`` ("" for none)."""
    ranked = [SEVERITY_RANK[s] for s in severities if s in SEVERITY_RANK]
    return SEVERITIES[max(ranked)] if ranked else ""


def at_least(severity: str, floor: str) -> bool:
    """Whether ``severity`` reaches ``floor`` (unknown severities never do)."""
    return SEVERITY_RANK.get(severity, -1) >= SEVERITY_RANK[floor]
