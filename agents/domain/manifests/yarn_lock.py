"""``yarn.lock``: Yarn 1 (its own line format) and Yarn 2+ "berry" (YAML, ``__metadata``).

- Yarn 1: an unindented ``"a@^1.0.0", a@^1.1.0:`` line opens an entry, its indented
  ``version "1.2.3"`` is the locked version. ``b@npm:a@^1`` aliases install ``a``; entries whose
  range or ``resolved`` is ``file:``, ``link:``, git or a GitHub shorthand are not from the
  registry. Any other unindented line is an error (the file is not a Yarn 1 lockfile).
- Berry: each top-level key but ``__metadata`` is an entry; its ``resolution`` (``a@npm:1.2.3``,
  always the real package) gives name and version. Other protocols (``workspace:``, ``patch:``,
  ``portal:``, ``link:``, ``file:``, ``exec:``, git, URLs) are not from the registry. Read as
  a YAML node tree (no aliases, scalars kept as written: ``1.10`` stays ``1.10``).
- Lines: the line of the entry's key.
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
    split_npm_spec,
    yaml_get,
    yaml_items,
    yaml_scalar,
)

__all__ = ["YarnLockFormat"]

_V1_MARK = "# yarn lockfile v1"
_SPEC = re.compile(r'\s*(?:"((?:[^"\\]|\\.)*)"|([^,"]+))\s*(?:,|$)')
_V1_VERSION = re.compile(r'^\s+version:?\s+"?([^"\s]+)"?\s*$')
_V1_RESOLVED = re.compile(r'^\s+resolved:?\s+"?([^"\s]+)"?\s*$')
_NOT_REGISTRY_RESOLVED = ("git+", "git:", "git@", "file:", "link:", "github:")


def _split_descriptor(descriptor: str) -> tuple[str, str]:
    """``("@s/a", "^1.0.0")`` of ``@s/a@^1.0.0`` (the range may hold another ``@``)."""
    at = descriptor.find("@", 1)
    if at < 0:
        return descriptor, ""
    return descriptor[:at], descriptor[at + 1 :]


def _specifiers(header: str) -> list[str]:
    body = header.rstrip()[:-1]  # drop the ':'
    found = [m.group(1) if m.group(1) is not None else m.group(2).strip() for m in _SPEC.finditer(body)]
    return [s for s in found if s]


class YarnLockFormat(ManifestFormat):
    id: ClassVar[str] = "yarn-lock"
    registry: ClassVar[str] = "npm"
    description: ClassVar[str] = "yarn.lock (Yarn 1 and Yarn 2+ berry)"
    filenames: ClassVar[tuple[str, ...]] = ("yarn.lock",)

    def sniff(self, text: str) -> bool:
        return _V1_MARK in text[:500] or "\n__metadata:" in f"\n{text[:2000]}"

    def parse(self, text: str, path: Path, registry: str, read: Reader) -> list[Entry]:
        if re.search(r"^__metadata:", text, re.M) and _V1_MARK not in text[:500]:
            return self._berry(text, path, registry)
        return self._v1(text, path, registry)

    @staticmethod
    def _v1(text: str, path: Path, registry: str) -> list[Entry]:
        entries: list[Entry] = []
        current: tuple[int, list[str]] | None = None
        version: str | None = None
        resolved = ""

        def close() -> None:
            if current is None:
                return
            line, specs = current
            if version is None:
                raise ManifestError(f"{path}:{line}: entry {', '.join(specs)} has no version")
            if resolved.startswith(_NOT_REGISTRY_RESOLVED):
                return
            name, spec = _split_descriptor(specs[0])
            package = split_npm_spec(name, spec) if spec else (name, None)
            if package is not None:
                entries.append(
                    Entry(registry, package[0], npm_exact_version(version) or version, str(path), line)
                )

        for number, raw in enumerate(text.splitlines(), start=1):
            if not raw.strip() or raw.lstrip().startswith("#"):
                continue
            if not raw[0].isspace():
                close()
                if not raw.rstrip().endswith(":"):
                    raise ManifestError(f"{path}:{number}: not a yarn.lock entry header: {raw.strip()[:80]}")
                specs = _specifiers(raw)
                if not specs:
                    raise ManifestError(f"{path}:{number}: an entry header without a package")
                current, version, resolved = (number, specs), None, ""
                continue
            if current is None:
                raise ManifestError(f"{path}:{number}: an indented line outside any entry")
            if not (raw.startswith("  ") and len(raw) > 2 and not raw[2].isspace()):
                continue  # deeper: the entry's dependencies (a package may be named "version")
            if m := _V1_VERSION.match(raw):
                version = m.group(1)
            elif m := _V1_RESOLVED.match(raw):
                resolved = m.group(1)
        close()
        return entries

    @staticmethod
    def _berry(text: str, path: Path, registry: str) -> list[Entry]:
        root = load_yaml_nodes(text, path)
        items = list(yaml_items(root))
        if root is not None and not items:
            raise ManifestError(f"{path}: a yarn.lock must be a mapping of entries")
        entries: list[Entry] = []
        for key, value, line in items:
            if key == "__metadata":
                continue
            resolution = yaml_scalar(yaml_get(value, "resolution"))
            if resolution is None:
                raise ManifestError(f"{path}:{line}: entry {key[:80]} has no 'resolution'")
            name, locator = _split_descriptor(resolution)
            if not locator.startswith("npm:"):
                continue  # workspace:, patch:, portal:, link:, file:, exec:, git, URLs
            version = locator[4:].split("::", 1)[0]
            entries.append(Entry(registry, name, npm_exact_version(version) or version, str(path), line))
        return entries
