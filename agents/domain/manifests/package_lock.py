"""``package-lock.json`` and ``npm-shrinkwrap.json``, lockfile versions 1 to 3.

- v2/v3: the ``packages`` object, keyed by install path (``node_modules/a/node_modules/@s/b``);
  the package is the part after the last ``node_modules/`` (or the entry's ``name`` for an
  alias). The root (``""``), workspace folders and ``link: true`` entries are local, not entries.
- v1 (and v2 files without ``packages``): the nested ``dependencies`` tree, walked iteratively
  (no recursion). ``version: "npm:other@1.0.0"`` aliases install ``other``.
- Packages resolved from git or a local path (``resolved``/``version`` starting ``git+``,
  ``file:``, ...) are skipped. The same name and version installed at several paths is reported
  once, at its first line.
- Lines: the line of the package's key (``"node_modules/a": {``).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

from typostream.agents.domain.errors import ManifestError
from typostream.agents.domain.manifests.base import (
    Entry,
    LineIndex,
    ManifestFormat,
    Reader,
    load_json,
    npm_exact_version,
)

__all__ = ["PackageLockFormat"]

_LOCAL_PREFIXES = ("git+", "git:", "git@", "file:", "link:", "github:", "workspace:")


def _from_registry(info: dict[str, Any]) -> bool:
    for key in ("resolved", "version"):
        value = info.get(key)
        if isinstance(value, str) and value.startswith(_LOCAL_PREFIXES):
            return False
    return not info.get("link")


class PackageLockFormat(ManifestFormat):
    id: ClassVar[str] = "package-lock"
    registry: ClassVar[str] = "npm"
    description: ClassVar[str] = "package-lock.json / npm-shrinkwrap.json (lockfile v1-v3)"
    filenames: ClassVar[tuple[str, ...]] = ("package-lock.json", "npm-shrinkwrap.json")

    def sniff(self, text: str) -> bool:
        return text.lstrip()[:1] == "{" and '"lockfileVersion"' in text

    def parse(self, text: str, path: Path, registry: str, read: Reader) -> list[Entry]:
        doc = load_json(text, path)
        if not isinstance(doc, dict):
            raise ManifestError(f"{path}: a lockfile must be a JSON object")
        version = doc.get("lockfileVersion")
        if not isinstance(version, int) or isinstance(version, bool) or not 1 <= version <= 3:
            raise ManifestError(f"{path}: unsupported lockfileVersion {version!r} (expected 1, 2 or 3)")
        index = LineIndex(text)
        found: list[tuple[str, str, int | None]] = []
        packages = doc.get("packages")
        if version >= 2 and packages is not None:
            if not isinstance(packages, dict):
                raise ManifestError(f"{path}: 'packages' must be an object")
            self._packages(packages, path, index, found)
        else:
            self._dependencies_v1(doc.get("dependencies") or {}, path, index, found)
        seen: set[tuple[str, str]] = set()
        entries = []
        for name, exact, line in found:
            if (name, exact) not in seen:
                seen.add((name, exact))
                entries.append(Entry(registry, name, exact, str(path), line))
        return entries

    @staticmethod
    def _packages(
        packages: dict[str, Any], path: Path, index: LineIndex, out: list[tuple[str, str, int | None]]
    ) -> None:
        start = index.key_after("packages", 0) or 0
        for key, info in packages.items():
            if "node_modules/" not in key and not key.startswith("node_modules"):
                continue  # the root project ("") or a workspace folder
            offset = index.key_after(key, start, objects_only=True)
            line = index.line(offset) if offset is not None else None
            if not isinstance(info, dict):
                raise ManifestError(f"{path}:{line or 1}: packages[{key!r}] must be an object")
            if not _from_registry(info):
                continue
            name = info.get("name") or key.rsplit("node_modules/", 1)[-1]
            version = info.get("version")
            if not isinstance(version, str) or not isinstance(name, str):
                raise ManifestError(f"{path}:{line or 1}: packages[{key!r}] has no string 'version'")
            out.append((name, npm_exact_version(version) or version, line))

    @staticmethod
    def _dependencies_v1(
        dependencies: Any, path: Path, index: LineIndex, out: list[tuple[str, str, int | None]]
    ) -> None:
        """Pre-order in document order, so the n-th visit of a name is its n-th ``"name": {`` in the text."""
        if not isinstance(dependencies, dict):
            raise ManifestError(f"{path}: 'dependencies' must be an object")
        used: dict[str, int] = {}
        stack: list[tuple[str, Iterator[tuple[str, Any]]]] = [("dependencies", iter(dependencies.items()))]
        while stack:
            where, items = stack[-1]
            item = next(items, None)
            if item is None:
                stack.pop()
                continue
            name, info = item
            offsets = index.key_offsets(name, objects_only=True)
            n = used[name] = used.get(name, -1) + 1
            line = index.line(offsets[n]) if n < len(offsets) else None
            if not isinstance(info, dict):
                raise ManifestError(f"{path}:{line or 1}: {where}.{name} must be an object")
            version = info.get("version")
            if not isinstance(version, str):
                raise ManifestError(f"{path}:{line or 1}: {where}.{name} has no string 'version'")
            if _from_registry(info):
                package = name
                if version.startswith("npm:"):
                    target = version[4:]
                    at = target.rfind("@")
                    package, version = (target[:at], target[at + 1 :]) if at > 0 else (target, version)
                out.append((package, npm_exact_version(version) or version, line))
            nested = info.get("dependencies")
            if nested is not None:
                if not isinstance(nested, dict):
                    raise ManifestError(f"{path}:{line or 1}: {where}.{name}.dependencies must be an object")
                stack.append((f"{where}.{name}.dependencies", iter(nested.items())))
