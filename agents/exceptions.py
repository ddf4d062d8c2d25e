"""Errors raised by the streaming pipeline's pure logic.

TypostreamError
 └── InvalidEventError   an input message that cannot be processed (goes to the DLQ)
"""

from __future__ import annotations

from typing import Literal

DeadLetterReason = Literal["not_json", "not_object", "schema", "oversized", "bad_encoding", "internal_error"]


class TypostreamError(Exception):
    """Root of every typostream error."""


class InvalidEventError(TypostreamError):
    """The input message is not a valid publish event; ``reason`` is a stable DLQ code."""

    def __init__(self, reason: DeadLetterReason, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason: DeadLetterReason = reason
        self.detail = detail


def internal_error(exc: Exception) -> InvalidEventError:
    """Wrap an unexpected failure so the message is dead-lettered instead of stalling its partition."""
    return InvalidEventError("internal_error", f"{type(exc).__name__}: {exc}"[:500])
