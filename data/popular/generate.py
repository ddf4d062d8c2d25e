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

The lists are read line by line, split on tabs, with no quoting: their last column is free text,
and a summary that opens a ``"`` made a csv reader swallow every following row up to the next
quote (129 of the 14,985 ranked PyPI names were lost that way, ``pytest`` among them).

Next to the snapshots the generator writes ``sources.json``: per registry, the number of names the
source selects and the SHA-256 of their sorted normalised keys (:func:`keys_digest`), computed by
:func:`selected_keys`, a second, deliberately simple reading of the same list. It refuses to write
snapshots that differ from that selection (:class:`SnapshotMismatchError`), and the tests check the
shipped snapshots against ``sources.json`` without needing the source lists.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import re
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path

NPM_TOP = 20_000
PYPI_TOP = 15_000
SOURCES_FILE = "sources.json"
_PEP503 = re.compile(r"[-_.]+")

__all__ = [
    "SOURCES_FILE",
    "SnapshotMismatchError",
    "keys_digest",
    "main",
    "read_npm",
    "read_pypi",
    "selected_keys",
]


class SnapshotMismatchError(ValueError):
    """The snapshot about to be written does not hold exactly the names its source selects.

    A plain ``ValueError``: this module is in the data layer, below ``agents.domain.errors``
    (``tests/test_layers.py``); :func:`main` turns it into one ``error:`` line and exit status 2.
    """


def _normalize(name: str, registry: str) -> str:
    key = name.strip().lower()
    return _PEP503.sub("-", key) if registry == "pypi" else key


def _rows(path: Path) -> Iterator[list[str]]:
    """The data rows of a tab-separated list (header skipped): one row per line, no quoting."""
    with path.open(encoding="utf-8", errors="replace") as handle:
        handle.readline()
        for line in handle:
            yield line.rstrip("\r\n").split("\t")


def read_npm(path: Path, top: int = NPM_TOP) -> list[tuple[str, int]]:
    """Return the ``top`` npm names by monthly downloads, most popular first."""
    rows: dict[str, int] = {}
    for row in _rows(path):
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
    for row in _rows(path):
        if len(row) < 4 or not row[3].strip().isdigit():
            continue
        rank = int(row[3])
        name = row[0].strip()
        if rank > top or not name:
            continue
        key = _normalize(name, "pypi")
        if key not in best or rank < best[key][0]:
            best[key] = (rank, name)
    ranked = sorted(best.values())
    return [(name, rank) for rank, name in ranked]


def selected_keys(path: Path, registry: str, top: int) -> set[str]:
    """The normalised names a snapshot of ``path`` must hold, read without :func:`read_npm` /
    :func:`read_pypi`: every PyPI line whose rank column is a number <= ``top``; the npm names
    whose downloads reach the ``top``-th largest count (ties at the cut-off broken by name)."""
    text = path.read_text(encoding="utf-8", errors="replace").split("\n")[1:]
    cells = [line.rstrip("\r").split("\t") for line in text if line.strip()]
    if registry == "pypi":
        return {
            _normalize(c[0], registry)
            for c in cells
            if len(c) >= 4 and c[0].strip() and c[3].strip().isdigit() and int(c[3]) <= top
        }
    downloads: dict[str, int] = {}
    for c in cells:
        if len(c) >= 3 and c[0].strip() and c[2].strip().isdigit():
            downloads[c[0].strip()] = max(downloads.get(c[0].strip(), 0), int(c[2]))
    order = sorted(downloads, key=lambda name: (-downloads[name], name))
    return {_normalize(name, registry) for name in order[:top]}


def keys_digest(keys: Iterable[str]) -> str:
    """SHA-256 of the sorted keys, one per line: an order-free fingerprint of a name set."""
    return hashlib.sha256("".join(f"{key}\n" for key in sorted(keys)).encode("utf-8")).hexdigest()


def _check(registry: str, rows: list[tuple[str, int]], want: set[str]) -> None:
    have = [_normalize(name, registry) for name, _ in rows]
    missing, extra = sorted(want - set(have)), sorted(set(have) - want)
    if missing or extra or len(have) != len(set(have)):
        raise SnapshotMismatchError(
            f"{registry} snapshot differs from its source's selection: {len(missing)} missing "
            f"({', '.join(missing[:10])}), {len(extra)} extra ({', '.join(extra[:10])})"
        )


def write_snapshot(rows: list[tuple[str, int]], path: Path) -> None:
    text = "".join(f"{name}\t{value}\n" for name, value in rows)
    buffer = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buffer, mtime=0, compresslevel=9) as gz:
        gz.write(text.encode("utf-8"))
    path.write_bytes(buffer.getvalue())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--npm", type=Path, required=True, help="npm.tsv download statistics")
    parser.add_argument("--pypi", type=Path, required=True, help="pypi.tsv download ranks")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent)
    parser.add_argument("--npm-top", type=int, default=NPM_TOP)
    parser.add_argument("--pypi-top", type=int, default=PYPI_TOP)
    args = parser.parse_args(argv)
    for flag, path in (("--npm", args.npm), ("--pypi", args.pypi)):
        if not path.is_file():
            parser.error(f"{flag} {path}: file not found (the registry download list)")
    npm = read_npm(args.npm, args.npm_top)
    pypi = read_pypi(args.pypi, args.pypi_top)
    sources: dict[str, dict[str, object]] = {}
    for registry, rows, source, top in (
        ("npm", npm, args.npm, args.npm_top),
        ("pypi", pypi, args.pypi, args.pypi_top),
    ):
        want = selected_keys(source, registry, top)
        try:
            _check(registry, rows, want)  # before anything is written
        except SnapshotMismatchError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        sources[registry] = {
            "source": source.name,
            "selection": f"top {top} by downloads_a_month"
            if registry == "npm"
            else f"every row ranked <= {top} (rank_among_15000_most_downloaded)",
            "names": len(want),
            "sha256": keys_digest(want),
        }
    args.out.mkdir(parents=True, exist_ok=True)
    write_snapshot(npm, args.out / "npm.tsv.gz")
    write_snapshot(pypi, args.out / "pypi.tsv.gz")
    (args.out / SOURCES_FILE).write_text(
        json.dumps(sources, indent=2, sort_keys=True) + "\n", encoding="utf-8"
    )
    print(
        f"npm: {len(npm)} names (min {npm[-1][1]} downloads/month); pypi: {len(pypi)} names", file=sys.stderr
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
