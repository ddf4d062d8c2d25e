"""``poetry.lock`` (TOML ``[[package]]`` tables): every locked package with its exact version.

Packages with a ``[package.source]`` of type ``git``, ``directory``, ``file`` or ``url`` are not
from a registry and skipped; ``legacy`` sources (a private index) are kept, since that is where
dependency confusion happens. An entry's line is its ``name =`` line.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from typostream.agents.domain.manifests.base import (
    Entry,
    ManifestFormat,
    Reader,
    package_name_version,
    toml_packages,
)

__all__ = ["PoetryLockFormat"]

_NOT_REGISTRY = frozenset({"git", "directory", "file", "url"})


class PoetryLockFormat(ManifestFormat):
    id: ClassVar[str] = "poetry-lock"
    registry: ClassVar[str] = "pypi"
    description: ClassVar[str] = "poetry.lock"
    filenames: ClassVar[tuple[str, ...]] = ("poetry.lock",)

    def sniff(self, text: str) -> bool:
        return "[[package]]" in text and "content-hash" in text and "[metadata]" in text

    def parse(self, text: str, path: Path, registry: str, read: Reader) -> list[Entry]:
        _, packages = toml_packages(text, path)
        entries = []
        for package, line in packages:
            name, version = package_name_version(package, path, line)
            source = package.get("source")
            if isinstance(source, dict) and source.get("type") in _NOT_REGISTRY:
                continue
            entries.append(Entry(registry, name, version, str(path), line))
        return entries
