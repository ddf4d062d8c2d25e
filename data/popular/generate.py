"""Regenerate the popular-name snapshots shipped in this folder.

Usage::

    python data/popular/generate.py --npm NPM_TSV --pypi PYPI_TSV [--out data/popular]

Inputs are the registry download-statistics dumps:

* ``npm.tsv``: ``name, version, downloads_a_month, summary``.
* ``pypi.tsv``: ``name, version, month, rank_among_15000_most_downloaded, summary``
  (rank empty when unranked).

Cut-offs (chosen so that each index holds the names worth imitating, and stays small enough to
index in well under a second):

* **npm**: the 20,000 most-downloaded packages, which is every package with roughly
  >= 540,000 downloads a month (``NPM_TOP``). Below that the long tail is mostly packages that
  are themselves obscure; the dev set's "mid" band (10k-100k downloads a month) is far below it.
* **PyPI**: every ranked project (the 15,000 most downloaded; ~14,900 distinct after PEP 503
  normalisation).

Output: ``npm.tsv.gz`` and ``pypi.tsv.gz``, gzipped text, one ``name<TAB>popularity`` line per
package, most popular first (line number = popularity rank, so the top 5,000 are the first 5,000
lines). ``popularity`` is monthly downloads for npm and the download rank for PyPI. Both files
are written deterministically (gzip mtime 0) so regenerating from the same inputs is a no-op diff.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import io
import re
import sys
from pathlib import Path

NPM_TOP = 20_000
PYPI_TOP = 15_000
_PEP503 = re.compile(r"[-_.]+")


def read_npm(path: Path, top: int = NPM_TOP) -> list[tuple[str, int]]:
    """Return the ``top`` npm names by monthly downloads, most popular first."""
    rows: dict[str, int] = {}
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle, delimiter="\t")
        next(reader, None)
        for row in reader:
            if len(row) < 3 or not row[2].strip().isdigit():
                continue
            name = row[0].strip()
            if not name:
                continue
            rows[name] = max(rows.get(name, 0), int(row[2]))
    ranked = sorted(rows.items(), key=lambda item: (-item[1], item[0]))
    return ranked[:top]


def read_pypi(path: Path, top: int = PYPI_TOP) -> list[tuple[str, int]]:
    """Return the ranked PyPI names (rank <= ``top``), best rank first, one per PEP 503 name."""
    best: dict[str, tuple[int, str]] = {}
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle, delimiter="\t")
        next(reader, None)
        for row in reader:
            if len(row) < 4 or not row[3].strip().isdigit():
                continue
            rank = int(row[3])
            if rank > top:
                continue
            name = row[0].strip()
            key = _PEP503.sub("-", name).lower()
            if key not in best or rank < best[key][0]:
                best[key] = (rank, name)
    ranked = sorted(best.values())
    return [(name, rank) for rank, name in ranked]


def write_snapshot(rows: list[tuple[str, int]], path: Path) -> None:
    text = "".join(f"{name}\t{value}\n" for name, value in rows)
    buffer = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buffer, mtime=0, compresslevel=9) as gz:
        gz.write(text.encode("utf-8"))
    path.write_bytes(buffer.getvalue())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--npm", type=Path, required=True, help="npm.tsv download statistics")
    parser.add_argument("--pypi", type=Path, required=True, help="pypi.tsv download ranks")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent)
    parser.add_argument("--npm-top", type=int, default=NPM_TOP)
    parser.add_argument("--pypi-top", type=int, default=PYPI_TOP)
    args = parser.parse_args(argv)
    npm = read_npm(args.npm, args.npm_top)
    pypi = read_pypi(args.pypi, args.pypi_top)
    args.out.mkdir(parents=True, exist_ok=True)
    write_snapshot(npm, args.out / "npm.tsv.gz")
    write_snapshot(pypi, args.out / "pypi.tsv.gz")
    print(
        f"npm: {len(npm)} names (min {npm[-1][1]} downloads/month); pypi: {len(pypi)} names", file=sys.stderr
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
