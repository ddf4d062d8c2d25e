"""The popular snapshots hold exactly what their generator selects from its source lists.

The source lists live outside the repository (the generator takes their paths as arguments), so
the check at test time reads what the repository ships:

* ``data/popular/sources.json``, written by ``data/popular/generate.py`` next to the snapshots:
  per registry, how many names the source selects (PyPI: every ranked row; npm: the top by
  downloads) and the SHA-256 of their sorted, normalised keys. The generator computes that
  selection with a reader of its own (plain tab split of every line, no csv module) and refuses
  to write a snapshot that differs from it; this test re-checks the shipped snapshot against it.
* ``data/names/npm.tsv.gz`` (every npm name with its downloads): the npm snapshot is recomputed
  from it outright. ``data/names/pypi.tsv.gz`` holds unranked PyPI names only: none may be in the
  PyPI snapshot.
"""

from __future__ import annotations

import gzip
import hashlib
import json
from pathlib import Path

import pytest

from typostream.agents.domain.detection.names import normalize
from typostream.agents.domain.detection.popular import load_popular
from typostream.data.names import iter_npm_downloads, iter_pypi_unranked
from typostream.data.popular import SNAPSHOT_DIR
from typostream.data.popular.generate import (
    SOURCES_FILE,
    SnapshotMismatchError,
    keys_digest,
    main,
    read_npm,
    read_pypi,
    selected_keys,
)

PYPI_HEADER = "name\tversion\tmonth\trank_among_15000_most_downloaded\tsummary\n"
NPM_HEADER = "name\tversion\tdownloads_a_month\tsummary\n"


def _write(path: Path, header: str, rows: list[str]) -> Path:
    path.write_text(header + "".join(row + "\n" for row in rows), encoding="utf-8")
    return path


@pytest.fixture
def quoted_pypi(tmp_path: Path) -> Path:
    """A source list whose free-text column opens a quote that a csv reader never closes."""
    return _write(
        tmp_path / "pypi.tsv",
        PYPI_HEADER,
        [
            'ipytest\t0.14\t2025-01\t40\t"Pytest in IPython notebooks',
            "pytest\t8.3\t2025-01\t30\tsimple powerful testing with Python",
            "pymemcache\t4.0\t2025-01\t55\tA comprehensive memcached client",
            'Some_Name\t1.0\t2025-01\t70\tsays "hi',
            "unranked-thing\t0.1\t2025-01\t\tnot ranked",
            "requests\t2.32\t2025-01\t4\tHTTP for Humans",
        ],
    )


def test_reader_keeps_rows_after_an_unbalanced_quote(quoted_pypi: Path) -> None:
    """The defect: csv quoting swallowed every row up to the next quote (pytest, pymemcache)."""
    rows = read_pypi(quoted_pypi)
    assert [name for name, _ in rows] == ["requests", "pytest", "ipytest", "pymemcache", "Some_Name"]
    assert dict(rows)["pytest"] == 30


def test_npm_reader_keeps_rows_after_an_unbalanced_quote(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "npm.tsv",
        NPM_HEADER,
        ['opens\t1.0.0\t10\t"a quote', "lodash\t4.17.21\t1000\tutilities", "quoted\t1.0.0\t900\tx"],
    )
    assert read_npm(path, top=2) == [("lodash", 1000), ("quoted", 900)]


def test_selected_keys_are_normalised_and_independent_of_the_reader(quoted_pypi: Path) -> None:
    assert selected_keys(quoted_pypi, "pypi", 15_000) == {
        "ipytest",
        "pytest",
        "pymemcache",
        "some-name",
        "requests",
    }


def test_generator_writes_snapshots_and_their_source_digests(tmp_path: Path, quoted_pypi: Path) -> None:
    npm = _write(tmp_path / "npm.tsv", NPM_HEADER, ["lodash\t4\t1000\tx", 'react\t18\t2000\t"y'])
    out = tmp_path / "out"
    assert main(["--npm", str(npm), "--pypi", str(quoted_pypi), "--out", str(out)]) == 0
    sources = json.loads((out / SOURCES_FILE).read_text())
    assert sources["pypi"]["names"] == 5 and sources["npm"]["names"] == 2
    assert sources["pypi"]["source"] == "pypi.tsv"  # a file name, never the machine's path
    with gzip.open(out / "pypi.tsv.gz", "rt", encoding="utf-8") as handle:
        names = [line.split("\t")[0] for line in handle]
    assert sources["pypi"]["sha256"] == keys_digest(normalize(n, "pypi") for n in names)


def test_generator_refuses_a_snapshot_that_lost_ranked_names(
    tmp_path: Path, quoted_pypi: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A reader that drops rows again is caught when the snapshot is written, not in production."""
    import typostream.data.popular.generate as generate

    npm = _write(tmp_path / "npm.tsv", NPM_HEADER, ["lodash\t4\t1000\tx"])
    monkeypatch.setattr(generate, "read_pypi", lambda path, top: [("requests", 4)])
    assert main(["--npm", str(npm), "--pypi", str(quoted_pypi), "--out", str(tmp_path / "out")]) == 2
    assert "pypi snapshot differs" in capsys.readouterr().err
    with pytest.raises(SnapshotMismatchError, match=r"4 missing .*pytest"):
        generate._check("pypi", [("requests", 4)], selected_keys(quoted_pypi, "pypi", 15_000))
    assert not (tmp_path / "out" / "pypi.tsv.gz").exists()


@pytest.mark.parametrize("registry", ["npm", "pypi"])
def test_shipped_snapshot_holds_every_selected_name_of_its_source(registry: str) -> None:
    sources = json.loads((SNAPSHOT_DIR / SOURCES_FILE).read_text(encoding="utf-8"))[registry]
    keys = [normalize(row.name, registry) for row in load_popular(registry)]
    assert len(keys) == len(set(keys)) == sources["names"]
    assert keys_digest(keys) == sources["sha256"]


def test_pypi_snapshot_has_the_top_names_it_used_to_lose() -> None:
    keys = {normalize(row.name, "pypi"): row for row in load_popular("pypi")}
    assert {"pytest", "pymemcache"} <= keys.keys()
    assert keys["pytest"].popularity == 30  # the source's rank


def test_npm_snapshot_is_the_top_of_the_shipped_npm_list() -> None:
    """``data/names/npm.tsv.gz`` carries every npm name's downloads: recompute the selection."""
    best: dict[str, int] = {}
    for name, downloads in iter_npm_downloads():
        best[name] = max(best.get(name, 0), downloads)
    top = sorted(best.items(), key=lambda item: (-item[1], item[0]))[: len(load_popular("npm"))]
    assert [(row.name, row.popularity) for row in load_popular("npm")] == top


def test_pypi_snapshot_and_the_unranked_sample_are_disjoint() -> None:
    ranked = {normalize(row.name, "pypi") for row in load_popular("pypi")}
    assert not ranked & {normalize(name, "pypi") for name in iter_pypi_unranked()}


def test_digest_is_order_free() -> None:
    assert keys_digest(["b", "a"]) == keys_digest(["a", "b"]) == hashlib.sha256(b"a\nb\n").hexdigest()


@pytest.mark.parametrize("name", ["pytest", "pymemcache"])
def test_top_pypi_names_are_not_flagged(name: str, detector) -> None:
    """``pytest`` (rank 30) was missing from the snapshot and flagged as a squat of ``ipytest``."""
    assert detector.scan(name, "pypi").verdict == "clean"
