"""Package specs as people type them (``NAME``, ``NAME==VERSION``, ``NAME@VERSION``) and plain name
lists (one spec per line, ``#`` comments), the format of ``scan NAME...``, the HTTP API's ``names``
and ``--format-in names``.

- PyPI: a PEP 508 requirement (``packaging``): ``requests==2.31.0``, ``requests[socks]``,
  ``requests>=2`` (no pinned version), ``requests===2.31.0``; ``requests@2.31.0`` is read as
  ``==2.31.0`` for convenience. Direct references (``name @ https://...``) are refused.
- npm (and the watchlist-only registries): ``name@version`` or ``@scope/name@version``; a range or
  tag (``lodash@^4``, ``lodash@latest``) gives no version. ``name==version`` is accepted too.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import ClassVar

from packaging.requirements import InvalidRequirement, Requirement
from packaging.version import InvalidVersion, Version

from typostream.agents.domain.errors import ManifestError, PackageSpecError
from typostream.agents.domain.manifests.base import Entry, ManifestFormat, Reader, npm_exact_version
from typostream.agents.domain.manifests.requirements import legacy_pin, pinned_version

__all__ = ["NamesFormat", "parse_spec"]

_COMMENT = re.compile(r"(^|\s+)#.*$")


def parse_spec(text: str, registry: str) -> tuple[str, str | None]:
    """``(name, exact version or None)`` of one typed package spec; :class:`PackageSpecError` if malformed."""
    spec = text.strip()
    if not spec:
        raise PackageSpecError("an empty package name")
    if registry == "pypi":
        return _pypi(spec)
    if "==" in spec:
        name, _, version = spec.partition("==")
        return _named(name, spec), version.strip() or None
    at = spec.find("@", 1)
    if at < 0:
        return spec, None
    return _named(spec[:at], spec), npm_exact_version(spec[at + 1 :])


def _named(name: str, spec: str) -> str:
    if not name.strip():
        raise PackageSpecError(f"no package name in {spec!r}")
    return name.strip()


_PEP508_NAME = re.compile(r"[A-Z0-9](?:[A-Z0-9._-]*[A-Z0-9])?", re.IGNORECASE)
"""A bare project name: ``Requirement`` would give it back unchanged, with no version (5x faster)."""


def _pypi(spec: str) -> tuple[str, str | None]:
    if _PEP508_NAME.fullmatch(spec):
        return spec, None
    try:
        requirement = Requirement(spec)
    except InvalidRequirement as exc:
        pin = legacy_pin(spec)
        if pin is not None:
            return pin
        reason = str(exc).strip().splitlines()[0]
        raise PackageSpecError(
            f"{spec!r} is not a PyPI requirement (NAME or NAME==VERSION): {reason}"
        ) from exc
    if requirement.url:  # "name@1.2.3" parses as a direct reference to the URL "1.2.3"
        try:
            Version(requirement.url)
        except InvalidVersion:
            raise PackageSpecError(
                f"{spec!r} is a direct reference, not a registry package; use NAME==VERSION"
            ) from None
        return requirement.name, requirement.url.strip()
    return requirement.name, pinned_version(requirement)


class NamesFormat(ManifestFormat):
    id: ClassVar[str] = "names"
    registry: ClassVar[str] = ""
    description: ClassVar[str] = (
        "one package per line (NAME, NAME==VERSION, NAME@VERSION), # comments; needs --registry"
    )

    def parse(self, text: str, path: Path, registry: str, read: Reader) -> list[Entry]:
        entries = []
        for number, raw in enumerate(text.splitlines(), start=1):
            line = _COMMENT.sub("", raw).strip()
            if not line:
                continue
            try:
                name, version = parse_spec(line.split()[0], registry)
            except PackageSpecError as exc:
                raise ManifestError(f"{path}:{number}: {exc}") from exc
            entries.append(Entry(registry, name, version, str(path), number))
        return entries
