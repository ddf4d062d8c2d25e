"""Async registry metadata client for npm and PyPI (aiohttp).

Endpoints (the base URLs are parameters so tests point them at a local fixture server):

- npm: ``GET {npm_base}/{name}/{version}`` - the version document (the ``package.json`` as
  published plus ``dist``, ``maintainers``, ``_npmUser``). Scoped names are escaped the way the npm
  CLI does (``@scope/name`` -> ``@scope%2fname``). The registry has historically refused the
  per-version route for scoped packages (HTTP 401, ``npm-notice: ERROR: you cannot fetch versions
  for scoped packages``); on 401/403/405 for a scoped name the client falls back to the full
  packument ``GET {npm_base}/@scope%2fname`` and takes ``versions[version]``.
- PyPI: ``GET {pypi_base}/pypi/{name}/{version}/json`` - ``{"info": {...}, "urls": [...]}``.

``fetch_latest`` gives the metadata of a package's latest version (npm ``GET {npm_base}/{name}/latest``,
the ``latest`` dist-tag's version document; PyPI ``GET {pypi_base}/pypi/{name}/json``): a typosquat's
target is compared with it. ``fetch_history`` gives the whole package's releases, their times and
publishers, its maintainers and latest metadata (npm: the full packument ``GET {npm_base}/{name}``;
PyPI: ``/pypi/{name}/json``): whether a publish is a first release, how old the package is.

``release_time`` answers when a version was published (the guard's minimum-release-age check):
PyPI's ``urls[].upload_time_iso_8601`` from the same document, npm's packument ``time[version]``.

``fetch`` returns ``None`` when the package or version does not exist (404). 5xx, 429, timeouts
and connection errors are retried with exponential backoff (``retries`` extra attempts), then
raise :class:`UpstreamUnavailableError`; other 4xx raise :class:`UpstreamHTTPError`; a body that is
not the expected JSON raises :class:`UpstreamResponseError`.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any, Final
from urllib.parse import quote

import aiohttp
import orjson
from yarl import URL

from typostream.agents.adapters.http import LazySession, with_backoff
from typostream.agents.adapters.metrics import REGISTRY_REQUESTS, REGISTRY_SECONDS
from typostream.agents.domain.errors import (
    UnsupportedRegistryError,
    UpstreamHTTPError,
    UpstreamResponseError,
    UpstreamUnavailableError,
)
from typostream.agents.domain.metadata import (
    PackageHistory,
    PackageMetadata,
    npm_escape,
    parse_npm,
    parse_npm_packument,
    parse_pypi,
    parse_pypi_project,
)
from typostream.agents.domain.resolution import npm_publish_time, pypi_upload_time
from typostream.agents.domain.vocabulary import REGISTRY_URLS

__all__ = ["RegistryClient"]

MAX_BODY_BYTES: Final = 64 * 1024 * 1024
_RETRY_STATUSES: Final = frozenset({429, 500, 502, 503, 504})
_SCOPED_REFUSAL_STATUSES: Final = frozenset({401, 403, 405})
_USER_AGENT: Final = "typostream/0.1 (+https://github.com/typostream; metadata enrichment)"


class _Retryable(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class RegistryClient:
    """Fetch one version's metadata from npm or PyPI. Reuse one client (one connection pool).

    ``async with RegistryClient() as client: meta = await client.fetch("npm", "left-pad", "1.3.0")``
    """

    def __init__(
        self,
        npm_base: str = REGISTRY_URLS["npm_registry"],
        pypi_base: str = REGISTRY_URLS["pypi"],
        timeout_s: float = 5,
        *,
        retries: int = 2,
        backoff_s: float = 0.25,
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        self.npm_base = npm_base.rstrip("/")
        self.pypi_base = pypi_base.rstrip("/")
        self._http = LazySession(
            timeout_s, {"User-Agent": _USER_AGENT, "Accept": "application/json"}, session
        )
        self.retries = max(0, retries)
        self.backoff_s = backoff_s

    async def __aenter__(self) -> RegistryClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self._http.close()

    # --- URLs ------------------------------------------------------------------------------------
    def npm_version_url(self, name: str, version: str) -> str:
        return f"{self.npm_base}/{npm_escape(name)}/{quote(version, safe='')}"

    def npm_packument_url(self, name: str) -> str:
        return f"{self.npm_base}/{npm_escape(name)}"

    def pypi_url(self, name: str, version: str) -> str:
        return f"{self.pypi_base}/pypi/{quote(name, safe='')}/{quote(version, safe='')}/json"

    def pypi_project_url(self, name: str) -> str:
        return f"{self.pypi_base}/pypi/{quote(name, safe='')}/json"

    # --- fetch -----------------------------------------------------------------------------------
    async def fetch(self, registry: str, name: str, version: str) -> PackageMetadata | None:
        """Metadata of ``name@version``, or ``None`` when the registry does not have it (404)."""
        reg = registry.strip().lower()
        if reg not in ("npm", "pypi"):
            raise UnsupportedRegistryError(registry)
        started = time.perf_counter()
        try:
            if reg == "pypi":
                url = self.pypi_url(name, version)
                status, doc = await self._get_json(reg, url)
                if status == 404:
                    return None
                return self._parse(parse_pypi, doc, name, version, url)
            url = self.npm_version_url(name, version)
            status, doc = await self._get_json(
                reg, url, allow=_SCOPED_REFUSAL_STATUSES if "/" in name else ()
            )
            if status == 404:
                return None
            if status in _SCOPED_REFUSAL_STATUSES:
                url = self.npm_packument_url(name)
                status, packument = await self._get_json(reg, url)
                if status == 404:
                    return None
                versions = packument.get("versions") if isinstance(packument, dict) else None
                if not isinstance(versions, dict):
                    raise UpstreamResponseError("npm packument has no 'versions' object", url)
                doc = versions.get(version)
                if doc is None:
                    return None
                times = packument.get("time")
                published = times.get(version) if isinstance(times, dict) else None
                return self._parse(lambda d, n, v: parse_npm(d, n, v, published), doc, name, version, url)
            return self._parse(parse_npm, doc, name, version, url)
        finally:
            REGISTRY_SECONDS.labels(reg).observe(time.perf_counter() - started)

    async def fetch_latest(self, registry: str, name: str) -> PackageMetadata | None:
        """Metadata of the latest version of ``name``, or ``None`` when the registry does not have it."""
        reg = self._registry(registry)
        started = time.perf_counter()
        try:
            if reg == "pypi":
                url = self.pypi_project_url(name)
                status, doc = await self._get_json(reg, url)
                if status == 404:
                    return None
                info = doc.get("info") if isinstance(doc, dict) else None
                version = info.get("version") if isinstance(info, dict) else None
                return self._parse(parse_pypi, doc, name, str(version or ""), url)
            url = f"{self.npm_packument_url(name)}/latest"
            status, doc = await self._get_json(
                reg, url, allow=_SCOPED_REFUSAL_STATUSES if "/" in name else ()
            )
            if status in _SCOPED_REFUSAL_STATUSES:  # the per-version route refused: the packument
                history = await self.fetch_history(reg, name)
                return history.latest if history is not None else None
            if status == 404:
                return None
            version = doc.get("version") if isinstance(doc, dict) else None
            return self._parse(parse_npm, doc, name, str(version or ""), url)
        finally:
            REGISTRY_SECONDS.labels(reg).observe(time.perf_counter() - started)

    async def fetch_history(self, registry: str, name: str) -> PackageHistory | None:
        """The releases, maintainers and latest metadata of ``name``; ``None`` when not found (404)."""
        reg = self._registry(registry)
        url = self.pypi_project_url(name) if reg == "pypi" else self.npm_packument_url(name)
        started = time.perf_counter()
        try:
            status, doc = await self._get_json(reg, url)
        finally:
            REGISTRY_SECONDS.labels(reg).observe(time.perf_counter() - started)
        if status == 404:
            return None
        parser = parse_pypi_project if reg == "pypi" else parse_npm_packument
        try:
            history: PackageHistory = parser(doc, name)
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise UpstreamResponseError(f"unexpected document shape: {exc}", url) from exc
        return history

    @staticmethod
    def _registry(registry: str) -> str:
        reg = registry.strip().lower()
        if reg not in ("npm", "pypi"):
            raise UnsupportedRegistryError(registry)
        return reg

    async def release_time(
        self, registry: str, name: str, version: str, filename: str | None = None
    ) -> datetime | None:
        """When ``name@version`` was published, or ``None`` when the registry does not have it (404)
        or gives no time for it.

        PyPI: ``/pypi/{name}/{version}/json`` ``urls[].upload_time_iso_8601`` of ``filename`` (the
        file an installer chose), else of the release's newest file. npm: the full packument's
        ``time[version]`` (the per-version document has no time).
        """
        reg = registry.strip().lower()
        if reg not in ("npm", "pypi"):
            raise UnsupportedRegistryError(registry)
        url = self.pypi_url(name, version) if reg == "pypi" else self.npm_packument_url(name)
        started = time.perf_counter()
        try:
            status, doc = await self._get_json(reg, url)
        finally:
            REGISTRY_SECONDS.labels(reg).observe(time.perf_counter() - started)
        if status == 404:
            return None
        try:
            return pypi_upload_time(doc, filename) if reg == "pypi" else npm_publish_time(doc, version)
        except ValueError as exc:
            raise UpstreamResponseError(f"unexpected document shape: {exc}", url) from exc

    @staticmethod
    def _parse(parser: Any, doc: Any, name: str, version: str, url: str) -> PackageMetadata:
        try:
            meta: PackageMetadata = parser(doc, name, version)
        except (ValueError, TypeError, KeyError) as exc:
            raise UpstreamResponseError(f"unexpected document shape: {exc}", url) from exc
        return meta

    async def _get_json(
        self, registry: str, url: str, allow: tuple[int, ...] | frozenset[int] = ()
    ) -> tuple[int, Any]:
        """GET with retries. Returns ``(status, json)``; ``json`` is None for 404 and ``allow`` statuses."""
        try:
            return await with_backoff(
                lambda: self._attempt(registry, url, allow), self.retries, self.backoff_s, _Retryable
            )
        except _Retryable as exc:
            raise UpstreamUnavailableError(
                f"registry unavailable after {self.retries + 1} attempts: {exc.reason}", url
            ) from None

    async def _attempt(
        self, registry: str, url: str, allow: tuple[int, ...] | frozenset[int]
    ) -> tuple[int, Any]:
        try:
            async with self._http.get().get(URL(url, encoded=True), timeout=self._http.timeout) as resp:
                status = resp.status
                REGISTRY_REQUESTS.labels(registry, str(status)).inc()
                if status in _RETRY_STATUSES:
                    raise _Retryable(f"HTTP {status}")
                if status == 404 or status in allow:
                    return status, None
                if status != 200:
                    raise UpstreamHTTPError(status, url)
                if resp.content_length is not None and resp.content_length > MAX_BODY_BYTES:
                    raise UpstreamResponseError(f"body of {resp.content_length} bytes is too large", url)
                body = await resp.read()
        except TimeoutError as exc:
            REGISTRY_REQUESTS.labels(registry, "timeout").inc()
            raise _Retryable("timeout") from exc
        except aiohttp.ClientError as exc:
            REGISTRY_REQUESTS.labels(registry, "error").inc()
            raise _Retryable(f"{type(exc).__name__}: {exc}") from exc
        try:
            return 200, orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise UpstreamResponseError(f"body is not JSON: {body[:80]!r}", url) from exc
