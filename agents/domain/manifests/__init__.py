"""Manifest and lockfile parsers, one module per format (pure: text in, entries out).

Each format is a :class:`ManifestFormat` (``id``, ``registry``, ``filenames``, ``sniff``,
``parse``); :data:`FORMATS` is the registry, in the order content sniffing tries them. A file
yields :class:`Entry` objects ``(registry, name, version | None, file, line)``; a malformed file
raises :class:`~typostream.agents.domain.errors.ManifestError` naming the file, the line when
known, and the problem. :func:`parse_file` reads one file, :func:`find_manifests` walks a project.

A new format is one module here with a :class:`ManifestFormat` subclass, one entry in
``_CLASSES`` and its test under ``tests/agents/manifests/``.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from typostream.agents.domain.manifests.base import Entry, ManifestFormat
from typostream.agents.domain.manifests.loader import detect_format, format_by_name, parse_file, read_text
from typostream.agents.domain.manifests.names import NamesFormat, parse_spec
from typostream.agents.domain.manifests.package_json import PackageJsonFormat
from typostream.agents.domain.manifests.package_lock import PackageLockFormat
from typostream.agents.domain.manifests.pipfile_lock import PipfileLockFormat
from typostream.agents.domain.manifests.pnpm_lock import PnpmLockFormat
from typostream.agents.domain.manifests.poetry_lock import PoetryLockFormat
from typostream.agents.domain.manifests.pyproject import PyprojectFormat
from typostream.agents.domain.manifests.requirements import RequirementsFormat
from typostream.agents.domain.manifests.uv_lock import UvLockFormat
from typostream.agents.domain.manifests.walk import SKIP_DIRS, find_manifests
from typostream.agents.domain.manifests.yarn_lock import YarnLockFormat

__all__ = [
    "FORMATS",
    "SKIP_DIRS",
    "Entry",
    "ManifestFormat",
    "detect_format",
    "find_manifests",
    "format_by_name",
    "parse_file",
    "parse_spec",
    "read_text",
]

# sniffing order: lockfiles (distinctive markers) before manifests, requirement lines last
_CLASSES: tuple[type[ManifestFormat], ...] = (
    PackageLockFormat,
    PackageJsonFormat,
    PipfileLockFormat,
    PnpmLockFormat,
    YarnLockFormat,
    PoetryLockFormat,
    UvLockFormat,
    PyprojectFormat,
    RequirementsFormat,
    NamesFormat,
)

FORMATS: Mapping[str, ManifestFormat] = MappingProxyType({cls.id: cls() for cls in _CLASSES})
"""``{format id: format}`` — the ``--format-in`` choices."""

assert len(FORMATS) == len(_CLASSES), "two manifest formats share an id"
