"""Async registry metadata client for npm and PyPI (aiohttp).

Endpoints (the base URLs are parameters so tests point them at a local fixture server):

- npm: ``GET {npm_base}/{name}/{version}`` - the version document (the ``package.json`` as
  published plus ``dist``, ``maintainers``, ``_npmUser``). Scoped names are escaped the way the npm
  CLI does (``@scope/name`` -> ``@scope%2fname``). The registry has historically refused the
  per-version route for scoped packages (HTTP 401, ``npm-notice: ERROR: you cannot fetch versions
  for scoped packages``); on 401/403/405 for a scoped name the client falls back to the full
  packument ``GET {npm_base}/@scope%2fname`` and takes ``versions[version]``.
- PyPI: ``GET {pypi_base}/pypi/{name}/{version}/json`` - ``{"info": {...}, "urls": [...]}``.

``fetch`` returns ``None`` when the package or version does not exist (404). 5xx, 429, timeouts
and connection errors are retried with exponential backoff (``retries`` extra attempts), then
raise :class:`RegistryUnavailableError`; other 4xx raise :class:`RegistryHTTPError`; a body that is
not the expected JSON raises :class:`RegistryResponseError`.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Final
from urllib.parse import quote

import aiohttp
import orjson
from yarl import URL

from typostream.agents.enrichment.exceptions import (
    RegistryHTTPError,
    RegistryResponseError,
    RegistryUnavailableError,
    UnsupportedRegistryError,
)
from typostream.agents.enrichment.metrics import REGISTRY_REQUESTS, REGISTRY_SECONDS
from typostream.agents.http import LazySession, with_backoff

__all__ = ["INSTALL_SCRIPTS", "PackageMetadata", "RegistryClient"]

INSTALL_SCRIPTS: Final = ("preinstall", "install", "postinstall", "prepare")
"""npm lifecycle scripts that run when a package is installed (``prepare`` for git installs)."""
MAX_DESCRIPTION_CHARS: Final = 20_000
"""PyPI ``info.description`` (the README) is truncated to this many characters."""
MAX_BODY_BYTES: Final = 64 * 1024 * 1024
_RETRY_STATUSES: Final = frozenset({429, 500, 502, 503, 504})
_SCOPED_REFUSAL_STATUSES: Final = frozenset({401, 403, 405})
_USER_AGENT: Final = "typostream/0.1 (+https://github.com/typostream; metadata enrichment)"


@dataclass(frozen=True, slots=True)
class PackageMetadata:
    """The metadata of one published version that enrichment analyses.

    ``description`` is npm's ``description`` or PyPI's ``info.summary``; ``long_description`` is
    PyPI's ``info.description`` (truncated; empty for npm). ``install_scripts`` holds only the npm
    lifecycle scripts in :data:`INSTALL_SCRIPTS`. ``package_types`` are PyPI file types
    (``sdist``, ``bdist_wheel``); npm has none.
    """

    registry: str
    name: str
    version: str
    description: str = ""
    long_description: str = ""
    install_scripts: dict[str, str] = field(default_factory=dict)
    maintainers: tuple[str, ...] = ()
    author: str | None = None
    repository: str | None = None
    homepage: str | None = None
    project_urls: dict[str, str] = field(default_factory=dict)
    tarball: str | None = None
    package_types: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> PackageMetadata:
        """Inverse of :meth:`to_dict` (and of orjson's dataclass output, as stored in Redis)."""
        return cls(
            registry=str(raw["registry"]),
            name=str(raw["name"]),
            version=str(raw["version"]),
            description=str(raw.get("description") or ""),
            long_description=str(raw.get("long_description") or ""),
            install_scripts=dict(raw.get("install_scripts") or {}),
            maintainers=tuple(raw.get("maintainers") or ()),
            author=raw.get("author"),
            repository=raw.get("repository"),
            homepage=raw.get("homepage"),
            project_urls=dict(raw.get("project_urls") or {}),
            tarball=raw.get("tarball"),
            package_types=tuple(raw.get("package_types") or ()),
        )


def _obj(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and value.strip() else None


def _npm_person(person: Any) -> str | None:
    if isinstance(person, str):
        return person.strip() or None
    if isinstance(person, dict):
        return _str_or_none(person.get("name")) or _str_or_none(person.get("email"))
    return None


def parse_npm(doc: Any, name: str, version: str) -> PackageMetadata:
    """Build :class:`PackageMetadata` from an npm version document."""
    if not isinstance(doc, dict):
        raise ValueError("npm version document is not an object")
    scripts = _obj(doc.get("scripts"))
    install_scripts = {k: scripts[k] for k in INSTALL_SCRIPTS if isinstance(scripts.get(k), str)}
    maintainers = tuple(m for m in (_npm_person(p) for p in _list(doc.get("maintainers"))) if m)
    repository = doc.get("repository")
    repo_url = (
        _str_or_none(repository.get("url")) if isinstance(repository, dict) else _str_or_none(repository)
    )
    dist = _obj(doc.get("dist"))
    description = doc.get("description")
    return PackageMetadata(
        registry="npm",
        name=str(doc.get("name") or name),
        version=str(doc.get("version") or version),
        description=description if isinstance(description, str) else "",
        install_scripts=install_scripts,
        maintainers=maintainers,
        author=_npm_person(doc.get("author")),
        repository=repo_url,
        homepage=_str_or_none(doc.get("homepage")),
        tarball=_str_or_none(dist.get("tarball")),
    )


def parse_pypi(doc: Any, name: str, version: str) -> PackageMetadata:
    """Build :class:`PackageMetadata` from a PyPI ``/pypi/<name>/<version>/json`` document."""
    if not isinstance(doc, dict) or not isinstance(doc.get("info"), dict):
        raise ValueError("PyPI JSON document has no 'info' object")
    info: dict[str, Any] = doc["info"]
    urls = _list(doc.get("urls"))
    project_urls_raw = info.get("project_urls")
    project_urls = (
        {str(k): v for k, v in project_urls_raw.items() if isinstance(v, str)}
        if isinstance(project_urls_raw, dict)
        else {}
    )
    types = tuple(
        dict.fromkeys(
            u["packagetype"] for u in urls if isinstance(u, dict) and isinstance(u.get("packagetype"), str)
        )
    )
    maintainers = tuple(
        m for m in (_str_or_none(info.get("maintainer")), _str_or_none(info.get("maintainer_email"))) if m
    )
    long_description = info.get("description")
    summary = info.get("summary")
    homepage = _str_or_none(info.get("home_page")) or _str_or_none(
        next((v for k, v in project_urls.items() if k.lower() in ("homepage", "home")), None)
    )
    repository = _str_or_none(
        next(
            (
                v
                for k, v in project_urls.items()
                if k.lower() in ("source", "source code", "repository", "code")
            ),
            None,
        )
    )
    return PackageMetadata(
        registry="pypi",
        name=str(info.get("name") or name),
        version=str(info.get("version") or version),
        description=summary if isinstance(summary, str) else "",
        long_description=(long_description if isinstance(long_description, str) else "")[
            :MAX_DESCRIPTION_CHARS
        ],
        maintainers=maintainers,
        author=_str_or_none(info.get("author")) or _str_or_none(info.get("author_email")),
        repository=repository,
        homepage=homepage,
        project_urls=project_urls,
        package_types=types,
    )


def npm_escape(name: str) -> str:
    """Escape a package name for the npm registry path: ``@scope/name`` -> ``@scope%2fname``."""
    return quote(name, safe="@/").replace("/", "%2f")


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
        npm_base: str = "https://registry.npmjs.org",
        pypi_base: str = "https://pypi.org",
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
                    raise RegistryResponseError("npm packument has no 'versions' object", url)
                doc = versions.get(version)
                if doc is None:
                    return None
            return self._parse(parse_npm, doc, name, version, url)
        finally:
            REGISTRY_SECONDS.labels(reg).observe(time.perf_counter() - started)

    @staticmethod
    def _parse(parser: Any, doc: Any, name: str, version: str, url: str) -> PackageMetadata:
        try:
            meta: PackageMetadata = parser(doc, name, version)
        except (ValueError, TypeError, KeyError) as exc:
            raise RegistryResponseError(f"unexpected document shape: {exc}", url) from exc
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
            raise RegistryUnavailableError(
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
                    raise RegistryHTTPError(status, url)
                if resp.content_length is not None and resp.content_length > MAX_BODY_BYTES:
                    raise RegistryResponseError(f"body of {resp.content_length} bytes is too large", url)
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
            raise RegistryResponseError(f"body is not JSON: {body[:80]!r}", url) from exc
