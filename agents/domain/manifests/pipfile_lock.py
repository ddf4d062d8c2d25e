"""``Pipfile.lock`` (JSON): the ``default`` and ``develop`` packages with their ``==`` versions.

``git``/``path``/``file``/``editable`` (and other VCS) entries are not from a registry and skipped.
An entry's line is the line of its key in its section.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from typostream.agents.domain.errors import ManifestError
from typostream.agents.domain.manifests.base import Entry, LineIndex, ManifestFormat, Reader, load_json

__all__ = ["PipfileLockFormat"]

_NOT_REGISTRY = ("git", "path", "file", "editable", "hg", "svn", "bzr")


class PipfileLockFormat(ManifestFormat):
    id: ClassVar[str] = "pipfile-lock"
    registry: ClassVar[str] = "pypi"
    description: ClassVar[str] = "Pipfile.lock"
    filenames: ClassVar[tuple[str, ...]] = ("Pipfile.lock",)

    def sniff(self, text: str) -> bool:
        return '"_meta"' in text and ('"default"' in text or '"develop"' in text)

    def parse(self, text: str, path: Path, registry: str, read: Reader) -> list[Entry]:
        doc = load_json(text, path)
        if not isinstance(doc, dict) or not isinstance(doc.get("_meta", {}), dict):
            raise ManifestError(f"{path}: not a Pipfile.lock (expected an object with '_meta')")
        index = LineIndex(text)
        entries = []
        for section in ("default", "develop"):
            packages = doc.get(section, {})
            if not isinstance(packages, dict):
                raise ManifestError(f"{path}: '{section}' must be an object of packages")
            start = index.key_after(section, 0) or 0
            for name, info in packages.items():
                offset = index.key_after(name, start, objects_only=True)
                line = index.line(offset) if offset is not None else None
                if not isinstance(info, dict):
                    raise ManifestError(f"{path}:{line or 1}: {section}.{name} must be an object")
                if any(key in info for key in _NOT_REGISTRY):
                    continue
                version = info.get("version")
                if version is not None and not isinstance(version, str):
                    raise ManifestError(f"{path}:{line or 1}: {section}.{name}.version must be a string")
                pinned = (
                    version.strip().removeprefix("==").strip()
                    if version and version.startswith("==")
                    else None
                )
                entries.append(Entry(registry, name, pinned or None, str(path), line))
        return entries
