"""``uv.lock`` (TOML ``[[package]]`` tables): every package locked from a registry, with its version.

Only packages whose ``source`` is a ``registry`` are entries: the project itself is
``editable``/``virtual``, and ``git``, ``path``, ``directory`` and ``url`` sources are not from a
registry. An entry's line is its ``name =`` line.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from typostream.agents.domain.errors import ManifestError
from typostream.agents.domain.manifests.base import (
    Entry,
    ManifestFormat,
    Reader,
    package_name_version,
    toml_packages,
)

__all__ = ["UvLockFormat"]


class UvLockFormat(ManifestFormat):
    id: ClassVar[str] = "uv-lock"
    registry: ClassVar[str] = "pypi"
    description: ClassVar[str] = "uv.lock"
    filenames: ClassVar[tuple[str, ...]] = ("uv.lock",)

    def sniff(self, text: str) -> bool:
        return "[[package]]" in text and "requires-python" in text and "source = {" in text

    def parse(self, text: str, path: Path, registry: str, read: Reader) -> list[Entry]:
        doc, packages = toml_packages(text, path)
        if "version" in doc and not isinstance(doc["version"], int):
            raise ManifestError(f"{path}: 'version' must be the lockfile's integer version")
        entries = []
        for package, line in packages:
            source = package.get("source")
            if not isinstance(source, dict) or "registry" not in source:
                continue  # editable/virtual (the project), git, path, directory, url
            name, version = package_name_version(package, path, line)
            entries.append(Entry(registry, name, version, str(path), line))
        return entries
