"""What a published version's registry metadata says, parsed from the npm and PyPI JSON documents (pure).

The documents are fetched by ``adapters.registry.RegistryClient``; parsing lives here so the content
analysis and its tests need no HTTP.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Final
from urllib.parse import quote

__all__ = [
    "INSTALL_SCRIPTS",
    "PackageHistory",
    "PackageMetadata",
    "Release",
    "npm_escape",
    "parse_npm",
    "parse_npm_packument",
    "parse_pypi",
    "parse_pypi_project",
]

INSTALL_SCRIPTS: Final = ("preinstall", "install", "postinstall", "prepare")
"""npm lifecycle scripts that run when a package is installed (``prepare`` for git installs)."""
MAX_DESCRIPTION_CHARS: Final = 20_000
"""PyPI ``info.description`` (the README) is truncated to this many characters."""


@dataclass(frozen=True, slots=True)
class PackageMetadata:
    """The metadata of one published version that enrichment analyses.

    ``description`` is npm's ``description`` or PyPI's ``info.summary``; ``long_description`` is
    PyPI's ``info.description`` (truncated; empty for npm). ``install_scripts`` holds only the npm
    lifecycle scripts in :data:`INSTALL_SCRIPTS`. ``package_types`` are PyPI file types
    (``sdist``, ``bdist_wheel``); npm has none. ``published_at`` is when it was
    published (ISO 8601): PyPI's first ``urls[].upload_time_iso_8601``, npm's packument
    ``time[version]`` when the version came from a packument (the version document has no time).
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
    published_at: str | None = None

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
            published_at=raw.get("published_at"),
        )


@dataclass(frozen=True, slots=True)
class Release:
    """One published version in a package's history: when (ISO 8601, None when the registry does
    not say) and by whom (npm ``_npmUser``; None on PyPI)."""

    version: str
    published_at: str | None = None
    publisher: str | None = None


@dataclass(frozen=True, slots=True)
class PackageHistory:
    """What a registry says about a whole package (npm packument, PyPI ``/pypi/<name>/json``).

    ``releases`` are in publish order (undated ones last); ``created_at`` is the package's first
    publish; ``maintainers`` are today's (npm ``maintainers``, PyPI ``ownership.roles`` users when
    the document has them); ``latest`` is the metadata of the latest version (npm ``dist-tags``,
    PyPI ``info``) — a typosquat's target is compared with it.
    """

    registry: str
    name: str
    created_at: str | None = None
    releases: tuple[Release, ...] = ()
    maintainers: tuple[str, ...] = ()
    latest: PackageMetadata | None = None

    def release(self, version: str) -> Release | None:
        return next((r for r in self.releases if r.version == version), None)

    def before(self, version: str) -> tuple[Release, ...]:
        """The releases published before ``version`` (all of them when it is not listed or undated)."""
        mine = self.release(version)
        if mine is None or mine.published_at is None:
            return tuple(r for r in self.releases if r.version != version)
        return tuple(
            r for r in self.releases if r.published_at is not None and r.published_at < mine.published_at
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> PackageHistory:
        """Inverse of :meth:`to_dict` (as stored in Redis)."""
        latest = raw.get("latest")
        return cls(
            registry=str(raw["registry"]),
            name=str(raw["name"]),
            created_at=raw.get("created_at"),
            releases=tuple(
                Release(str(r["version"]), r.get("published_at"), r.get("publisher"))
                for r in raw.get("releases") or ()
            ),
            maintainers=tuple(raw.get("maintainers") or ()),
            latest=PackageMetadata.from_dict(latest) if isinstance(latest, Mapping) else None,
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


def parse_npm(doc: Any, name: str, version: str, published_at: str | None = None) -> PackageMetadata:
    """Build :class:`PackageMetadata` from an npm version document (``published_at``: the
    packument's ``time[version]``, when the document came from one)."""
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
        published_at=_str_or_none(published_at),
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
        published_at=_first_upload(urls),
    )


def _first_upload(files: list[Any]) -> str | None:
    """The earliest ``upload_time_iso_8601`` (else ``upload_time``) of a release's files."""
    times = [
        t
        for f in files
        if isinstance(f, dict)
        for t in (_str_or_none(f.get("upload_time_iso_8601")) or _str_or_none(f.get("upload_time")),)
        if t
    ]
    return min(times) if times else None


def _in_time_order(releases: list[Release]) -> tuple[Release, ...]:
    return tuple(sorted(releases, key=lambda r: (r.published_at is None, r.published_at or "", r.version)))


def parse_npm_packument(doc: Any, name: str) -> PackageHistory:
    """Build :class:`PackageHistory` from an npm packument (``GET /<name>``)."""
    if not isinstance(doc, dict) or not isinstance(doc.get("versions"), dict):
        raise ValueError("npm packument has no 'versions' object")
    versions: dict[str, Any] = doc["versions"]
    times = _obj(doc.get("time"))
    releases = [
        Release(str(v), _str_or_none(times.get(v)), _npm_person(_obj(d).get("_npmUser")))
        for v, d in versions.items()
    ]
    tag = _obj(doc.get("dist-tags")).get("latest")
    latest_version = tag if isinstance(tag, str) else ""
    latest_doc = versions.get(latest_version)
    dated = [r.published_at for r in releases if r.published_at]
    return PackageHistory(
        registry="npm",
        name=str(doc.get("name") or name),
        created_at=_str_or_none(times.get("created")) or (min(dated) if dated else None),
        releases=_in_time_order(releases),
        maintainers=tuple(m for m in (_npm_person(p) for p in _list(doc.get("maintainers"))) if m),
        latest=(
            parse_npm(latest_doc, name, latest_version, _str_or_none(times.get(latest_version)))
            if isinstance(latest_doc, dict)
            else None
        ),
    )


def parse_pypi_project(doc: Any, name: str) -> PackageHistory:
    """Build :class:`PackageHistory` from PyPI's project document (``GET /pypi/<name>/json``)."""
    if not isinstance(doc, dict) or not isinstance(doc.get("info"), dict):
        raise ValueError("PyPI JSON document has no 'info' object")
    releases = [
        Release(str(v), _first_upload(_list(files))) for v, files in _obj(doc.get("releases")).items()
    ]
    info: dict[str, Any] = doc["info"]
    latest = parse_pypi(doc, name, str(info.get("version") or ""))
    if not any(r.version == latest.version for r in releases) and latest.version:
        releases.append(Release(latest.version, latest.published_at))
    roles = _list(_obj(doc.get("ownership")).get("roles"))
    owners = tuple(dict.fromkeys(u for r in roles for u in (_str_or_none(_obj(r).get("user")),) if u))
    dated = [r.published_at for r in releases if r.published_at]
    return PackageHistory(
        registry="pypi",
        name=str(info.get("name") or name),
        created_at=min(dated) if dated else None,
        releases=_in_time_order(releases),
        maintainers=owners or latest.maintainers,
        latest=latest,
    )


def npm_escape(name: str) -> str:
    """Escape a package name for the npm registry path: ``@scope/name`` -> ``@scope%2fname``."""
    return quote(name, safe="@/").replace("/", "%2f")
