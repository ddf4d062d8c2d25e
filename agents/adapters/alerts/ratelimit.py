"""A token bucket per target: ``rate_per_s`` sustained, ``burst`` at once, FIFO waiters.

Every HTTP attempt (first try or retry) takes a token. A 429 answer ``hold``s the bucket until its
``Retry-After`` has passed, so the other alerts queued for that target wait too instead of being
rejected one by one. ``rate_per_s <= 0`` switches the limit off (holds still apply).

The defaults (1/s, bursts of 5) follow Slack: about one message a second per webhook, short bursts
allowed, then HTTP 429 with ``Retry-After`` seconds (https://api.slack.com/docs/rate-limits).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

__all__ = ["TokenBucket"]


class TokenBucket:
    def __init__(
        self,
        rate_per_s: float,
        burst: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.rate = float(rate_per_s)
        self.capacity = float(max(1, burst))
        self._tokens = self.capacity
        self._clock = clock
        self._sleep = sleep
        self._updated = clock()
        self._not_before = 0.0
        self._lock = asyncio.Lock()  # FIFO: alerts leave in the order they asked

    def _refill(self, now: float) -> None:
        if self.rate > 0:
            self._tokens = min(self.capacity, self._tokens + (now - self._updated) * self.rate)
        self._updated = now

    def hold(self, seconds: float) -> None:
        """Let nothing through for ``seconds`` (a target's ``Retry-After``)."""
        self._not_before = max(self._not_before, self._clock() + max(0.0, seconds))

    async def acquire(self) -> None:
        """Wait for a token (and for any hold to pass), then take it."""
        async with self._lock:
            while True:
                now = self._clock()
                self._refill(now)
                wait = self._not_before - now
                if wait <= 0:
                    if self.rate <= 0:
                        return
                    if self._tokens >= 1:
                        self._tokens -= 1
                        return
                    wait = (1 - self._tokens) / self.rate
                await self._sleep(wait)
