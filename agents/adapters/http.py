"""HTTP plumbing shared by the registry metadata client and the feed pollers: a lazily opened
aiohttp session and retries with jittered exponential backoff that honour a server's ``Retry-After``
(RFC 9110 §10.2.3: delay-seconds or an HTTP-date, sent with 429 and 503)."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from email.utils import parsedate_to_datetime
from typing import TypeVar

import aiohttp

__all__ = ["LazySession", "parse_retry_after", "with_backoff"]

T = TypeVar("T")


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` value (``"120"`` or ``"Wed, 21 Oct 2026 07:28:00 GMT"``).

    ``None`` when absent or unreadable; a date in the past is ``0.0``.
    """
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # RFC 9110 dates are GMT
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


async def with_backoff(
    attempt: Callable[[], Awaitable[T]],
    retries: int,
    backoff_s: float,
    retryable: type[Exception],
    *,
    max_wait_s: float | None = None,
) -> T:
    """``await attempt()`` up to ``retries + 1`` times; between tries sleep ``backoff_s`` doubling,
    jittered to 50-100 %. Only ``retryable`` errors are retried; the last one is re-raised.

    A retryable error with a ``retry_after_s`` attribute (the server's ``Retry-After``, in seconds)
    waits at least that long before the next try. One that asks for more than ``max_wait_s`` is
    re-raised at once, so the caller can schedule the retry instead of blocking that long here.
    """
    for n in range(retries):
        try:
            return await attempt()
        except retryable as exc:
            delay = backoff_s * 2**n * (0.5 + random.random() / 2)
            hinted = getattr(exc, "retry_after_s", None)
            if isinstance(hinted, int | float) and hinted > 0:
                if max_wait_s is not None and hinted > max_wait_s:
                    raise
                delay = max(delay, float(hinted))
            await asyncio.sleep(delay)
    return await attempt()


class LazySession:
    """One aiohttp session opened on first use (inside the running loop), or a caller's session.

    ``close()`` closes only a session this object opened; a closed session is reopened on demand.
    """

    def __init__(
        self, timeout_s: float, headers: dict[str, str], session: aiohttp.ClientSession | None = None
    ) -> None:
        self.timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._headers = headers
        self._session = session
        self._owns_session = session is None

    def get(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self.timeout, headers=self._headers)
            self._owns_session = True
        return self._session

    async def close(self) -> None:
        if self._session is not None and self._owns_session:
            await self._session.close()
        self._session = None
