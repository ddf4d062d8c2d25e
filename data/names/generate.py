"""Regenerate the real-name samples shipped in this folder (deterministic; run from the repository root).

Usage::

    .venv/bin/python data/names/generate.py --npm NPM_TSV --pypi PYPI_TSV [--seed N] [--pypi-sample N]

    # on the development machine the lists are /usr/share/package-lists/{npm,pypi}.tsv

Source: the registry package lists kept on the development machine, outside this repository (the
same lists ``data/popular/generate.py`` reads), tab-separated with a header line:

* ``npm.tsv``:  ``name, version, downloads_a_month, summary`` (~227k npm packages).
* ``pypi.tsv``: ``name, version, month, rank_among_15000_most_downloaded, summary`` (every PyPI
  project; rank empty when unranked).

Output (compressed text with no timestamps, so regenerating from the same inputs is a no-op diff):

* ``npm.tsv.gz``: ``name<TAB>downloads_a_month`` for every npm name, sorted by name. It covers the
  benchmarks' npm populations exactly: ``false_alarms.py`` scans the 10k-100k downloads band and
  ``speed.py --registry npm`` samples every non-popular name.
* ``pypi.tsv.gz``: ``name``, a seeded random sample (``--seed``) of ``--pypi-sample`` distinct
  unranked names, sorted by name; ``false_alarms.py`` draws its 20,000 names from it and
  ``speed.py`` its 100,000 non-popular names.
* ``pypi-all.txt.xz``: every PyPI project name of the list, one per line, no header, PEP 503
  normalised (lowercase, every run of ``-``, ``_``, ``.`` one ``-``), distinct, sorted by code point,
  UTF-8, ``\n`` after each line; xz (preset 9e, CRC64), the smaller of the two formats: 3.3 MB,
  where gzip -9 takes 4.0 MB (of 12.7 MB). The source already spells its names normalised
  (886,323 names, normalising changes none); the generator normalises anyway and says how many it
  changed and merged. ``benchmarks/replay.py`` publishes one event per name.
"""

from __future__ import annotations

import argparse
import gzip
import io
import lzma
import random
import re
import sys
from collections.abc import Iterable
from pathlib import Path

from typostream.data.names import PYPI_ALL_FILE, iter_names, iter_pypi_unranked, iter_rows

HERE = Path(__file__).resolve().parent
SEED = 20261201
PYPI_SAMPLE = 200_000


def npm_rows(path: Path) -> list[tuple[str, str]]:
    """``(name, downloads or "")`` for every distinct npm name, sorted by name."""
    out: dict[str, str] = {}
    for row in iter_rows(path):
        downloads = row.get("downloads_a_month", "").strip()
        out.setdefault(row["name"], downloads if downloads.isdigit() else "")
    return sorted(out.items())


def pypi_sample(path: Path, k: int, seed: int) -> list[str]:
    """A seeded random sample of ``k`` distinct unranked PyPI names, sorted by name."""
    names = sorted(set(iter_pypi_unranked(path)))
    return sorted(random.Random(seed).sample(names, min(k, len(names))))


def pep503(name: str) -> str:
    """The PEP 503 normalised form of a project name."""
    return re.sub(r"[-_.]+", "-", name).lower()


def pypi_all(path: Path) -> tuple[list[str], int, int]:
    """Every distinct PyPI project name, PEP 503 normalised, sorted; the rows read; how many changed."""
    names: set[str] = set()
    rows = changed = 0
    for name in iter_names(path):
        normal = pep503(name.strip())
        rows += 1
        changed += normal != name
        if normal:
            names.add(normal)
    return sorted(names), rows, changed


def write_lines_xz(path: Path, lines: Iterable[str]) -> None:
    """One line per item, xz-compressed with fixed settings (the same bytes for the same lines)."""
    data = "".join(f"{line}\n" for line in lines).encode()
    filters = [{"id": lzma.FILTER_LZMA2, "preset": 9 | lzma.PRESET_EXTREME}]
    path.write_bytes(lzma.compress(data, format=lzma.FORMAT_XZ, check=lzma.CHECK_CRC64, filters=filters))


def write_tsv_gz(path: Path, header: str, lines: Iterable[str]) -> None:
    raw = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=9) as gz:
        gz.write((header + "\n").encode())
        for line in lines:
            gz.write(line.encode() + b"\n")
    path.write_bytes(raw.getvalue())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--npm", type=Path, required=True, help="npm.tsv package list (source)")
    parser.add_argument("--pypi", type=Path, required=True, help="pypi.tsv package list (source)")
    parser.add_argument("--out", type=Path, default=HERE)
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--pypi-sample", type=int, default=PYPI_SAMPLE)
    args = parser.parse_args(argv)
    for flag, path in (("--npm", args.npm), ("--pypi", args.pypi)):
        if not path.is_file():
            parser.error(f"{flag} {path}: file not found (the registry package list to sample from)")
    npm = npm_rows(args.npm)
    pypi = pypi_sample(args.pypi, args.pypi_sample, args.seed)
    every, rows, changed = pypi_all(args.pypi)
    if not every:  # checked before anything is written: a wrong file leaves the shipped ones as they are
        parser.error(f"--pypi {args.pypi}: no names in it (a tab-separated list with a header line)")
    args.out.mkdir(parents=True, exist_ok=True)
    write_tsv_gz(args.out / "npm.tsv.gz", "name\tdownloads_a_month", (f"{n}\t{d}" for n, d in npm))
    write_tsv_gz(args.out / "pypi.tsv.gz", "name", pypi)
    print(f"npm.tsv.gz: {len(npm):,} names; pypi.tsv.gz: {len(pypi):,} unranked names", file=sys.stderr)
    target = args.out / PYPI_ALL_FILE.name
    write_lines_xz(target, every)
    print(
        f"{target.name}: {len(every):,} PyPI names of {rows:,} rows ({changed:,} changed by PEP 503"
        f" normalisation, {rows - len(every):,} merged), {target.stat().st_size:,} bytes",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
