"""HTTP plumbing shared by the registry metadata client and the feed pollers: a lazily opened
aiohttp session and retries with jittered exponential backoff."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from typing import TypeVar

import aiohttp

T = TypeVar("T")


async def with_backoff(
    attempt: Callable[[], Awaitable[T]], retries: int, backoff_s: float, retryable: type[Exception]
) -> T:
    """``await attempt()`` up to ``retries + 1`` times; between tries sleep ``backoff_s`` doubling,
    jittered to 50-100 %. Only ``retryable`` errors are retried; the last one is re-raised."""
    for n in range(retries):
        try:
            return await attempt()
        except retryable:
            delay = backoff_s * 2**n
            await asyncio.sleep(delay * (0.5 + random.random() / 2))
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
