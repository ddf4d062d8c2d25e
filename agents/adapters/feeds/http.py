"""The pollers' HTTP client: timeouts, bounded retries that honour ``Retry-After``, conditional GETs.

- Conditional requests (RFC 9110 §13.1): :meth:`FeedHTTP.fetch` sends ``If-None-Match`` /
  ``If-Modified-Since`` from the validators a caller kept (``ETag`` / ``Last-Modified`` of an earlier
  200) and returns ``status == 304`` with an empty body when nothing changed. npm's registry sends
  ETags on packuments (OpenSSF package-feeds' npm feed caches by them, ``pkg/feeds/npm/npm.go``) and
  PyPI's RSS is served through a CDN with validators.
- ``Retry-After`` (RFC 9110 §10.2.3) on 429/503 is waited out before the next attempt (at least the
  jittered backoff); one longer than ``max_wait_s`` gives up at once with
  :class:`UpstreamRateLimitedError`, so the poll loop waits that long instead of blocking a poll.
- Every attempt is counted in ``typostream_feed_http_requests_total{registry,endpoint,outcome}``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import aiohttp
from yarl import URL

from typostream.agents.adapters.http import LazySession, parse_retry_after, with_backoff
from typostream.agents.adapters.metrics import FEED_HTTP_REQUESTS
from typostream.agents.domain.errors import (
    UpstreamHTTPError,
    UpstreamRateLimitedError,
    UpstreamResponseError,
    UpstreamUnavailableError,
)

__all__ = ["USER_AGENT", "FeedHTTP", "Fetched"]

USER_AGENT: Final = "typostream/0.1 (+https://github.com/typostream; registry feed poller)"
RETRY_STATUSES: Final = frozenset({429, 500, 502, 503, 504})
MAX_BODY_BYTES: Final = 64 * 1024 * 1024


class _Retryable(Exception):
    def __init__(self, reason: str, retry_after_s: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after_s = retry_after_s


@dataclass(frozen=True, slots=True)
class Fetched:
    """One answer: ``status`` 2xx with ``body``, or 304 (``body`` empty) for a conditional request."""

    status: int
    body: bytes
    etag: str | None = None
    last_modified: str | None = None

    @property
    def not_modified(self) -> bool:
        return self.status == 304


class FeedHTTP:
    """``await http.fetch(url)`` -> :class:`Fetched`, or ``None`` for 404 when ``missing_ok``.

    5xx, 429, timeouts and connection errors are retried ``retries`` times with jittered exponential
    backoff (``backoff_s``, doubling; at least the server's ``Retry-After``), then raise
    :class:`UpstreamUnavailableError` (:class:`UpstreamRateLimitedError` when the server said when to
    come back); any other non-2xx raises :class:`UpstreamHTTPError`. URLs are sent as given
    (already escaped).
    """

    def __init__(
        self,
        timeout_s: float = 30.0,
        *,
        retries: int = 3,
        backoff_s: float = 0.5,
        max_wait_s: float = 30.0,
        registry: str = "",
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        self._http = LazySession(timeout_s, {"User-Agent": USER_AGENT}, session)
        self.retries = max(0, retries)
        self.backoff_s = backoff_s
        self.max_wait_s = max_wait_s
        self.registry = registry
        self.requests = 0

    async def close(self) -> None:
        await self._http.close()

    async def get(self, url: str, *, accept: str = "*/*", missing_ok: bool = False) -> bytes | None:
        """The body of a plain GET (``None`` for 404 when ``missing_ok``)."""
        fetched = await self.fetch(url, accept=accept, missing_ok=missing_ok)
        return None if fetched is None else fetched.body

    async def fetch(
        self,
        url: str,
        *,
        accept: str = "*/*",
        etag: str | None = None,
        last_modified: str | None = None,
        missing_ok: bool = False,
        endpoint: str = "get",
    ) -> Fetched | None:
        headers = {"Accept": accept}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        return await self._retrying("GET", url, headers, None, missing_ok, endpoint)

    async def post(
        self, url: str, body: bytes, *, content_type: str, accept: str = "*/*", endpoint: str = "post"
    ) -> bytes:
        headers = {"Accept": accept, "Content-Type": content_type}
        fetched = await self._retrying("POST", url, headers, body, False, endpoint)
        assert fetched is not None
        return fetched.body

    async def _retrying(
        self,
        method: str,
        url: str,
        headers: dict[str, str],
        data: bytes | None,
        missing_ok: bool,
        endpoint: str,
    ) -> Fetched | None:
        attempts = 0

        async def attempt() -> Fetched | None:
            nonlocal attempts
            attempts += 1
            return await self._attempt(method, url, headers, data, missing_ok, endpoint)

        try:
            return await with_backoff(
                attempt, self.retries, self.backoff_s, _Retryable, max_wait_s=self.max_wait_s
            )
        except _Retryable as exc:
            message = f"unavailable after {attempts} attempt{'s' if attempts > 1 else ''}: {exc}"
            if exc.retry_after_s is not None:
                raise UpstreamRateLimitedError(message, url, exc.retry_after_s) from None
            raise UpstreamUnavailableError(message, url) from None

    async def _attempt(
        self,
        method: str,
        url: str,
        headers: dict[str, str],
        data: bytes | None,
        missing_ok: bool,
        endpoint: str,
    ) -> Fetched | None:
        self.requests += 1
        outcome = "error"
        try:
            session = self._http.get()
            async with session.request(method, URL(url, encoded=True), headers=headers, data=data) as resp:
                outcome = str(resp.status)
                if resp.status in RETRY_STATUSES:
                    retry_after = parse_retry_after(resp.headers.get("Retry-After"))
                    raise _Retryable(f"HTTP {resp.status}", retry_after)
                if resp.status == 304 and ("If-None-Match" in headers or "If-Modified-Since" in headers):
                    return Fetched(304, b"", resp.headers.get("ETag"), resp.headers.get("Last-Modified"))
                if resp.status == 404 and missing_ok:
                    return None
                if not 200 <= resp.status < 300:
                    raise UpstreamHTTPError(resp.status, url)
                body = await _read_capped(resp, url)
                return Fetched(resp.status, body, resp.headers.get("ETag"), resp.headers.get("Last-Modified"))
        except TimeoutError as exc:
            outcome = "timeout"
            raise _Retryable(f"{type(exc).__name__}: {exc}".rstrip(": ")) from exc
        except aiohttp.ClientError as exc:
            raise _Retryable(f"{type(exc).__name__}: {exc}".rstrip(": ")) from exc
        finally:
            FEED_HTTP_REQUESTS.labels(self.registry or "-", endpoint, outcome).inc()


async def _read_capped(resp: aiohttp.ClientResponse, url: str) -> bytes:
    """The whole body (``StreamReader.read(n)`` may return less than is coming), at most the cap."""
    too_large = UpstreamResponseError(f"body larger than {MAX_BODY_BYTES} bytes", url)
    if resp.content_length is not None and resp.content_length > MAX_BODY_BYTES:
        raise too_large
    chunks: list[bytes] = []
    size = 0
    async for chunk in resp.content.iter_chunked(1 << 16):
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)
