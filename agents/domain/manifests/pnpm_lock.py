"""``pnpm-lock.yaml``, lockfile versions 5.x, 6.x and 9.x: the ``packages`` section.

Keys are dependency paths: ``/a/1.2.3`` and ``/@s/a/1.2.3_peer@1.0.0`` (v5), ``/a@1.2.3`` and
``/@s/a@1.2.3(peer@1.0.0)`` (v6), ``a@1.2.3`` (v9; peers in ``snapshots``). The peer suffix is
dropped. An entry with ``name``/``version`` fields (tarball and aliased packages) uses them.
Packages whose ``resolution`` is a git repository or a directory, or whose version is a tarball URL
or a path (``link:``, ``file:``), are not from the registry. Read as a YAML
node tree (no aliases; scalars as written). An entry's line is the line of its key.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import ClassVar

from typostream.agents.domain.errors import ManifestError
from typostream.agents.domain.manifests.base import (
    Entry,
    ManifestFormat,
    Reader,
    load_yaml_nodes,
    npm_exact_version,
    yaml_get,
    yaml_items,
    yaml_scalar,
)

__all__ = ["PnpmLockFormat", "parse_dep_path"]

_NOT_REGISTRY = re.compile(r"^(?:link:|file:|git|github|https?:|[\w.-]+\.[a-z]{2,}/)")


def parse_dep_path(key: str, v5: bool) -> tuple[str, str] | None:
    """``(name, version)`` of a ``packages`` key, or None when it names no registry version."""
    if _NOT_REGISTRY.match(key.lstrip("/")):
        return None
    path = key[1:] if key.startswith("/") else key
    if v5:
        name, _, version = path.rpartition("/")
        version = version.split("_", 1)[0].split("(", 1)[0]
    else:
        at = path.find("@", 1)
        if at < 0:
            return None
        name, version = path[:at], path[at + 1 :].split("(", 1)[0]
    if not name or not version:
        return None
    return name, version


class PnpmLockFormat(ManifestFormat):
    id: ClassVar[str] = "pnpm-lock"
    registry: ClassVar[str] = "npm"
    description: ClassVar[str] = "pnpm-lock.yaml (lockfile v5, v6, v9)"
    filenames: ClassVar[tuple[str, ...]] = ("pnpm-lock.yaml", "pnpm-lock.yml")

    def sniff(self, text: str) -> bool:
        return re.search(r"^lockfileVersion:", text, re.M) is not None and "packages:" in text

    def parse(self, text: str, path: Path, registry: str, read: Reader) -> list[Entry]:
        root = load_yaml_nodes(text, path)
        lockfile = yaml_scalar(yaml_get(root, "lockfileVersion"))
        if lockfile is None:
            raise ManifestError(f"{path}: no 'lockfileVersion': not a pnpm lockfile")
        try:
            major = int(float(lockfile.strip("'\"")))
        except ValueError as exc:
            raise ManifestError(f"{path}: lockfileVersion {lockfile!r} is not a number") from exc
        if major < 5:
            raise ManifestError(f"{path}: lockfileVersion {lockfile} is not supported (5, 6 and 9 are)")
        entries = []
        for key, info, line in yaml_items(yaml_get(root, "packages")):
            if _NOT_REGISTRY.match(key.lstrip("/")):
                continue  # a git host, tarball URL or local path (even when name/version are given)
            resolution = yaml_get(info, "resolution")
            if any(yaml_get(resolution, k) is not None for k in ("type", "directory", "repo")):
                continue
            name, version = yaml_scalar(yaml_get(info, "name")), yaml_scalar(yaml_get(info, "version"))
            if name is None or version is None:
                parsed = parse_dep_path(key, v5=major < 6)
                if parsed is None:
                    continue
                name, version = name or parsed[0], version or parsed[1]
            exact = npm_exact_version(version)
            if exact is None:
                continue  # a tarball URL or a local path where the version goes: not the registry
            entries.append(Entry(registry, name, exact, str(path), line))
        return entries
