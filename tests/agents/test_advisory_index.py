"""The on-disk advisory index: sync from real OSV sources (checkout, git, zip), incremental updates,
withdrawals, bad files, crash safety, generations swapped in while serving. Real SQLite, files, git."""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import zipfile
from pathlib import Path
from typing import Any

import pytest

from typostream.agents.adapters.advisory_index import (
    SCHEMA_VERSION,
    AdvisoryIndex,
    LiveAdvisoryIndex,
    _git_blobs,
    git_blob_id,
    index_path,
    read_status,
    sync,
)
from typostream.agents.domain.advisories import KnownMalicious
from typostream.agents.domain.errors import AdvisoryFileError, AdvisoryIndexError

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "osv"
CHECKOUT = FIXTURES / "malicious-packages"  # real advisories, see tests/fixtures/osv/SOURCES.md
PLEX = "osv/malicious/npm/@ctrl/plex/MAL-2026-4377.json"
WITHDRAWN_PLEX = FIXTURES / "withdrawn" / "MAL-2026-4377.json"

QUERIES = [
    ("npm", "0-dns", None),
    ("npm", "0-dns", "1.0.0"),
    ("npm", "000webhost-admin", "999.9.9"),
    ("npm", "000webhost-admin", "1.0.0"),
    ("npm", "@ctrl/tinycolor", "4.1.2"),
    ("npm", "@CTRL/TinyColor", None),
    ("npm", "@ctrl/plex", "6.0.0"),
    ("npm", "@ctrl/plex", "v6.0.0"),
    ("npm", "@ctrl/plex", "6.0.1"),
    ("npm", "@ctrl/plex", None),
    ("pypi", "123bla", "0.0.1"),
    ("pypi", "123BLA", "0.0.1.0"),
    ("pypi", "123bla", "0.0.2"),
    ("npm", "123bla", "0.0.1"),
    ("npm", "react", "18.0.0"),
]


def checkout(tmp_path: Path, name: str = "checkout") -> Path:
    """A writable copy of the fixture checkout of ossf/malicious-packages."""
    return Path(shutil.copytree(CHECKOUT, tmp_path / name))


def indexed(directory: Path) -> KnownMalicious:
    """What scan and the worker use: no in-memory advisories, only the index."""
    return KnownMalicious(sources=[LiveAdvisoryIndex(index_path(directory), refresh_s=0)])


def answers(known: KnownMalicious, queries: list[tuple[str, str, str | None]] = QUERIES) -> list[Any]:
    return [[(m.advisory_id, m.all_versions, m.detail) for m in known.lookup(*q)] for q in queries]


def osv(advisory_id: str, ecosystem: str, name: str, **affected: Any) -> dict[str, Any]:
    return {
        "id": advisory_id,
        "summary": f"Malicious code in {name} ({ecosystem})",
        "affected": [{"package": {"ecosystem": ecosystem, "name": name}, **affected}],
    }


def write(path: Path, doc: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=2))
    return path


# --- building ----------------------------------------------------------------------------------------
def test_sync_of_a_malicious_packages_checkout_answers_like_the_in_memory_loader(tmp_path: Path) -> None:
    report = sync(CHECKOUT, tmp_path / "idx")
    assert (report.kind, report.files, report.added, report.advisories, report.packages) == (
        "malicious-packages", 5, 5, 5, 5,
    )  # fmt: skip
    assert report.generation == 1 and not report.invalid and report.size_bytes > 0
    in_memory = KnownMalicious.from_paths([CHECKOUT / "osv" / "malicious"])
    assert answers(indexed(tmp_path / "idx")) == answers(in_memory)
    assert answers(indexed(tmp_path / "idx"))[:5] == [
        [("MAL-2022-9", True, "all versions")],
        [("MAL-2022-9", True, "all versions")],
        [("MAL-2024-11848", False, "version 999.9.9 listed")],
        [],
        [("MAL-2025-47141", True, "all versions")],
    ]


def test_osv_range_semantics_are_the_in_memory_ones(tmp_path: Path) -> None:
    """Bounded ranges (SEMVER, PEP 440 ECOSYSTEM), limits, unorderable bounds: one evaluation."""
    tree = tmp_path / "tree"
    write(tree / "a.json", osv("R-1", "npm", "r", ranges=[
        {"type": "SEMVER", "events": [{"fixed": "3.2.5"}, {"introduced": "3.0.0"}, {"introduced": "1.0.0"},
                                      {"fixed": "1.0.2"}]},
    ]))  # fmt: skip
    write(tree / "b.json", osv("R-2", "PyPI", "Py_R", ranges=[
        {"type": "ECOSYSTEM", "events": [{"introduced": "1.0"}, {"last_affected": "1.10"}, {"limit": "2"}]},
    ]))  # fmt: skip
    write(tree / "c.json", [osv("R-3", "npm", "r", ranges=[
        {"type": "SEMVER", "events": [{"introduced": "0"}, {"fixed": "not-a-version"}]},
    ], versions=["9.0.0"])])  # fmt: skip
    sync(tree, tmp_path / "idx")
    queries = [
        ("npm", "r", v) for v in ("0.5.0", "1.0.1", "1.0.2", "3.2.4", "3.2.5", "9.0.0", "latest", None)
    ]
    queries += [("pypi", "py-r", v) for v in ("0.9", "1.0", "1.10", "1.10.post1", "1.11", "2.0", "x")]
    assert answers(indexed(tmp_path / "idx"), queries) == answers(KnownMalicious.from_paths([tree]), queries)
    assert [m.detail for m in indexed(tmp_path / "idx").lookup("npm", "r", "1.0.1")] == [
        "version 1.0.1 in range <3.2.5, >=3.0.0, >=1.0.0, <1.0.2",  # events as given
        "range >=0, <not-a-version cannot be ordered; taken to cover version 1.0.1",
    ]


def test_the_seed_and_memory_paths_combine_with_the_index(tmp_path: Path) -> None:
    sync(CHECKOUT, tmp_path / "idx")
    extra = write(tmp_path / "extra.json", osv("EXTRA-1", "npm", "0-dns", versions=["2.0.0"]))
    live = LiveAdvisoryIndex(index_path(tmp_path / "idx"))
    known = KnownMalicious.from_paths([KnownMalicious.seed_path(), extra], sources=[live])
    assert [m.advisory_id for m in known.lookup("npm", "0-dns", "2.0.0")] == ["MAL-2022-9", "EXTRA-1"]
    assert known.lookup("npm", "crossenv", "6.1.1")[0].advisory_id.startswith("TYPOSTREAM-SEED-")


# --- incremental --------------------------------------------------------------------------------------
def test_resync_rereads_only_changed_files_and_drops_withdrawn_ones(tmp_path: Path) -> None:
    tree, idx = checkout(tmp_path), tmp_path / "idx"
    sync(tree, idx)
    again = sync(tree, idx)
    assert (again.unchanged, again.changes, again.generation) == (5, 0, 1)

    # An unchanged stamp means the file is not read at all: garbage of the same size, mtime restored.
    admin = tree / "osv/malicious/npm/000webhost-admin/MAL-2024-11848.json"
    st = admin.stat()
    admin.write_bytes(b"x" * st.st_size)
    os.utime(admin, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert sync(tree, idx).unchanged == 5
    assert indexed(idx).lookup("npm", "000webhost-admin", "999.9.9")
    shutil.copy2(CHECKOUT / admin.relative_to(tree), admin)

    # Touched, same content: read, compared by blob id, not re-parsed.
    os.utime(tree / PLEX, (1, 1))
    touched = sync(tree, idx)
    assert (touched.unchanged, touched.changes, touched.generation) == (5, 0, 1)

    # Upstream withdraws a false positive in place (the `withdrawn` field) ...
    shutil.copyfile(WITHDRAWN_PLEX, tree / PLEX)
    withdrawn = sync(tree, idx)
    assert (withdrawn.changed, withdrawn.unchanged, withdrawn.advisories, withdrawn.generation) == (
        1,
        4,
        4,
        2,
    )
    assert indexed(idx).lookup("npm", "@ctrl/plex", "6.0.0") == []
    # ... or moves it to osv/withdrawn/ (outside the indexed folder): its records go with the file.
    shutil.copyfile(CHECKOUT / PLEX, tree / PLEX)
    assert sync(tree, idx).changed == 1 and indexed(idx).lookup("npm", "@ctrl/plex", "6.0.0")
    (tree / PLEX).unlink()
    shutil.copyfile(WITHDRAWN_PLEX, write(tree / "osv/withdrawn/npm/@ctrl/plex/MAL-2026-4377.json", {}))
    moved = sync(tree, idx)
    assert (moved.removed, moved.files, moved.advisories) == (1, 4, 4)
    assert indexed(idx).lookup("npm", "@ctrl/plex", "6.0.0") == []

    # A new advisory for a package already known, and a changed one.
    write(
        tree / "osv/malicious/npm/0-dns/MAL-2099-1.json",
        osv("MAL-2099-1", "npm", "0-dns", versions=["1.2.3"]),
    )
    tiny = tree / "osv/malicious/npm/@ctrl/tinycolor/MAL-2025-47141.json"
    doc = json.loads(tiny.read_text())
    doc["affected"][0]["ranges"] = [
        {"type": "SEMVER", "events": [{"introduced": "4.1.1"}, {"fixed": "4.1.3"}]}
    ]
    write(tiny, doc)
    update = sync(tree, idx)
    assert (update.added, update.changed, update.removed, update.unchanged) == (1, 1, 0, 3)
    known = indexed(idx)
    assert [m.advisory_id for m in known.lookup("npm", "0-dns", "1.2.3")] == ["MAL-2022-9", "MAL-2099-1"]
    assert known.lookup("npm", "@ctrl/tinycolor", "4.1.3") == [] and known.lookup(
        "npm", "@ctrl/tinycolor", "4.1.2"
    )
    with sqlite3.connect(index_path(idx)) as conn:  # no orphans left by replaced or removed files
        orphans = conn.execute("SELECT COUNT(*) FROM records WHERE file_id NOT IN (SELECT id FROM files)")
        assert orphans.fetchone()[0] == 0
        assert conn.execute("SELECT COUNT(*) FROM records").fetchone()[0] == update.records == 5


def test_bad_files_are_reported_and_lose_nothing(tmp_path: Path) -> None:
    tree, idx = checkout(tmp_path), tmp_path / "idx"
    sync(tree, idx)
    (tree / "osv/malicious/npm/broken/MAL-2099-2.json").parent.mkdir(parents=True)
    (tree / "osv/malicious/npm/broken/MAL-2099-2.json").write_text('{"id": "MAL-2099-2", ')
    (tree / PLEX).write_text("{ not json")  # an indexed file goes bad: its records stay
    report = sync(tree, idx)
    assert sorted(path for path, _ in report.invalid) == [
        "npm/@ctrl/plex/MAL-2026-4377.json",
        "npm/broken/MAL-2099-2.json",
    ]
    assert all(reason.startswith("not JSON") for _, reason in report.invalid)
    assert (report.advisories, report.unchanged) == (5, 4)
    assert indexed(idx).lookup("npm", "@ctrl/plex", "6.0.0")
    status = read_status(idx)
    assert status is not None and status.invalid == 2
    shutil.copyfile(CHECKOUT / PLEX, tree / PLEX)  # fixed: retried because its stamp was not recorded
    (tree / "osv/malicious/npm/broken/MAL-2099-2.json").unlink()
    fixed = sync(tree, idx)
    assert (fixed.invalid, fixed.unchanged) == ([], 5)


def test_a_missing_or_unopenable_source_changes_nothing(tmp_path: Path) -> None:
    idx = tmp_path / "idx"
    sync(CHECKOUT, idx)
    before = index_path(idx).read_bytes()
    with pytest.raises(AdvisoryFileError, match="no such advisory source"):
        sync(tmp_path / "missing", idx)
    two = tmp_path / "two.zip"
    with zipfile.ZipFile(two, "w") as archive:
        archive.writestr("a/osv/malicious/npm/x/M-1.json", json.dumps(osv("M-1", "npm", "x", versions=["1"])))
        archive.writestr("b/osv/malicious/npm/y/M-2.json", json.dumps(osv("M-2", "npm", "y", versions=["1"])))
    with pytest.raises(AdvisoryFileError, match="several osv/malicious folders"):
        sync(two, idx)
    assert index_path(idx).read_bytes() == before
    assert sorted(p.name for p in idx.iterdir()) == ["index.sqlite", "sync.lock"]


# --- git checkouts and zips ---------------------------------------------------------------------------
def git(root: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@t"}  # fmt: skip
    return subprocess.run(
        ["git", "-C", str(root), *args], check=True, capture_output=True, text=True, env=env
    ).stdout


def test_git_checkout_blob_ids_spare_reading_unmodified_files(tmp_path: Path) -> None:
    repo = checkout(tmp_path, "repo")
    git(repo, "init", "-q")
    git(repo, "add", ".")
    git(repo, "commit", "-qm", "advisories")
    root = repo / "osv" / "malicious"
    blobs = _git_blobs(root)
    assert sorted(blobs) == sorted(p.relative_to(root).as_posix() for p in root.rglob("*.json"))
    assert all(blob == git_blob_id((root / path).read_bytes()) for path, blob in blobs.items())
    (root / PLEX.removeprefix("osv/malicious/")).write_text("{}")  # modified in the work tree
    assert PLEX.removeprefix("osv/malicious/") not in _git_blobs(root)
    git(repo, "checkout", "-q", "--", ".")
    assert _git_blobs(tmp_path) == {}  # not a work tree

    idx = tmp_path / "idx"
    assert sync(repo, idx).added == 5
    clone = tmp_path / "clone"  # a fresh clone: every mtime new, every blob the same
    subprocess.run(["git", "clone", "-q", str(repo), str(clone)], check=True)
    again = sync(clone, idx)
    assert (again.unchanged, again.changes, again.generation) == (5, 0, 1)
    assert answers(indexed(idx)) == answers(KnownMalicious.from_paths([root]))


def test_github_archive_zip_and_plain_zip(tmp_path: Path) -> None:
    """GitHub's archive of the repository (what deploy/advisories_sync.py downloads) is read in place."""
    archive_path = tmp_path / "main.zip"
    with zipfile.ZipFile(archive_path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("malicious-packages-main/README.md", "# OpenSSF Malicious Packages")
        for path in sorted(CHECKOUT.rglob("*.json")):
            archive.write(path, "malicious-packages-main/" + path.relative_to(CHECKOUT).as_posix())
        archive.write(
            WITHDRAWN_PLEX, "malicious-packages-main/osv/withdrawn/npm/@ctrl/other/MAL-2026-4377.json"
        )
        archive.writestr("malicious-packages-main/osv/withdrawn/npm/z/MAL-2099-9.json",
                         json.dumps(osv("MAL-2099-9", "npm", "z", versions=["1.0.0"])))  # fmt: skip
    idx = tmp_path / "idx"
    report = sync(archive_path, idx)
    assert (report.kind, report.files, report.advisories) == ("malicious-packages zip", 5, 5)
    assert indexed(idx).lookup("npm", "z", "1.0.0") == []  # osv/withdrawn/ is not read
    assert answers(indexed(idx)) == answers(KnownMalicious.from_paths([CHECKOUT / "osv" / "malicious"]))
    # the same files from a directory: other stamps, same blobs, nothing re-parsed
    switched = sync(CHECKOUT, idx)
    assert (switched.unchanged, switched.changes, switched.generation) == (5, 0, 1)

    flat = tmp_path / "all.zip"  # an osv.dev-style export: flat files
    with zipfile.ZipFile(flat, "w") as archive:
        archive.writestr("MAL-1.json", json.dumps(osv("MAL-1", "PyPI", "Flat_Pkg", versions=["1.0"])))
        archive.writestr("bad.json", b"\xff\xfe")
    flat_report = sync(flat, tmp_path / "flat")
    assert (flat_report.kind, flat_report.advisories, [p for p, _ in flat_report.invalid]) == (
        "zip",
        1,
        ["bad.json"],
    )
    assert indexed(tmp_path / "flat").lookup("pypi", "flat-pkg", "1.0.0")


# --- publishing and reading ------------------------------------------------------------------------
def test_a_killed_sync_leaves_the_published_index_whole(tmp_path: Path) -> None:
    tree, idx = tmp_path / "tree", tmp_path / "idx"
    for n in range(6000):
        write(tree / f"npm/p{n}/MAL-{n}.json", osv(f"MAL-{n}", "npm", f"p{n}", versions=["1.0.0"]))
    sync(CHECKOUT, idx)
    before = index_path(idx).read_bytes()
    code = f"from typostream.agents.adapters.advisory_index import sync; sync({str(tree)!r}, {str(idx)!r})"
    child = subprocess.Popen([sys.executable, "-c", code])
    deadline = time.monotonic() + 60
    while not list(idx.glob(".index-*.tmp")) and time.monotonic() < deadline and child.poll() is None:
        time.sleep(0.001)
    time.sleep(0.05)
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    assert child.returncode == -signal.SIGKILL, "the sync finished before it could be killed"
    assert index_path(idx).read_bytes() == before
    assert answers(indexed(idx)) == answers(KnownMalicious.from_paths([CHECKOUT]))
    report = sync(tree, idx)  # the next sync removes the leftover and completes
    assert report.advisories == 6000 and not list(idx.glob(".index-*.tmp"))


def test_concurrent_syncs_are_serialised(tmp_path: Path) -> None:
    idx = tmp_path / "idx"
    reports: list[Any] = []
    threads = [threading.Thread(target=lambda: reports.append(sync(CHECKOUT, idx))) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted((r.added, r.unchanged, r.generation) for r in reports) == [(0, 5, 1), (0, 5, 1), (5, 0, 1)]


def test_live_index_swaps_in_new_generations_without_restart(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    tree, idx = checkout(tmp_path), tmp_path / "idx"
    now = [0.0]
    live = LiveAdvisoryIndex(index_path(idx), refresh_s=5, clock=lambda: now[0])
    known = KnownMalicious(sources=[live])
    assert live.generation is None and known.lookup("npm", "0-dns", "1.0.0") == []  # not synced yet
    sync(tree, idx)
    assert known.lookup("npm", "0-dns", "1.0.0") == []  # checked at most every refresh_s
    now[0] = 5.0
    assert known.lookup("npm", "0-dns", "1.0.0") and live.generation == 1
    first = live.current

    (tree / PLEX).unlink()
    sync(tree, idx)
    now[0] = 7.0
    assert known.lookup("npm", "@ctrl/plex", "6.0.0")  # generation 1 until the next check
    now[0] = 10.0
    assert known.lookup("npm", "@ctrl/plex", "6.0.0") == [] and live.generation == 2
    assert first is not None and first._closed  # the replaced generation is released

    # a damaged new file is not swapped in: the current generation keeps answering
    junk = idx / "junk"
    junk.write_bytes(b"not a database" * 100)
    os.replace(junk, index_path(idx))
    now[0] = 20.0
    with caplog.at_level(logging.ERROR, "typostream.advisories"):
        assert known.lookup("npm", "0-dns", "1.0.0") and live.generation == 2
    assert "unreadable" in caplog.text and "keeping generation 2" in caplog.text
    with pytest.raises(AdvisoryIndexError, match="unreadable"):
        LiveAdvisoryIndex(index_path(idx))  # at start-up a damaged index is an error, not "no advisories"
    rebuilt = sync(tree, idx)
    assert rebuilt.rebuilt.startswith("unreadable index") and rebuilt.advisories == 4
    now[0] = 30.0
    assert known.lookup("npm", "0-dns", "1.0.0") and live.generation == rebuilt.generation


def test_lookups_during_swaps_from_many_threads(tmp_path: Path) -> None:
    tree, idx = checkout(tmp_path), tmp_path / "idx"
    sync(tree, idx)
    live = LiveAdvisoryIndex(index_path(idx), refresh_s=0)
    known = KnownMalicious(sources=[live])
    errors: list[BaseException] = []
    stop = threading.Event()

    def look() -> None:
        n = 0
        while not stop.is_set():
            n += 1
            try:  # a name never asked before: a query on the connection, not the cache
                assert known.lookup("npm", f"miss-{threading.get_ident()}-{n}", "1.0.0") == []
                assert known.lookup("npm", "0-dns", "1.0.0")[0].advisory_id == "MAL-2022-9"
            except BaseException as exc:  # reported below
                errors.append(exc)
                return

    threads = [threading.Thread(target=look) for _ in range(4)]
    for thread in threads:
        thread.start()
    for n in range(30):
        write(tree / f"osv/malicious/npm/x{n}/MAL-{n}.json", osv(f"MAL-{n}", "npm", f"x{n}", versions=["1"]))
        sync(tree, idx)
    stop.set()
    for thread in threads:
        thread.join()
    assert errors == []
    assert live.generation == 31 and known.lookup("npm", "x29", "1")


def test_another_format_version_is_rebuilt_by_sync_and_refused_by_readers(tmp_path: Path) -> None:
    idx = tmp_path / "idx"
    sync(CHECKOUT, idx)
    with sqlite3.connect(index_path(idx)) as conn:
        conn.execute("UPDATE meta SET value = '0' WHERE key = 'schema'")
    with pytest.raises(AdvisoryIndexError, match=f"format version '0', this version reads {SCHEMA_VERSION}"):
        AdvisoryIndex(index_path(idx))
    report = sync(CHECKOUT, idx)
    assert report.rebuilt.startswith("format version 0") and report.added == 5
    assert AdvisoryIndex(index_path(idx)).records("npm", "0-dns")


def test_status(tmp_path: Path) -> None:
    assert read_status(tmp_path / "idx") is None
    sync(CHECKOUT, tmp_path / "idx", clock=lambda: 1_000_000.0)
    status = read_status(tmp_path / "idx")
    assert status is not None
    assert (status.advisories, status.packages, status.files, status.generation) == (5, 5, 5, 1)
    assert (status.source, status.source_kind) == (str(CHECKOUT), "malicious-packages")
    assert status.size_bytes == index_path(tmp_path / "idx").stat().st_size
    assert status.age_s(now=1_000_060.0) == 60.0 and status.synced_at == status.changed_at == 1_000_000.0
    sync(CHECKOUT, tmp_path / "idx", clock=lambda: 1_000_100.0)  # no change: synced, not changed
    later = read_status(tmp_path / "idx")
    assert later is not None and (later.synced_at, later.changed_at) == (1_000_100.0, 1_000_000.0)
    assert later.last_sync["unchanged"] == 5
