"""Errors raised by the registry pollers.

Exception tree::

    TypostreamError
    └── FeedError
        ├── FeedUnavailableError   5xx / 429 / timeout / connection on every attempt: retry later
        ├── FeedHTTPError          an unexpected 4xx; check the base URL (``--pypi-url`` ...)
        ├── FeedResponseError      the body is not the RSS/JSON shape expected (proxy page?)
        └── CursorFileError        the cursor file is unreadable; fix or delete it to start afresh
"""

from __future__ import annotations

from pathlib import Path

from typostream.agents.exceptions import TypostreamError

__all__ = ["CursorFileError", "FeedError", "FeedHTTPError", "FeedResponseError", "FeedUnavailableError"]


class FeedError(TypostreamError):
    """Root of every poller error."""


class FeedRequestError(FeedError):
    """A request to a registry failed; ``url`` is the request."""

    def __init__(self, message: str, url: str) -> None:
        self.url = url
        super().__init__(f"{message} ({url})")


class FeedUnavailableError(FeedRequestError):
    """5xx, 429, timeouts or connection errors on every attempt; the poller retries next interval."""


class FeedHTTPError(FeedRequestError):
    """The registry answered an unexpected client error; ``status`` is the code. Check the base URL."""

    def __init__(self, status: int, url: str) -> None:
        self.status = status
        super().__init__(f"registry answered HTTP {status}", url)


class FeedResponseError(FeedRequestError):
    """The body is not the RSS/JSON document expected (wrong base URL, proxy error page?)."""


class CursorFileError(FeedError):
    """The cursor file cannot be read or written; fix its permissions or delete it to start afresh."""

    def __init__(self, path: Path, detail: str) -> None:
        self.path = path
        super().__init__(f"cursor file {path}: {detail}")
