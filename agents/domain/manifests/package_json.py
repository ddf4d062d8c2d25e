"""``package.json``: the packages of ``dependencies``, ``devDependencies``, ``peerDependencies`` and
``optionalDependencies``.

A spec pins a version when it is one exact version (``1.2.3``, ``=1.2.3``, ``v1.2.3``); ranges
and tags (``^1.2.0``, ``latest``) give None. ``npm:other@1.0.0`` aliases install ``other``;
``file:``, ``link:``, ``workspace:``, git, GitHub shorthand (``user/repo``) and URL specs do not
come from the registry and are skipped. The project's own ``name`` is not a dependency. An entry's
line is the line of its key in its section. JSON is read by orjson: nesting beyond 1024 levels is
an error, never a recursion crash.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from typostream.agents.domain.errors import ManifestError
from typostream.agents.domain.manifests.base import (
    Entry,
    LineIndex,
    ManifestFormat,
    Reader,
    load_json,
    split_npm_spec,
)

__all__ = ["DEPENDENCY_SECTIONS", "PackageJsonFormat"]

DEPENDENCY_SECTIONS = ("dependencies", "devDependencies", "peerDependencies", "optionalDependencies")


class PackageJsonFormat(ManifestFormat):
    id: ClassVar[str] = "package-json"
    registry: ClassVar[str] = "npm"
    description: ClassVar[str] = "package.json dependencies (all four sections)"
    filenames: ClassVar[tuple[str, ...]] = ("package.json",)

    def sniff(self, text: str) -> bool:
        head = text.lstrip()[:1]
        return (
            head == "{"
            and '"lockfileVersion"' not in text
            and any(f'"{s}"' in text for s in DEPENDENCY_SECTIONS)
        )

    def parse(self, text: str, path: Path, registry: str, read: Reader) -> list[Entry]:
        doc = load_json(text, path)
        if not isinstance(doc, dict):
            raise ManifestError(f"{path}: a package.json must be a JSON object")
        index = LineIndex(text)
        entries = []
        for section in DEPENDENCY_SECTIONS:
            deps = doc.get(section)
            if deps is None:
                continue
            start = index.key_after(section, 0) or 0
            if not isinstance(deps, dict):
                raise ManifestError(
                    f"{path}:{index.line(start)}: '{section}' must be an object of name: version"
                )
            for name, spec in deps.items():
                offset = index.key_after(name, start)
                line = index.line(offset) if offset is not None else None
                if not isinstance(spec, str):
                    raise ManifestError(f"{path}:{line or 1}: {section}.{name}: the version must be a string")
                resolved = split_npm_spec(name, spec)
                if resolved is not None:
                    entries.append(Entry(registry, resolved[0], resolved[1], str(path), line))
        return entries
