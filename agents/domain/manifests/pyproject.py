"""``pyproject.toml`` (``tomllib``): PEP 621 and PEP 735 requirements, build requirements, and Poetry.

- PEP 508 strings (versions as in requirements files: ``==`` pins, see :mod:`.requirements`):
  ``[build-system] requires``, ``[project] dependencies``, ``[project.optional-dependencies]``,
  ``[dependency-groups]`` (PEP 735; ``{include-group = ...}`` items are the other group's, already
  read), ``[tool.uv] dev-dependencies`` and ``[tool.pdm.dev-dependencies]``.
- Poetry tables ``[tool.poetry.dependencies]``, ``[tool.poetry.dev-dependencies]`` and
  ``[tool.poetry.group.<name>.dependencies]``: ``name = "constraint"``, ``name = {version = ...}``
  or a list of such tables; ``python`` is not a package and ``git``/``path``/``url``/``file``
  dependencies do not come from the registry. Poetry reads a bare ``1.2.3`` (or ``==1.2.3``) as an
  exact version.
- Lines: TOML parsers give no positions, so an entry's line is where its string (PEP 508) or its
  key (Poetry) first appears in the file after the ones already placed.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, ClassVar

from packaging.requirements import InvalidRequirement
from packaging.version import InvalidVersion, Version

from typostream.agents.domain.errors import ManifestError
from typostream.agents.domain.manifests.base import Entry, LineIndex, ManifestFormat, Reader, load_toml
from typostream.agents.domain.manifests.requirements import parse_requirement, pinned_version

__all__ = ["PyprojectFormat", "poetry_exact_version"]

_NOT_REGISTRY = ("git", "path", "url", "file", "develop")


def poetry_exact_version(constraint: str) -> str | None:
    """``1.2.3`` / ``==1.2.3`` / ``=1.2.3`` pin a version in Poetry; ranges, ``*`` and ``^``/``~`` do not."""
    text = constraint.strip().lstrip("=").strip()
    try:
        Version(text)
    except InvalidVersion:
        return None
    return text


class PyprojectFormat(ManifestFormat):
    id: ClassVar[str] = "pyproject"
    registry: ClassVar[str] = "pypi"
    description: ClassVar[str] = "pyproject.toml: PEP 621/735 dependencies, build requires, Poetry"
    filenames: ClassVar[tuple[str, ...]] = ("pyproject.toml",)

    def sniff(self, text: str) -> bool:
        return (
            re.search(r"^\s*\[\s*(?:project|build-system|tool\.poetry|dependency-groups)\s*[\].]", text, re.M)
            is not None
        )

    def parse(self, text: str, path: Path, registry: str, read: Reader) -> list[Entry]:
        doc = load_toml(text, path)
        lines = _Placer(LineIndex(text))
        entries: list[Entry] = []
        for where, items in _pep508_lists(doc):
            if not isinstance(items, list):
                raise ManifestError(f"{path}: {where} must be a list of requirement strings")
            for item in items:
                if isinstance(item, dict) and "include-group" in item:
                    continue
                if not isinstance(item, str):
                    raise ManifestError(f"{path}: {where}: {item!r} is not a requirement string")
                line = lines.literal(item)
                try:
                    requirement = parse_requirement(item)
                except InvalidRequirement as exc:
                    reason = str(exc).strip().splitlines()[0]
                    raise ManifestError(
                        f"{path}:{line or 1}: {where}: not a requirement ({reason}): {item}"
                    ) from exc
                if not requirement.url:
                    entries.append(
                        Entry(registry, requirement.name, pinned_version(requirement), str(path), line)
                    )
        for section, table in _poetry_tables(doc):
            if not isinstance(table, dict):
                raise ManifestError(f"{path}: [{section}] must be a table")
            start = lines.section(section)
            for name, spec in table.items():
                if name.lower() == "python":
                    continue
                from_registry, pinned = _poetry_spec(spec, path, section, name)
                if from_registry:
                    entries.append(Entry(registry, name, pinned, str(path), lines.key(name, start)))
        return entries


def _pep508_lists(doc: dict[str, Any]) -> list[tuple[str, Any]]:
    found: list[tuple[str, Any]] = []
    build = doc.get("build-system")
    if isinstance(build, dict) and "requires" in build:
        found.append(("build-system.requires", build["requires"]))
    project = doc.get("project")
    if isinstance(project, dict):
        if "dependencies" in project:
            found.append(("project.dependencies", project["dependencies"]))
        optional = project.get("optional-dependencies")
        if isinstance(optional, dict):
            found.extend((f"project.optional-dependencies.{k}", v) for k, v in optional.items())
    groups = doc.get("dependency-groups")
    if isinstance(groups, dict):
        found.extend((f"dependency-groups.{k}", v) for k, v in groups.items())
    raw_tool = doc.get("tool")
    tool: dict[str, Any] = raw_tool if isinstance(raw_tool, dict) else {}
    uv = tool.get("uv")
    if isinstance(uv, dict) and "dev-dependencies" in uv:
        found.append(("tool.uv.dev-dependencies", uv["dev-dependencies"]))
    pdm = tool.get("pdm")
    if isinstance(pdm, dict) and isinstance(pdm.get("dev-dependencies"), dict):
        found.extend((f"tool.pdm.dev-dependencies.{k}", v) for k, v in pdm["dev-dependencies"].items())
    return found


def _poetry_tables(doc: dict[str, Any]) -> list[tuple[str, Any]]:
    tool = doc.get("tool")
    poetry = tool.get("poetry") if isinstance(tool, dict) else None
    if not isinstance(poetry, dict):
        return []
    found = [(f"tool.poetry.{k}", poetry[k]) for k in ("dependencies", "dev-dependencies") if k in poetry]
    groups = poetry.get("group")
    if isinstance(groups, dict):
        for group, body in groups.items():
            if isinstance(body, dict) and "dependencies" in body:
                found.append((f"tool.poetry.group.{group}.dependencies", body["dependencies"]))
    return found


def _poetry_spec(spec: Any, path: Path, section: str, name: str) -> tuple[bool, str | None]:
    """``(from the registry, pinned version or None)`` of one Poetry dependency."""
    if isinstance(spec, str):
        return True, poetry_exact_version(spec)
    if isinstance(spec, list):  # multiple constraints (per Python version/platform): pinned if all agree
        specs = [_poetry_spec(item, path, section, name) for item in spec]
        pins = {version for registry, version in specs if registry}
        if not pins:
            return False, None
        return True, pins.pop() if len(pins) == 1 else None
    if isinstance(spec, dict):
        if any(key in spec for key in _NOT_REGISTRY):
            return False, None
        version = spec.get("version", "*")
        if not isinstance(version, str):
            raise ManifestError(f"{path}: [{section}] {name}: 'version' must be a string")
        return True, poetry_exact_version(version)
    raise ManifestError(f"{path}: [{section}] {name}: expected a version string or a table, got {spec!r}")


class _Placer:
    """Assigns each entry the first not yet used occurrence of its text, in file order."""

    def __init__(self, index: LineIndex) -> None:
        self.index = index
        self.used: set[tuple[str, int]] = set()

    def literal(self, literal: str) -> int | None:
        start = 0
        while True:
            found = [i for q in ('"', "'") if (i := self.index.text.find(f"{q}{literal}{q}", start)) >= 0]
            if not found:
                return None
            offset = min(found)
            if (literal, offset) not in self.used:
                self.used.add((literal, offset))
                return self.index.line(offset)
            start = offset + 1

    def section(self, dotted: str) -> int:
        parts = r"\s*\.\s*".join(rf"(?:{re.escape(p)}|\"{re.escape(p)}\")" for p in dotted.split("."))
        offset = self.index.find(re.compile(rf"^\s*\[\s*{parts}\s*\]", re.M))
        return offset if offset is not None else 0

    def key(self, name: str, start: int) -> int | None:
        pattern = re.compile(
            rf"^\s*(?:{re.escape(name)}|\"{re.escape(name)}\"|'{re.escape(name)}')\s*=", re.M
        )
        offset = self.index.find(pattern, start)
        return self.index.line(offset) if offset is not None else None
