"""pip requirements files (``requirements.txt``, ``requirements-dev.in``, ``requirements/*.txt``, or any
file whose lines are requirements), read as pip reads them.

- Logical lines: a trailing ``\\`` joins the next line; ``#`` starts a comment at the start of a
  line or after whitespace. An entry's line is the first physical line of its logical line.
- Requirements are PEP 508 (``packaging.requirements``): extras and environment markers are
  parsed and kept out of the name; every entry is reported whatever its marker (a scan covers
  every platform). Per-requirement options (``--hash=...``, ``--config-settings``) are dropped as
  pip splits them off: from the first blank-separated token starting with ``-``.
- ``-r FILE`` / ``--requirement FILE`` includes another file (relative to this one), entries keep
  their own file and line; a cycle, a missing file or a URL is an error naming the line.
  ``-c`` constraint files install nothing and are not followed; other options (``-i``,
  ``--extra-index-url``, ``-e``, ``--hash`` alone, ...) name no registry package.
- Direct references (``name @ https://...``), paths and archives do not come from the registry
  and are skipped.
- The version is the one pinned by a single ``==`` (no ``*``) or ``===``; any other constraint
  gives None. ``name==1.0.0-SNAPSHOT`` (not PEP 440: pip refuses it) is still read as that pin.
"""

from __future__ import annotations

import re
from pathlib import Path, PurePath
from typing import ClassVar

from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import Specifier

from typostream.agents.domain.errors import ManifestError
from typostream.agents.domain.manifests.base import Entry, ManifestFormat, Reader

__all__ = ["RequirementsFormat", "legacy_pin", "logical_lines", "pinned_version", "requirement_pin"]

_COMMENT = re.compile(r"(^|\s+)#.*$")
_INCLUDE = re.compile(r"^(?:-r|--requirement)(?:\s*=\s*|\s+|(?=\S))(?P<file>\S.*)$")
_LOCAL = re.compile(
    r"^\.\.?$|^(?:\.{0,2}/|~|[A-Za-z]:[\\/]|\w+\+|\w+://)|\.(?:whl|tar\.gz|zip|tgz|tar\.bz2)$"
)
_NAME_LIKE = re.compile(r"(^|[/\\])(?:[\w.-]*[-_.])?requirements(?:[-_.][\w.-]*)?\.(?:txt|in)$", re.I)
_LEGACY_PIN = re.compile(r"^([A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)\s*===?\s*([^\s;,=<>!~]+)$")
MAX_DEPTH = 20


def logical_lines(text: str) -> list[tuple[int, str]]:
    """``(first line number, text)`` of each logical line: continuations joined, comments removed."""
    lines: list[tuple[int, str]] = []
    start, parts = 0, list[str]()
    for number, raw in enumerate(text.splitlines(), start=1):
        if not parts:
            start = number
        if raw.endswith("\\") and not _COMMENT.search(raw[:-1]):
            parts.append(raw[:-1])
            continue
        parts.append(raw)
        line = _COMMENT.sub("", "".join(parts)).strip()
        parts = []
        if line:
            lines.append((start, line))
    if parts:
        line = _COMMENT.sub("", "".join(parts)).strip()
        if line:
            lines.append((start, line))
    return lines


def pinned_version(requirement: Requirement) -> str | None:
    """The exact version of ``name==1.2.3`` / ``name===1.2.3``; None for any other constraint."""
    specifiers: list[Specifier] = list(requirement.specifier)  # type: ignore[arg-type]
    if len(specifiers) != 1:
        return None
    (spec,) = specifiers
    if spec.operator == "===" or (spec.operator == "==" and not spec.version.endswith(".*")):
        return spec.version
    return None


def _requirement_args(line: str) -> str:
    """The requirement part of a line, without pip's per-requirement options (pip's split)."""
    args = []
    for token in line.split(" "):
        if token.startswith("-"):
            break
        args.append(token)
    return " ".join(args).strip()


def parse_requirement(text: str) -> Requirement:
    """A PEP 508 requirement; :class:`InvalidRequirement` with pip's wording otherwise."""
    return Requirement(text)


def legacy_pin(text: str) -> tuple[str, str] | None:
    """``(name, version)`` of ``name==version`` whose version is not PEP 440 (``1.0.0-SNAPSHOT``):
    pip refuses to install it, but a scan reports it rather than fail on it."""
    match = _LEGACY_PIN.match(text)
    return (match.group(1), match.group(2)) if match else None


def requirement_pin(text: str) -> tuple[str, str | None] | None:
    """``(name, pinned version or None)`` of a requirement, None for a direct reference
    (``name @ URL``); :class:`InvalidRequirement` when it is neither PEP 508 nor a legacy pin."""
    try:
        requirement = parse_requirement(text)
    except InvalidRequirement:
        pin = legacy_pin(text)
        if pin is None:
            raise
        return pin
    return None if requirement.url else (requirement.name, pinned_version(requirement))


class RequirementsFormat(ManifestFormat):
    id: ClassVar[str] = "requirements"
    registry: ClassVar[str] = "pypi"
    description: ClassVar[str] = "pip requirements file (any name: recognized by its lines)"

    def matches_name(self, path: PurePath) -> bool:
        if _NAME_LIKE.search(path.name):
            return True
        return path.parent.name.lower() == "requirements" and path.suffix.lower() in (".txt", ".in")

    def sniff(self, text: str) -> bool:
        """Every logical line is a pip option or a PEP 508 requirement, and there is one requirement."""
        found = False
        for _, line in logical_lines(text):
            if line.startswith("-"):
                continue
            args = _requirement_args(line)
            if _LOCAL.search(args):
                continue
            try:
                requirement_pin(args)
            except InvalidRequirement:
                return False
            found = True
        return found

    def parse(self, text: str, path: Path, registry: str, read: Reader) -> list[Entry]:
        entries: list[Entry] = []
        self._parse(text, path, registry, read, entries, (path.resolve(),))
        return entries

    def _parse(
        self, text: str, path: Path, registry: str, read: Reader, out: list[Entry], chain: tuple[Path, ...]
    ) -> None:
        for number, line in logical_lines(text):
            where = f"{path}:{number}"
            include = _INCLUDE.match(line)
            if include:
                self._include(include.group("file").strip(), where, path, registry, read, out, chain)
                continue
            if line.startswith("-"):
                continue  # -c, -e, -i, --hash, --pre, ... : no registry package named here
            args = _requirement_args(line)
            if not args or _LOCAL.search(args):
                continue
            try:
                pin = requirement_pin(args)
            except InvalidRequirement as exc:
                raise ManifestError(f"{where}: not a requirement ({_reason(exc)}): {args}") from exc
            if pin is not None:  # None: a direct reference, not installed from the registry
                out.append(Entry(registry, pin[0], pin[1], str(path), number))

    def _include(
        self,
        target: str,
        where: str,
        path: Path,
        registry: str,
        read: Reader,
        out: list[Entry],
        chain: tuple[Path, ...],
    ) -> None:
        if "://" in target:
            raise ManifestError(f"{where}: -r {target} is a URL; only local files are read")
        included = Path(target) if Path(target).is_absolute() else path.parent / target
        resolved = included.resolve()
        if resolved in chain:
            raise ManifestError(f"{where}: -r {target} includes itself (cycle)")
        if len(chain) >= MAX_DEPTH:
            raise ManifestError(f"{where}: -r includes nested deeper than {MAX_DEPTH} files")
        try:
            text = read(included)
        except ManifestError as exc:
            raise ManifestError(f"{where}: -r {target}: {exc}") from exc
        self._parse(text, included, registry, read, out, (*chain, resolved))


def _reason(exc: InvalidRequirement) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else "invalid"
