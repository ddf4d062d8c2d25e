"""POST one alert to one target: rate limited, retried with backoff, classified.

- 2xx: delivered.
- 429: retried after its ``Retry-After`` (seconds or an HTTP date, capped at
  :data:`MAX_RETRY_AFTER_S`; backoff when absent), and the target's bucket is held that long.
- 408, 425, 5xx, timeouts, connection errors: retried with jittered exponential backoff
  (``backoff_s`` doubling, capped at :data:`MAX_BACKOFF_S`; a 503's ``Retry-After`` is honoured).
- Any other answer (3xx — redirects are not followed —, 4xx): permanent, not retried.

After ``max_attempts`` the alert is given up. Details never carry the URL (see
``targets.Target.scrub``); a short, printable part of an error body is kept (Slack answers e.g.
``invalid_payload`` or ``channel_is_archived``).

Metrics per target label (never the URL): every attempt
(``typostream_alert_delivery_attempts_total{target,outcome}``, outcome = status code, ``timeout``
or ``error``), every alert's end (``typostream_alert_deliveries_total{target,outcome}``: delivered,
refused, gave_up) and its time, retries included (``typostream_alert_delivery_seconds{target}``).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Final

import aiohttp
from yarl import URL

from typostream.agents.adapters.alerts.ratelimit import TokenBucket
from typostream.agents.adapters.alerts.targets import Target
from typostream.agents.adapters.metrics import ALERT_ATTEMPTS, ALERT_DELIVERIES, ALERT_SECONDS

__all__ = [
    "MAX_BACKOFF_S",
    "MAX_RETRY_AFTER_S",
    "USER_AGENT",
    "Delivery",
    "DeliveryResult",
    "parse_retry_after",
]

USER_AGENT: Final = "typostream/0.1 (alert delivery)"
MAX_BACKOFF_S: Final = 60.0
MAX_RETRY_AFTER_S: Final = 300.0
RETRY_STATUSES: Final = frozenset({408, 425, 429, 500, 502, 503, 504})
_BODY_PREVIEW: Final = 120


@dataclass(frozen=True)
class DeliveryResult:
    delivered: bool
    attempts: int
    status: int | None
    """HTTP status of the last answer (None: no answer — timeout or connection error)."""
    detail: str
    """``HTTP 200``, ``HTTP 404 no_service (permanent)``, ``gave up after 5 attempts: HTTP 503``…"""
    permanent: bool = False
    seconds: float = 0.0


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` value (delay-seconds or HTTP-date), capped; None if unusable."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        current = datetime.now(UTC).timestamp() if now is None else now
        seconds = when.timestamp() - current
    if seconds != seconds:  # NaN
        return None
    return min(MAX_RETRY_AFTER_S, max(0.0, seconds))


def _preview(body: bytes) -> str:
    text = body.decode("utf-8", "replace").strip()
    text = "".join(ch if ch.isprintable() else " " for ch in text)
    return text[:_BODY_PREVIEW]


def _describe(exc: BaseException, timeout_s: float) -> str:
    """An exception as a short reason without the URL (aiohttp puts the URL in some messages)."""
    if isinstance(exc, TimeoutError | asyncio.TimeoutError | aiohttp.ServerTimeoutError):
        return f"timeout after {timeout_s:g}s"
    if isinstance(exc, aiohttp.ClientConnectorError):
        return f"connection failed: {exc.os_error.strerror or type(exc.os_error).__name__}"
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return "server disconnected"
    return type(exc).__name__


class Delivery:
    """Sends bodies to targets through one aiohttp session (opened lazily, inside the loop)."""

    def __init__(
        self,
        *,
        max_attempts: int,
        backoff_s: float,
        timeout_s: float,
        session: Callable[[], aiohttp.ClientSession],
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.max_attempts = max(1, max_attempts)
        self.backoff_s = max(0.0, backoff_s)
        self.timeout_s = timeout_s
        self._session = session
        self._sleep = sleep

    def backoff(self, attempt: int) -> float:
        """Delay before retry ``attempt`` (1-based): doubling, capped, jittered to 50–100 %."""
        delay = min(MAX_BACKOFF_S, self.backoff_s * 2 ** (attempt - 1))
        return delay * (0.5 + random.random() / 2)

    async def post(
        self,
        target: Target,
        body: bytes,
        threat_id: str,
        bucket: TokenBucket,
        *,
        max_attempts: int | None = None,
        on_retry: Callable[[int, str, float], None] | None = None,
    ) -> DeliveryResult:
        """POST until delivered, refused for good or out of attempts; HTTP/network errors never raise."""
        result = await self._post(
            target, body, threat_id, bucket, max_attempts=max_attempts, on_retry=on_retry
        )
        outcome = "delivered" if result.delivered else "refused" if result.permanent else "gave_up"
        ALERT_DELIVERIES.labels(target.label, outcome).inc()
        ALERT_SECONDS.labels(target.label).observe(result.seconds)
        return result

    async def _post(
        self,
        target: Target,
        body: bytes,
        threat_id: str,
        bucket: TokenBucket,
        *,
        max_attempts: int | None,
        on_retry: Callable[[int, str, float], None] | None,
    ) -> DeliveryResult:
        attempts = max(1, max_attempts or self.max_attempts)
        started = time.monotonic()
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "X-Typostream-Threat-Id": threat_id,
        }
        detail, status = "", None
        for attempt in range(1, attempts + 1):
            await bucket.acquire()
            retry_after: float | None = None
            try:
                async with self._session().post(
                    URL(target.url, encoded=True),
                    data=body,
                    headers={**headers, "X-Typostream-Delivery-Attempt": str(attempt)},
                    allow_redirects=False,
                ) as resp:
                    status = resp.status
                    answer = _preview(await resp.content.read(4096)) if status >= 300 else ""
                    retry_after = parse_retry_after(resp.headers.get("Retry-After"))
            except (TimeoutError, aiohttp.ClientError) as exc:
                status, detail = None, _describe(exc, self.timeout_s)
                ALERT_ATTEMPTS.labels(
                    target.label, "timeout" if detail.startswith("timeout") else "error"
                ).inc()
            else:
                ALERT_ATTEMPTS.labels(target.label, str(status)).inc()
                detail = target.scrub(f"HTTP {status}" + (f" {answer}" if answer else ""))
                if 200 <= status < 300:
                    return DeliveryResult(True, attempt, status, detail, seconds=time.monotonic() - started)
                if status not in RETRY_STATUSES:
                    return DeliveryResult(
                        False, attempt, status, f"{detail} (permanent)", True, time.monotonic() - started
                    )
            if attempt == attempts:
                break
            delay = retry_after if retry_after is not None else self.backoff(attempt)
            if status == 429:
                bucket.hold(delay)
            if on_retry is not None:
                on_retry(attempt, detail, delay)
            await self._sleep(delay)
        return DeliveryResult(
            False,
            attempts,
            status,
            f"gave up after {attempts} attempt(s): {detail}",
            seconds=time.monotonic() - started,
        )
