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
