"""Retry an async call with jittered exponential backoff (registry clients and feed pollers)."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from typing import TypeVar

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
