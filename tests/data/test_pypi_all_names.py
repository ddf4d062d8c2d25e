"""The shipped list of every PyPI name (``data/names/pypi-all.txt.xz``) has its documented shape.

``data/names/generate.py`` documents it: every PyPI project name of the source list, one per line,
PEP 503 normalised, distinct, sorted by code point, xz with fixed settings, so that regenerating
from the same list is a no-op diff. These tests check the shipped file without the source list
(which lives outside the repository), and the generator's pieces on small inputs.
"""

from __future__ import annotations

import gzip
import lzma
import re
from pathlib import Path

import pytest

from typostream.data.names import PYPI_ALL_FILE, iter_pypi_all, pypi_all_names
from typostream.data.names.generate import pypi_all, write_lines_xz

# 886,323 names in the Dec 2026 list; PyPI grows by ~10 % a year, so a regenerated list may be larger.
MIN_NAMES, MAX_NAMES = 850_000, 1_500_000
PEP503 = re.compile(r"[-_.]+")


@pytest.fixture(scope="module")
def names() -> list[str]:
    return pypi_all_names()


def test_shipped_file_is_a_few_megabytes_of_xz() -> None:
    size = PYPI_ALL_FILE.stat().st_size
    assert 2_000_000 <= size <= 6_000_000, f"{PYPI_ALL_FILE.name}: {size:,} bytes"
    head = PYPI_ALL_FILE.read_bytes()[:12]
    assert head[:6] == b"\xfd7zXZ\x00", "not an xz stream"
    assert head[7] == lzma.CHECK_CRC64, "stream flags: the generator writes CRC64 checks"


def test_count_sorted_unique_pep503_normalised(names: list[str]) -> None:
    assert MIN_NAMES <= len(names) <= MAX_NAMES, len(names)
    assert names == sorted(names), "not sorted by code point"
    assert len(set(names)) == len(names), "duplicates"
    bad = [n for n in names if PEP503.sub("-", n).lower() != n or not n or n != n.strip()]
    assert bad == [], f"{len(bad)} names not PEP 503 normalised, e.g. {bad[:5]}"
    # PyPI project names: ASCII letters, digits and separators, starting and ending alphanumeric.
    odd = [n for n in names if not re.fullmatch(r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?", n)]
    assert odd == [], f"{len(odd)} names outside PyPI's name rule, e.g. {odd[:5]}"
    for known in ("requests", "django", "numpy", "typing-extensions", "zope-interface"):
        assert known in set(names), known


def test_regenerating_from_the_shipped_names_gives_the_same_bytes(names: list[str], tmp_path: Path) -> None:
    """What makes a regeneration a no-op diff: the same names compress to the same bytes (~8 s)."""
    out = tmp_path / PYPI_ALL_FILE.name
    write_lines_xz(out, names)
    assert out.read_bytes() == PYPI_ALL_FILE.read_bytes(), (
        "re-compressing the shipped names gave other bytes: the settings of write_lines_xz changed, "
        "or this liblzma encodes differently from the one that wrote the file"
    )


def test_generator_normalises_merges_and_sorts(tmp_path: Path) -> None:
    source = tmp_path / "pypi.tsv"
    rows = ["Zope.Interface", "typing_extensions", "Typing-Extensions", "a__b..c", "0", "requests"]
    source.write_text("name\tversion\n" + "".join(f"{n}\t1.0\n" for n in rows) + "\t2.0\n")
    every, read, changed = pypi_all(source)
    assert every == ["0", "a-b-c", "requests", "typing-extensions", "zope-interface"]
    assert (read, changed) == (6, 4)
    out = tmp_path / "all.txt.xz"
    write_lines_xz(out, every)
    first = out.read_bytes()
    write_lines_xz(out, every)
    assert out.read_bytes() == first
    assert list(iter_pypi_all(out)) == every


def test_loader_reads_plain_and_gzip_and_names_a_broken_file(tmp_path: Path) -> None:
    plain = tmp_path / "names.txt"
    plain.write_text("a\n\nb\n")
    assert list(iter_pypi_all(plain)) == ["a", "b"]
    gz = tmp_path / "names.txt.gz"
    gz.write_bytes(gzip.compress(b"a\nb\n", mtime=0))
    assert list(iter_pypi_all(gz)) == ["a", "b"]

    truncated = tmp_path / "names.txt.xz"
    truncated.write_bytes(PYPI_ALL_FILE.read_bytes()[:4096])
    with pytest.raises(ValueError, match=r"names\.txt\.xz: corrupt or truncated"):
        list(iter_pypi_all(truncated))
    with pytest.raises(FileNotFoundError, match=r"missing\.txt\.xz: no such name list .*generate\.py"):
        list(iter_pypi_all(tmp_path / "missing.txt.xz"))
