"""Errors raised by the enrichment library.

Exception tree::

    TypostreamError
    └── EnrichmentError
        ├── PatternFileError (also a ValueError)         fix the pattern JSON named in the message
        ├── KnownMaliciousFileError (also a ValueError)  fix or remove the advisory file named
        ├── UnsupportedRegistryError (also a ValueError) only ``npm`` and ``pypi`` are fetched
        └── RegistryError                                a registry request failed
            ├── RegistryUnavailableError                 5xx / timeout / connection, retries exhausted
            ├── RegistryHTTPError                        an unexpected 4xx (not 404, which is ``None``)
            └── RegistryResponseError                    the body is not the JSON shape expected

The cache never raises for Redis trouble: it degrades to the loader and counts the error.
"""

from __future__ import annotations

from typostream.agents.exceptions import TypostreamError

__all__ = [
    "EnrichmentError",
    "KnownMaliciousFileError",
    "PatternFileError",
    "RegistryError",
    "RegistryHTTPError",
    "RegistryResponseError",
    "RegistryUnavailableError",
    "UnsupportedRegistryError",
]


class EnrichmentError(TypostreamError):
    """Root of every enrichment error."""


class PatternFileError(EnrichmentError, ValueError):
    """The pattern set file is unreadable or a pattern is malformed; the message names the pattern."""


class KnownMaliciousFileError(EnrichmentError, ValueError):
    """An OSV advisory file is unreadable or not JSON; the message names the file."""


class UnsupportedRegistryError(EnrichmentError, ValueError):
    """The registry has no metadata client; pass ``npm`` or ``pypi``."""

    def __init__(self, registry: str) -> None:
        self.registry = registry
        super().__init__(f"unsupported registry {registry!r}; expected 'npm' or 'pypi'")


class RegistryError(EnrichmentError):
    """A registry request failed; ``url`` is the request that failed."""

    def __init__(self, message: str, url: str) -> None:
        self.url = url
        super().__init__(f"{message} ({url})")


class RegistryUnavailableError(RegistryError):
    """5xx, 429, timeouts or connection errors on every attempt; retry later or raise ``timeout_s``."""


class RegistryHTTPError(RegistryError):
    """The registry answered an unexpected client error (401/403/410/...); ``status`` is the code."""

    def __init__(self, status: int, url: str) -> None:
        self.status = status
        super().__init__(f"registry answered HTTP {status}", url)


class RegistryResponseError(RegistryError):
    """The body was not JSON or not the expected document (wrong base URL, proxy error page?)."""
