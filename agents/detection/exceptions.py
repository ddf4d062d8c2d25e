"""Errors raised by the detection engine.

Exception tree::

    TypostreamError
    ├── UnknownRegistryError (also a ValueError)
    └── NameListError (also a ValueError)
"""

from __future__ import annotations

__all__ = ["NameListError", "TypostreamError", "UnknownRegistryError"]


class TypostreamError(Exception):
    """Root of every typostream error."""


class UnknownRegistryError(TypostreamError, ValueError):
    """The registry is not one the detector knows; pass one of the names listed in the message."""

    def __init__(self, registry: str, known: tuple[str, ...]) -> None:
        self.registry = registry
        self.known = known
        super().__init__(f"unknown registry {registry!r}; expected one of: {', '.join(known)}")


class NameListError(TypostreamError, ValueError):
    """A watchlist/allowlist/scan file could not be read or parsed; fix or point at another file."""
