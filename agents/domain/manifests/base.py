"""What every manifest format shares: the :class:`Entry` it yields, the :class:`ManifestFormat` base,
and helpers to read JSON/TOML/YAML with line numbers (the parsers of the standard library and
PyYAML give values, not positions).
"""

from __future__ import annotations

import bisect
import re
import tomllib
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import Any, ClassVar

import orjson
import semver
import yaml

from typostream.agents.domain.errors import ManifestError

__all__ = [
    "Entry",
    "LineIndex",
    "ManifestFormat",
    "Reader",
    "load_json",
    "load_toml",
    "load_yaml_nodes",
    "npm_exact_version",
    "package_name_version",
    "split_npm_spec",
    "toml_packages",
    "yaml_get",
    "yaml_items",
    "yaml_scalar",
]

Reader = Callable[[Path], str]
"""Reads another file a manifest includes (``-r other.txt``); raises :class:`ManifestError`."""


@dataclass(frozen=True, slots=True)
class Entry:
    """One package a manifest asks for: ``version`` is the exact version when the file pins one
    (a lockfile entry, ``==1.2.3``, ``"1.2.3"``), None for a range or no constraint. ``file`` is the
    path as opened, ``line`` 1-based (None when the format does not tell)."""

    registry: str
    name: str
    version: str | None
    file: str
    line: int | None = None


class ManifestFormat(ABC):
    """One manifest or lockfile format. Subclasses declare identity and implement :meth:`parse`.

    ``id`` is the ``--format-in`` value; ``registry`` the registry every entry belongs to (empty for
    a format whose registry the caller gives, the plain name list); ``filenames`` the exact file
    names recognized in a project walk (:meth:`matches_name` may recognize more).
    """

    id: ClassVar[str]
    registry: ClassVar[str]
    description: ClassVar[str]
    filenames: ClassVar[tuple[str, ...]] = ()

    def matches_name(self, path: PurePath) -> bool:
        """Whether ``path``'s name alone says it is this format."""
        return path.name in self.filenames

    def sniff(self, text: str) -> bool:
        """Whether ``text`` looks like this format (for a file whose name does not say)."""
        return False

    @abstractmethod
    def parse(self, text: str, path: Path, registry: str, read: Reader) -> list[Entry]:
        """Every entry of ``text`` (the content of ``path``); raises :class:`ManifestError` on a
        malformed file. ``registry`` is the registry entries belong to (this format's, or the
        caller's for a plain name list); ``read`` reads files the manifest includes."""


# --- line numbers ----------------------------------------------------------------------------
class LineIndex:
    """Offsets -> 1-based line numbers, and the offsets of JSON object keys (``"key":``)."""

    _JSON_KEY = re.compile(r'"((?:[^"\\\n]|\\.)*)"\s*:\s*(\{)?')

    def __init__(self, text: str) -> None:
        self.text = text
        self._starts = [0, *(m.end() for m in re.finditer("\n", text))]
        self._keys: dict[str, list[int]] | None = None
        self._object_keys: dict[str, list[int]] | None = None

    def line(self, offset: int) -> int:
        return bisect.bisect_right(self._starts, offset)

    def _index_keys(self) -> None:
        keys: dict[str, list[int]] = {}
        objects: dict[str, list[int]] = {}
        for match in self._JSON_KEY.finditer(self.text):
            raw = match.group(1)
            key = orjson.loads(f'"{raw}"') if "\\" in raw else raw
            keys.setdefault(key, []).append(match.start())
            if match.group(2):
                objects.setdefault(key, []).append(match.start())
        self._keys, self._object_keys = keys, objects

    def key_offsets(self, key: str, objects_only: bool = False) -> list[int]:
        """Offsets of every ``"key":`` in the text (only those opening an object with ``objects_only``)."""
        if self._keys is None:
            self._index_keys()
        table = self._object_keys if objects_only else self._keys
        assert table is not None
        return table.get(key, [])

    def key_after(self, key: str, offset: int, objects_only: bool = False) -> int | None:
        """Offset of the first ``"key":`` at or after ``offset``, or None."""
        offsets = self.key_offsets(key, objects_only)
        i = bisect.bisect_left(offsets, offset)
        return offsets[i] if i < len(offsets) else None

    def find(self, pattern: re.Pattern[str], start: int = 0) -> int | None:
        match = pattern.search(self.text, start)
        return match.start() if match else None


# --- readers ---------------------------------------------------------------------------------
def load_json(text: str, path: Path) -> Any:
    """JSON with a bounded depth (orjson refuses nesting beyond 1024 with an error, no recursion)."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise ManifestError(f"{path}: not valid JSON: {exc}") from exc


def load_toml(text: str, path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except (tomllib.TOMLDecodeError, RecursionError) as exc:
        raise ManifestError(f"{path}: not valid TOML: {_first_line(exc)}") from exc


def load_yaml_nodes(text: str, path: Path) -> yaml.Node | None:
    """The YAML node tree (scalars stay strings; each node knows its line), or None for an empty file.

    Anchors and aliases are refused: no lockfile writes them, and expanding them is how a small
    YAML file becomes a huge one.
    """
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except (yaml.YAMLError, RecursionError) as exc:
        raise ManifestError(f"{path}: not valid YAML: {_first_line(exc)}") from exc
    seen: set[int] = set()
    stack = [root] if root is not None else []
    while stack:
        node = stack.pop()
        if id(node) in seen:
            raise ManifestError(
                f"{path}:{node.start_mark.line + 1}: YAML anchors/aliases are not expected here"
            )
        seen.add(id(node))
        if isinstance(node, yaml.MappingNode):
            stack.extend(n for pair in node.value for n in pair)
        elif isinstance(node, yaml.SequenceNode):
            stack.extend(node.value)
    return root


def yaml_items(node: yaml.Node | None) -> Iterator[tuple[str, yaml.Node, int]]:
    """``(key, value node, 1-based line)`` of a YAML mapping with scalar keys (nothing otherwise)."""
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode):
                yield str(key.value), value, key.start_mark.line + 1


def yaml_get(node: yaml.Node | None, key: str) -> yaml.Node | None:
    return next((value for k, value, _ in yaml_items(node) if k == key), None)


def yaml_scalar(node: yaml.Node | None) -> str | None:
    return str(node.value) if isinstance(node, yaml.ScalarNode) else None


def _first_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


# --- TOML lockfiles (poetry.lock, uv.lock) ----------------------------------------------------
_PACKAGE_HEADER = re.compile(r"^[ \t]*\[\[[ \t]*package[ \t]*\]\][ \t]*$", re.M)
_NAME_KEY = re.compile(r"^[ \t]*name[ \t]*=", re.M)


def _package_lines(text: str, count: int) -> list[int | None]:
    """The ``name =`` line of each ``[[package]]`` table, in order (None when laid out otherwise)."""
    index = LineIndex(text)
    headers = [m.start() for m in _PACKAGE_HEADER.finditer(text)]
    if len(headers) != count:
        return [None] * count
    lines: list[int | None] = []
    for header in headers:
        name = index.find(_NAME_KEY, header)
        lines.append(index.line(name if name is not None else header))
    return lines


def toml_packages_raw(text: str, path: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    doc = load_toml(text, path)
    packages = doc.get("package", [])
    if not isinstance(packages, list) or not all(isinstance(p, dict) for p in packages):
        raise ManifestError(f"{path}: 'package' must be an array of tables ([[package]])")
    return doc, packages


def package_name_version(package: dict[str, Any], path: Path, line: int | None) -> tuple[str, str]:
    name, version = package.get("name"), package.get("version")
    if not isinstance(name, str) or not name.strip():
        raise ManifestError(f"{path}:{line or 1}: a [[package]] without a 'name'")
    if not isinstance(version, str) or not version.strip():
        raise ManifestError(f"{path}:{line or 1}: package {name!r} has no 'version'")
    return name.strip(), version.strip()


def toml_packages(text: str, path: Path) -> tuple[dict[str, Any], list[tuple[dict[str, Any], int | None]]]:
    """A TOML lockfile's document and its ``[[package]]`` tables, each with its ``name =`` line."""
    doc, packages = toml_packages_raw(text, path)
    return doc, list(zip(packages, _package_lines(text, len(packages)), strict=True))


# --- npm version specs -----------------------------------------------------------------------
def npm_exact_version(spec: str) -> str | None:
    """The version an npm spec pins (``1.2.3``, ``=1.2.3``, ``v1.2.3``), None for a range or tag."""
    text = spec.strip()
    text = text[1:].strip() if text.startswith("=") else text
    text = text[1:] if text[:1] in ("v", "V") else text
    return text if semver.Version.is_valid(text) else None


_NON_REGISTRY_SPEC = re.compile(
    r"^(?:file:|link:|workspace:|portal:|patch:|exec:|git[+:]|github:|gitlab:|bitbucket:|gist:|https?:"
    r"|[\w.-]+/[\w.-]+(?:#.*)?$|\.{0,2}/|~/)"
)


def split_npm_spec(name: str, spec: str) -> tuple[str, str | None] | None:
    """``(package, exact version or None)`` a dependency ``name: spec`` installs from the registry,
    None when it comes from elsewhere (a path, git, a URL, a workspace). ``npm:other@1.0.0`` aliases
    install ``other``."""
    spec = spec.strip()
    if spec.startswith("npm:"):
        target = spec[4:]
        at = target.rfind("@")
        if at > 0:
            return target[:at], npm_exact_version(target[at + 1 :])
        return target, None
    if _NON_REGISTRY_SPEC.match(spec):
        return None
    return name, npm_exact_version(spec)
