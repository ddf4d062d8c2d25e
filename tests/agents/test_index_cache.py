"""The detector's index cache (``agents/adapters/index_cache.py``) and the index encoding it stores
(``index.dump_index``/``load_index``): hits, misses, invalidation, damage, permissions, safety."""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import shutil
import stat
from collections import Counter
from pathlib import Path

import pytest

from typostream.agents.adapters.index_cache import (
    KEEP,
    IndexCache,
    LazyIndexes,
    cache_key,
    encode,
    source_fingerprint,
)
from typostream.agents.domain.detection import Detector
from typostream.agents.domain.detection.detector import build_index
from typostream.agents.domain.detection.index import CandidateIndex, Target, dump_index, load_index
from typostream.agents.domain.detection.names import NameForms
from typostream.agents.domain.errors import IndexCacheError, InvalidInputError, UnknownRegistryError
from typostream.agents.domain.vocabulary import DETECTOR_REGISTRIES
from typostream.data.popular import SNAPSHOT_DIR

WATCHED = ("acme-internal-sdk", "@acme/billing")


def mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def cache_files(directory: Path, registry: str = "*") -> list[Path]:
    return sorted(directory.glob(f"detector-{registry}-*.bin"))


# --- the encoding ------------------------------------------------------------------------------
@pytest.mark.parametrize("registry", DETECTOR_REGISTRIES)
@pytest.mark.parametrize("watched", [(), WATCHED])
def test_an_index_reads_back_equal_with_its_targets_shared(registry: str, watched: tuple[str, ...]) -> None:
    built = build_index(registry, watched)
    loaded = load_index(dump_index(built), registry)
    assert loaded == built
    for target in loaded.by_key.values():
        assert type(target) is Target and type(target.forms) is NameForms
    # one Target object per name, referenced from every table (as in a built index)
    if watched:
        key = NameForms.of(watched[0], registry).key
        target = loaded.by_key[key]
        assert target.watched
        assert any(t is target for t in loaded.by_skeleton[target.forms.skeleton])
        assert any(t is target for t in loaded.watched_edit[target.forms.folded])


def test_a_loaded_index_scans_like_the_built_one() -> None:
    names = ["reqeusts", "requests", "acme-internal-sdc", "django-rest", "numpyy", "@acme/biling"]
    built = Detector.build_indexes(WATCHED)
    loaded = {reg: load_index(dump_index(index), reg) for reg, index in built.items()}
    expected = Detector.default(WATCHED)
    got = Detector.default(indexes=loaded)
    for registry in ("pypi", "npm"):
        for name in names:
            assert got.scan(name, registry) == expected.scan(name, registry), (registry, name)
    assert got.scan("acme-internal-sdc", "pypi").threats[0].target == "acme-internal-sdk"


class _Boom:
    """Would run if a cache file could name it: it must never be resolved."""

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, ("touch should-never-exist",))


def test_reading_never_resolves_a_function(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    for payload in (
        pickle.dumps(_Boom()),
        pickle.dumps({"registry": "pypi", "x": _Boom()}),
        pickle.dumps(pickle.loads),  # a function by name
    ):
        with pytest.raises(IndexCacheError, match=r"not index data|unreadable"):
            load_index(payload, "pypi")
    assert not (tmp_path / "should-never-exist").exists()


def test_reading_refuses_other_data(tmp_path: Path) -> None:
    index = build_index("rubygems", WATCHED)
    with pytest.raises(IndexCacheError, match="not a pypi index"):
        load_index(dump_index(index), "pypi")
    with pytest.raises(IndexCacheError, match="not a rubygems index"):
        load_index(pickle.dumps({"registry": "rubygems"}), "rubygems")
    with pytest.raises(IndexCacheError, match="unreadable"):
        load_index(dump_index(index)[:-10], "rubygems")
    broken = CandidateIndex("rubygems", by_key=[])  # type: ignore[arg-type]
    with pytest.raises(IndexCacheError, match="by_key does not hold"):
        load_index(dump_index(broken), "rubygems")
    # laid out by other code: ints where this code keeps Targets (a field moved, say)
    shifted = CandidateIndex("rubygems", by_skeleton={"acme": [1, 2]})  # type: ignore[list-item]
    with pytest.raises(IndexCacheError, match="by_skeleton does not hold"):
        load_index(dump_index(shifted), "rubygems")
    other_layout = pickle.dumps(((99, ("forms",), ("name",)), index))
    with pytest.raises(IndexCacheError, match="another version"):
        load_index(other_layout, "rubygems")


def test_writing_refuses_a_class_it_could_not_read_back() -> None:
    index = CandidateIndex("rubygems", by_key={"x": object()})  # type: ignore[dict-item]
    with pytest.raises(IndexCacheError, match="cannot store"):
        dump_index(index)


# --- the key -----------------------------------------------------------------------------------
def test_the_key_follows_every_input(tmp_path: Path) -> None:
    snapshots = tmp_path / "popular"
    shutil.copytree(SNAPSHOT_DIR, snapshots)
    key = cache_key("pypi", (), snapshots)
    assert key == cache_key("pypi", (), snapshots) == cache_key("pypi", ())
    assert cache_key("npm", (), snapshots) != key
    assert cache_key("pypi", ["acme"], snapshots) != key != cache_key("pypi", ["acme", "b"], snapshots)
    assert cache_key("pypi", ["b", "acme"], snapshots) != cache_key("pypi", ["acme", "b"], snapshots)
    (snapshots / "pypi.tsv.gz").write_bytes((snapshots / "pypi.tsv.gz").read_bytes() + b"\0")
    assert cache_key("pypi", (), snapshots) != key  # a regenerated snapshot
    assert cache_key("npm", (), snapshots) == cache_key("npm", ())  # the other registry's is kept


def test_the_code_fingerprint_follows_the_source(tmp_path: Path) -> None:
    (tmp_path / "tunables.py").write_text("MIN_TYPO_LEN = 6\n")
    (tmp_path / "techniques").mkdir()
    (tmp_path / "techniques" / "omission.py").write_text("x = 1\n")
    before = source_fingerprint(tmp_path)
    assert source_fingerprint(tmp_path) == before
    (tmp_path / "tunables.py").write_text("MIN_TYPO_LEN = 5\n")
    tuned = source_fingerprint(tmp_path)
    assert tuned != before
    (tmp_path / "techniques" / "new.py").write_text("")
    assert source_fingerprint(tmp_path) != tuned  # a new technique module


# --- the cache ---------------------------------------------------------------------------------
def test_miss_then_hit(tmp_path: Path) -> None:
    cache = IndexCache(tmp_path / "cache")
    assert cache.load("pypi") is None
    built = cache.get("pypi")
    (path,) = cache_files(tmp_path / "cache")
    assert path == cache.path("pypi", ())
    written = path.stat()
    assert mode(tmp_path / "cache") == 0o700 and mode(path) == 0o600
    assert (tmp_path / "cache" / ".gitignore").read_text().splitlines()[-1] == "*"
    again = IndexCache(tmp_path / "cache").get("pypi")  # a new process: read, not rebuilt
    assert again == built and again is not built
    assert path.stat().st_mtime_ns == written.st_mtime_ns and path.stat().st_ino == written.st_ino


def test_a_changed_watchlist_is_a_new_entry(tmp_path: Path) -> None:
    cache = IndexCache(tmp_path)
    plain = cache.get("npm")
    watched = cache.get("npm", WATCHED)
    assert "@acme/billing" in watched.by_key and "@acme/billing" not in plain.by_key
    assert len(cache_files(tmp_path, "npm")) == 2
    assert IndexCache(tmp_path).load("npm", WATCHED) == watched
    assert IndexCache(tmp_path).load("npm", ("@acme/billing",)) is None  # another watchlist: a miss


def test_old_entries_are_pruned(tmp_path: Path) -> None:
    cache = IndexCache(tmp_path)
    for n in range(KEEP + 2):
        cache.get("rubygems", (f"acme-{n}",))
    files = cache_files(tmp_path, "rubygems")
    assert len(files) == KEEP
    assert cache.path("rubygems", (f"acme-{KEEP + 1}",)) in files
    assert cache.path("rubygems", ("acme-0",)) not in files
    stale = tmp_path / ".detector-dead.tmp"
    stale.write_bytes(b"half")
    os.utime(stale, (1, 1))
    cache.get("rubygems", ("acme-new",))
    assert not stale.exists()


@pytest.mark.parametrize(
    "damage",
    [
        lambda data: data[: len(data) // 2],  # truncated
        lambda data: data[:-1] + bytes([data[-1] ^ 1]),  # one bit of the payload
        lambda data: b"not a cache file at all",
        lambda data: b"",
        lambda data: data.replace(b'"format": 1', b'"format": 9', 1),  # another file format
    ],
    ids=["truncated", "bit-flip", "garbage", "empty", "format"],
)
def test_a_damaged_file_is_rebuilt(tmp_path: Path, damage: object) -> None:
    cache = IndexCache(tmp_path)
    built = cache.get("pypi")
    path = cache.path("pypi", ())
    path.write_bytes(damage(path.read_bytes()))  # type: ignore[operator]
    assert IndexCache(tmp_path).load("pypi") is None
    assert IndexCache(tmp_path).get("pypi") == built  # rebuilt...
    assert IndexCache(tmp_path).load("pypi") == built  # ...and rewritten


def test_a_planted_file_with_a_valid_header_runs_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    cache = IndexCache(tmp_path / "cache")
    cache.get("rubygems")
    path = cache.path("rubygems", ())
    payload = pickle.dumps(_Boom())
    header = path.read_bytes().split(b"\n", 2)
    meta = json.loads(header[1])
    meta.update(size=len(payload), sha256=hashlib.sha256(payload).hexdigest())
    path.write_bytes(header[0] + b"\n" + json.dumps(meta).encode() + b"\n" + payload)
    assert cache.load("rubygems") is None
    assert not (tmp_path / "should-never-exist").exists()


def test_a_file_others_can_write_is_not_read(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    cache = IndexCache(tmp_path)
    built = cache.get("rubygems", WATCHED)
    path = cache.path("rubygems", WATCHED)
    path.chmod(0o666)
    assert cache.load("rubygems", WATCHED) is None
    assert "writable by other users" in caplog.text
    assert cache.get("rubygems", WATCHED) == built  # rebuilt and replaced by a private file
    assert mode(path) == 0o600 and cache.load("rubygems", WATCHED) == built


def test_a_symlinked_file_is_not_followed(tmp_path: Path) -> None:
    cache = IndexCache(tmp_path / "cache")
    cache.get("rubygems")
    path = cache.path("rubygems", ())
    elsewhere = tmp_path / "elsewhere.bin"
    path.rename(elsewhere)
    path.symlink_to(elsewhere)
    assert cache.load("rubygems") is None
    cache.get("rubygems")
    assert not path.is_symlink()  # replaced by a regular file


def test_a_shared_directory_is_made_private(tmp_path: Path) -> None:
    directory = tmp_path / "cache"
    directory.mkdir(mode=0o777)
    directory.chmod(0o777)
    IndexCache(directory).get("rubygems")
    assert mode(directory) == 0o700
    assert IndexCache(directory).load("rubygems") is not None


def test_a_symlinked_directory_is_not_used(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    real = tmp_path / "real"
    real.mkdir(mode=0o700)
    (tmp_path / "cache").symlink_to(real)
    cache = IndexCache(tmp_path / "cache")
    assert cache.get("rubygems", WATCHED) == build_index("rubygems", WATCHED)  # built in memory
    assert list(real.iterdir()) == []
    assert "a symlink, not a directory" in caplog.text


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="needs root to chown")
def test_a_directory_of_another_user_is_not_used(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    directory = tmp_path / "cache"
    IndexCache(directory).get("rubygems")
    os.chown(directory, 4242, 4242)
    assert IndexCache(directory).load("rubygems") is None
    assert "owned by uid 4242" in caplog.text
    before = {p.name: p.stat().st_mtime_ns for p in directory.iterdir()}
    IndexCache(directory).get("rubygems")
    assert {p.name: p.stat().st_mtime_ns for p in directory.iterdir()} == before  # nothing written


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="needs root to chown")
def test_a_file_of_another_user_is_not_read(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    cache = IndexCache(tmp_path)
    cache.get("rubygems")
    os.chown(cache.path("rubygems", ()), 4242, 4242)
    assert cache.load("rubygems") is None
    assert "owned by uid 4242" in caplog.text


def test_an_unusable_directory_still_gives_indexes(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    cache = IndexCache(blocker / "cache")  # below a regular file: cannot be created
    assert cache.get("rubygems", WATCHED) == build_index("rubygems", WATCHED)
    assert cache.store(build_index("rubygems"), ()) is None


def test_a_name_with_a_newline_or_odd_characters_round_trips(tmp_path: Path) -> None:
    odd = ("acme\nsdk", "ａｃｍｅ", "acme\x00x", "\udcff-lone-surrogate")
    cache = IndexCache(tmp_path)
    built = cache.get("rubygems", odd)
    assert IndexCache(tmp_path).load("rubygems", odd) == built


# --- lazy indexes and the detector -------------------------------------------------------------
def test_lazy_indexes_read_only_what_is_scanned(tmp_path: Path) -> None:
    indexes = LazyIndexes(IndexCache(tmp_path))
    detector = Detector.default(indexes=indexes)
    assert detector.registries() == DETECTOR_REGISTRIES and indexes.loaded() == ()
    assert detector.scan("reqeusts", "pypi").verdict != "clean"
    assert indexes.loaded() == ("pypi",)
    assert [p.name.split("-")[1] for p in cache_files(tmp_path)] == ["pypi"]
    assert detector.scan("lodahs", "NPM").threats[0].target == "lodash"  # a registry spelt otherwise
    assert indexes.loaded() == ("pypi", "npm")
    with pytest.raises(UnknownRegistryError):
        detector.scan("x", "cargo")


def test_eager_indexes_and_a_bad_mapping(tmp_path: Path) -> None:
    indexes = IndexCache(tmp_path).indexes(WATCHED, lazy=False)
    assert type(indexes) is dict and set(indexes) == set(DETECTOR_REGISTRIES)
    assert len(cache_files(tmp_path)) == len(DETECTOR_REGISTRIES)
    detector = Detector.default(allowlist=["acme-internal-sdx"], indexes=indexes)
    assert detector.scan("acme-internal-sdc", "pypi").verdict != "clean"
    assert detector.scan("acme-internal-sdx", "pypi").verdict == "clean"  # the allowlist still applies
    with pytest.raises(InvalidInputError, match="prebuilt indexes"):
        Detector.default(indexes={"pypi": indexes["pypi"]})


# --- what a process started from the cache still reads -------------------------------------------
TABLE_NAMES = [
    ("npm", "react-sl"),  # an extra short word: the npm word families
    ("npm", "core"),  # the bare name of scoped targets: the npm legacy scopes
    ("npm", "l\u043edash"),  # not ASCII: the look-alike fold table
    ("pypi", "requests-sl"),  # the PyPI word families
    ("npm", "lodahs"),
    ("pypi", "reqeusts"),
]
_FROM_CACHE = """
import json, os, sys
opened = []
sys.addaudithook(lambda event, args: opened.append(os.fsdecode(args[0])) if event == "open"
                 and isinstance(args[0], (str, bytes, os.PathLike)) else None)
from pathlib import Path
from typostream.agents.adapters.index_cache import IndexCache
from typostream.agents.domain.detection import Detector, derived
if sys.argv[2] == "write":
    for registry in ("npm", "pypi"):
        IndexCache(Path(sys.argv[1])).get(registry)
    sys.exit(0)
if sys.argv[2] == "without-tables":
    derived.adopt = lambda registry, found: None  # as before the tables were cached
detector = Detector.default(indexes=IndexCache(Path(sys.argv[1])).indexes(lazy=True))
answers = [[r, n, detector.scan(n, r).to_dict()] for r, n in json.loads(sys.argv[3])]
print(json.dumps({"answers": answers, "opened": opened}))
"""


@pytest.mark.parametrize("mode", ["with-tables", "without-tables"])
def test_a_process_started_from_the_cache_reads_no_data_file(tmp_path: Path, mode: str) -> None:
    """Regression (issue 11, instant start): the index came from the cache, but the first scans
    that needed a table derived from a data file still read it: the npm snapshot for word families
    (~60 ms) and legacy scopes, the 900 kB confusables table for the fold table (~10 ms). The
    cache now stores those tables with the index; answers stay the built detector's."""
    import subprocess
    import sys

    from typostream.agents.domain.detection.names import confusables_file
    from typostream.agents.domain.detection.tunables import SNAPSHOT_FILES

    for step in ("write", mode):  # two fresh processes: one writes the cache, one reads it
        proc = subprocess.run(
            [sys.executable, "-c", _FROM_CACHE, str(tmp_path), step, json.dumps(TABLE_NAMES)],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout)
    built = Detector.default()
    assert out["answers"] == [[r, n, built.scan(n, r).to_dict()] for r, n in TABLE_NAMES]
    opened = Counter(Path(p).name for p in out["opened"])
    # each snapshot is read once to compute its cache key (hashed, not parsed)
    read = [opened[confusables_file().name], opened[SNAPSHOT_FILES["npm"]], opened[SNAPSHOT_FILES["pypi"]]]
    if mode == "with-tables":
        assert read == [0, 1, 1]
    else:  # the check can fail: without the stored tables, the scans parse the files
        assert read == [1, 2, 2]


def test_tables_of_another_code_version_are_a_miss(tmp_path: Path) -> None:
    cache = IndexCache(tmp_path)
    built = cache.get("pypi")
    path = cache.path("pypi", ())
    path.write_bytes(encode(built, path.stem.rsplit("-", 1)[1], tables={"other.table": 1}))
    assert cache.load("pypi") is None  # read, refused: the caller rebuilds it
    assert cache.get("pypi") == built and cache.load("pypi") == built


def test_an_index_is_tuples_with_one_tuple_per_target_shared() -> None:
    """A cached index is read back object by object: its tables hold tuples, and a target alone
    under a key is the same 1-tuple in every table (half the objects of lists per table)."""
    index = build_index("pypi")
    target = index.by_key["requests"]
    alone = index.by_skeleton[target.forms.skeleton]
    assert alone == (target,)
    assert index.by_folded[target.forms.folded] is alone
    assert all(type(v) is tuple for v in index.by_skeleton.values())
    assert all(type(v) is tuple for tables in index.edit_pieces.values() for t in tables for v in t.values())
    loaded = load_index(dump_index(index), "pypi")
    assert loaded == index
    again = loaded.by_key["requests"]
    assert loaded.by_skeleton[again.forms.skeleton] is loaded.by_folded[again.forms.folded]
