"""Reading one manifest: which format a file is (by name, then by content), and its entries."""

from __future__ import annotations

from pathlib import Path, PurePath

from typostream.agents.domain.errors import ManifestError
from typostream.agents.domain.manifests.base import Entry, ManifestFormat

__all__ = ["MAX_BYTES", "detect_format", "format_by_name", "parse_file", "read_text"]

MAX_BYTES = 256 * 1024 * 1024
"""Larger files are refused (the biggest real lockfiles are tens of MB)."""


def read_text(path: Path) -> str:
    """The file as text (UTF-8, a BOM dropped); :class:`ManifestError` naming the file otherwise."""
    try:
        if path.stat().st_size > MAX_BYTES:
            raise ManifestError(f"{path}: larger than {MAX_BYTES // (1024 * 1024)} MiB")
        return path.read_bytes().decode("utf-8-sig")
    except OSError as exc:
        raise ManifestError(f"cannot read {path}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise ManifestError(f"{path}: not UTF-8 text (byte {exc.start})") from exc


def format_by_name(path: PurePath) -> ManifestFormat | None:
    """The format ``path``'s name says (what a project walk finds), or None."""
    from typostream.agents.domain.manifests import FORMATS

    return next((fmt for fmt in FORMATS.values() if fmt.matches_name(path)), None)


def detect_format(path: PurePath, text: str, registry: str | None) -> ManifestFormat:
    """By name; else by content (structured formats, then requirement lines); else a name list when
    a registry other than PyPI is given. :class:`ManifestError` when nothing fits."""
    from typostream.agents.domain.manifests import FORMATS

    by_name = format_by_name(path)
    if by_name is not None:
        return by_name
    for fmt in FORMATS.values():
        if fmt.id != "requirements" and fmt.sniff(text):
            return fmt
    if registry and registry != "pypi":
        return FORMATS["names"]
    if registry == "pypi" or FORMATS["requirements"].sniff(text):
        return FORMATS["requirements"]
    raise ManifestError(
        f"{path}: cannot tell which manifest format this is; pass --format-in "
        f"({', '.join(FORMATS)}), or --registry for a list of names"
    )


def parse_file(
    path: Path, fmt: ManifestFormat | None = None, registry: str | None = None
) -> tuple[ManifestFormat, list[Entry]]:
    """The format and entries of one file. ``registry`` is the caller's (``--registry``): a name
    list takes it, a format of another registry refuses it."""
    text = read_text(path)
    fmt = fmt or detect_format(path, text, registry)
    if fmt.registry and registry and registry != fmt.registry:
        raise ManifestError(f"{path} is a {fmt.registry} manifest ({fmt.id}), not {registry}")
    effective = fmt.registry or registry
    if not effective:
        raise ManifestError(f"{path} is a list of names ({fmt.id}): pass --registry")
    return fmt, fmt.parse(text, path, effective, read_text)
