"""Bundled samples of real package names, read by the benchmarks; regenerate with ``generate.py``.

* ``npm.tsv.gz``: ``name<TAB>downloads_a_month``, every name of the npm package list (226,995;
  downloads empty for the few names without a count), sorted by name.
* ``pypi.tsv.gz``: ``name``, a seeded random sample of 200,000 unranked PyPI names (outside the
  15,000 most downloaded), sorted by name.

The readers below take either a bundled file or a full source list (plain ``.tsv`` or ``.tsv.gz``
with a header line; columns are found by name), so a benchmark can be pointed at either.
"""

from __future__ import annotations

import gzip
import lzma
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

__all__ = [
    "NAMES_DIR",
    "NPM_FILE",
    "PYPI_FILE",
    "iter_names",
    "iter_npm_downloads",
    "iter_pypi_unranked",
    "iter_rows",
    "names_file",
]

NAMES_DIR = Path(__file__).resolve().parent
NPM_FILE = NAMES_DIR / "npm.tsv.gz"
PYPI_FILE = NAMES_DIR / "pypi.tsv.gz"
DOWNLOADS = "downloads_a_month"
RANK = "rank_among_15000_most_downloaded"


def names_file(registry: str) -> Path:
    """The bundled file for ``registry`` (``"npm"`` or ``"pypi"``)."""
    files = {"npm": NPM_FILE, "pypi": PYPI_FILE}
    if registry not in files:
        raise ValueError(f"no bundled names for {registry!r} (have: {', '.join(files)})")
    return files[registry]


def _open(path: Path) -> TextIO:
    if path.suffix == ".gz":
        return gzip.open(path, "rt", encoding="utf-8", errors="replace")
    return path.open(encoding="utf-8", errors="replace")


def iter_rows(path: Path | str) -> Iterator[dict[str, str]]:
    """Rows of a tab-separated list as ``{column: value}`` (header line first, no quoting)."""
    with _open(Path(path)) as handle:
        header = handle.readline().rstrip("\r\n").split("\t")
        for line in handle:
            cols = line.rstrip("\r\n").split("\t")
            if cols[0]:
                yield dict(zip(header, cols, strict=False))


def iter_names(path: Path | str) -> Iterator[str]:
    """The first column (the package name) of every row."""
    with _open(Path(path)) as handle:
        handle.readline()
        for line in handle:
            name = line.split("\t", 1)[0].rstrip("\r\n")
            if name:
                yield name


def iter_npm_downloads(path: Path | str = NPM_FILE) -> Iterator[tuple[str, int]]:
    """``(name, downloads a month)`` for every npm row that has a download count."""
    for row in iter_rows(path):
        downloads = row.get(DOWNLOADS, "")
        if downloads.isdigit():
            yield row["name"], int(downloads)


def iter_pypi_unranked(path: Path | str = PYPI_FILE) -> Iterator[str]:
    """PyPI names without a download rank (every row of a list that has no rank column)."""
    for row in iter_rows(path):
        if not row.get(RANK, ""):
            yield row["name"]


# --- every PyPI name (benchmarks/replay.py) ------------------------------------------------------
# ``pypi-all.txt.xz``: every PyPI project name of the source list, one per line (no header), PEP 503
# normalised, distinct, sorted by code point; written by ``generate.py`` (its docstring has the shape).

__all__ += ["PYPI_ALL_FILE", "iter_pypi_all", "pypi_all_names"]

PYPI_ALL_FILE = NAMES_DIR / "pypi-all.txt.xz"


def _open_list(path: Path) -> TextIO:
    if path.suffix == ".xz":
        return lzma.open(path, "rt", encoding="utf-8")
    if path.suffix == ".gz":
        return gzip.open(path, "rt", encoding="utf-8")
    return path.open(encoding="utf-8")


def iter_pypi_all(path: Path | str = PYPI_ALL_FILE) -> Iterator[str]:
    """Every name of a one-name-a-line list (``.xz``, ``.gz`` or plain), in file order, blanks skipped.

    A missing file raises :class:`FileNotFoundError` naming it and how to regenerate it; a corrupt
    or truncated compressed file raises :class:`ValueError` naming the file.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such name list (regenerate it with data/names/generate.py)")
    try:
        with _open_list(path) as handle:
            for line in handle:
                name = line.rstrip("\r\n")
                if name:
                    yield name
    except (lzma.LZMAError, EOFError, gzip.BadGzipFile, zlib.error, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: corrupt or truncated name list ({exc})") from exc


def pypi_all_names(path: Path | str = PYPI_ALL_FILE) -> list[str]:
    """Every PyPI project name (see :func:`iter_pypi_all`), read into a list."""
    return list(iter_pypi_all(path))
