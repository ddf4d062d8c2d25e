"""Enrichment: what a published version *contains*, beyond its name.

Pure-ish library the detect agent calls (no Faust, no Kafka):

- :class:`PatternSet` - Aho-Corasick literal patterns over install scripts and metadata (data:
  ``data/patterns/patterns.json``).
- :class:`KnownMalicious` - exact lookup in OSV advisories (ossf/malicious-packages format).
- :class:`RegistryClient` - async npm/PyPI metadata fetch (aiohttp, retries, ``None`` on 404).
- :class:`MultiLevelCache` - L1 memory -> L2 Redis -> L3 loader, single-flight, negative caching.
- :func:`analyse` / :func:`known_only` - findings with the fields of the detection ``Threat``.
"""

from __future__ import annotations

from typostream.agents.enrichment.analysis import Finding, analyse, known_only
from typostream.agents.enrichment.cache import DEFAULT_TTLS, MultiLevelCache
from typostream.agents.enrichment.exceptions import (
    EnrichmentError,
    KnownMaliciousFileError,
    PatternFileError,
    RegistryError,
    RegistryHTTPError,
    RegistryResponseError,
    RegistryUnavailableError,
    UnsupportedRegistryError,
)
from typostream.agents.enrichment.known_malicious import KnownMalicious, MaliciousMatch
from typostream.agents.enrichment.patterns import Pattern, PatternHit, PatternSet
from typostream.agents.enrichment.registry import PackageMetadata, RegistryClient

__all__ = [
    "DEFAULT_TTLS",
    "EnrichmentError",
    "Finding",
    "KnownMalicious",
    "KnownMaliciousFileError",
    "MaliciousMatch",
    "MultiLevelCache",
    "PackageMetadata",
    "Pattern",
    "PatternFileError",
    "PatternHit",
    "PatternSet",
    "RegistryClient",
    "RegistryError",
    "RegistryHTTPError",
    "RegistryResponseError",
    "RegistryUnavailableError",
    "UnsupportedRegistryError",
    "analyse",
    "known_only",
]
