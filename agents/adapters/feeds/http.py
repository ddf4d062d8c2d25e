"""A small aiohttp GET client for the pollers: timeouts, bounded retries, one User-Agent."""

from __future__ import annotations

from typing import Final

import aiohttp
from yarl import URL

from typostream.agents.adapters.http import LazySession, with_backoff
from typostream.agents.domain.errors import UpstreamHTTPError, UpstreamResponseError, UpstreamUnavailableError

__all__ = ["USER_AGENT", "FeedHTTP"]

USER_AGENT: Final = "typostream/0.1 (+https://github.com/typostream; registry feed poller)"
RETRY_STATUSES: Final = frozenset({429, 500, 502, 503, 504})
MAX_BODY_BYTES: Final = 64 * 1024 * 1024


class _Retryable(Exception):
    pass


class FeedHTTP:
    """``await http.get(url)`` -> body bytes, or ``None`` for 404 when ``missing_ok``.

    5xx, 429, timeouts and connection errors are retried ``retries`` times with jittered exponential
    backoff (``backoff_s``, doubling), then raise :class:`UpstreamUnavailableError`; any other non-2xx
    raises :class:`UpstreamHTTPError`. URLs are sent as given (already escaped).
    """

    def __init__(
        self,
        timeout_s: float = 30.0,
        *,
        retries: int = 3,
        backoff_s: float = 0.5,
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        self._http = LazySession(timeout_s, {"User-Agent": USER_AGENT}, session)
        self.retries = max(0, retries)
        self.backoff_s = backoff_s
        self.requests = 0

    async def close(self) -> None:
        await self._http.close()

    async def get(self, url: str, *, accept: str = "*/*", missing_ok: bool = False) -> bytes | None:
        try:
            return await with_backoff(
                lambda: self._attempt(url, accept, missing_ok), self.retries, self.backoff_s, _Retryable
            )
        except _Retryable as exc:
            raise UpstreamUnavailableError(
                f"unavailable after {self.retries + 1} attempts: {exc}", url
            ) from None

    async def _attempt(self, url: str, accept: str, missing_ok: bool) -> bytes | None:
        self.requests += 1
        try:
            async with self._http.get().get(URL(url, encoded=True), headers={"Accept": accept}) as resp:
                if resp.status in RETRY_STATUSES:
                    raise _Retryable(f"HTTP {resp.status}")
                if resp.status == 404 and missing_ok:
                    return None
                if not 200 <= resp.status < 300:
                    raise UpstreamHTTPError(resp.status, url)
                body = await resp.content.read(MAX_BODY_BYTES + 1)
                if len(body) > MAX_BODY_BYTES:
                    raise UpstreamResponseError(f"body larger than {MAX_BODY_BYTES} bytes", url)
                return body
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise _Retryable(f"{type(exc).__name__}: {exc}".rstrip(": ")) from exc
