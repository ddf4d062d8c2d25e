"""The on-disk advisory index: OSV advisories synced once into SQLite, looked up per package.

``typostream advisories sync SOURCE`` reads an OSV source and writes ``<dir>/index.sqlite``
(``dir`` = ``TYPOSTREAM_ADVISORIES_DIR``, default ``<data dir>/advisories``). ``scan`` and the worker
open it read-only and ask it for one package at a time, so start-up costs a file open instead of
parsing every advisory, and memory stays flat however many advisories there are.

Sources (:func:`sync`):

- a checkout of https://github.com/ossf/malicious-packages (a directory with ``osv/malicious/``; only
  that folder is read: ``osv/withdrawn/`` holds false positives), or any directory of OSV ``*.json``
  files (searched recursively, dot-folders skipped);
- a zip of either (GitHub's archive of the repository: ``<repo>-<branch>/osv/malicious/...``; an
  osv.dev export such as ``npm/all.zip``), read in place, never extracted;
- one OSV JSON file.

Every advisory in the source is taken as a known-malicious report (point it at malicious-package
data, not at vulnerability exports).

Layout, one row per (package, file, affected entry), clustered by package so a lookup is one B-tree
seek::

    meta(key, value)                     schema, generation, synced_at, source, counts, last sync
    files(id, path, stamp, blob, advisories, skipped, keys)
    records(registry, name, file_id, seq, record)  PRIMARY KEY (registry, name, file_id, seq)

``record`` is :meth:`PackageAdvisory.to_json` as JSON text: the same records, evaluated by the same
:func:`match_advisories` as the in-memory :class:`KnownMalicious`.

**Incremental.** A file is re-read only when its stamp changed (``mtime_ns:size``; ``zip:crc:size``
for zip entries) and then re-parsed only when its content changed: its git blob id (taken from
``git ls-files -s`` for unmodified files of a git checkout without reading them, else computed from
the bytes) differs from the one stored. Files gone from the source are removed with their records
(an advisory withdrawn upstream is moved to ``osv/withdrawn/``, or gets a ``withdrawn`` date: both
drop it). A file that cannot be read or parsed keeps its previous records and is reported (and
retried on the next sync): nothing indexed is lost to a bad file.

**Generations.** A sync copies the current index, applies the changes to the copy and renames it
over ``index.sqlite`` (fsynced), so a published index is never modified: readers open it
``immutable`` (no locks), see the old generation or the new one, never half a sync, and never block
a sync. ``meta.generation`` counts syncs that changed something. :class:`LiveAdvisoryIndex` notices a
new file (its inode, mtime or size changed; checked at most every ``refresh_s``) and swaps it in
without a restart. Syncs of one directory are serialised by ``sync.lock`` (``flock``).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, Final

import orjson

from typostream.agents.domain.advisories import PackageAdvisory, advisories_in, affected_packages
from typostream.agents.domain.errors import AdvisoryFileError, AdvisoryIndexError

if TYPE_CHECKING:  # sqlite3 and zipfile are imported where used: a scan without an index needs neither
    import sqlite3
    import zipfile

__all__ = [
    "INDEX_FILE",
    "SCHEMA_VERSION",
    "AdvisoryIndex",
    "IndexStatus",
    "LiveAdvisoryIndex",
    "SyncReport",
    "index_path",
    "read_status",
    "sync",
]

log = logging.getLogger("typostream.advisories")

INDEX_FILE: Final = "index.sqlite"
LOCK_FILE: Final = "sync.lock"
SCHEMA_VERSION: Final = 1
MALICIOUS_ROOT: Final = PurePosixPath("osv/malicious")
MAX_FILE_BYTES: Final = 16 * 1024 * 1024
"""A larger advisory file (or zip entry) is reported as invalid instead of read (zip bombs)."""
_SCHEMA: Final = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE files (
    id INTEGER PRIMARY KEY,
    path TEXT NOT NULL UNIQUE,
    stamp TEXT NOT NULL,
    blob TEXT NOT NULL,
    advisories INTEGER NOT NULL,
    skipped INTEGER NOT NULL,
    keys TEXT NOT NULL
);
CREATE TABLE records (
    registry TEXT NOT NULL,
    name TEXT NOT NULL,
    file_id INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    record TEXT NOT NULL,
    PRIMARY KEY (registry, name, file_id, seq)
) WITHOUT ROWID;
"""


def index_path(directory: Path) -> Path:
    """Where the index of ``directory`` lives."""
    return Path(directory) / INDEX_FILE


# --- reading a source --------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class _SourceFile:
    path: str
    """Relative to the source's root, POSIX form: the file's identity across syncs."""
    stamp: str
    blob: str | None
    """The git blob id when known without reading the file (an unmodified file of a git checkout)."""
    read: Callable[[], bytes]


@dataclass(frozen=True, slots=True)
class _Source:
    kind: str
    """``malicious-packages``, ``directory``, ``zip``, ``malicious-packages zip`` or ``file``."""
    files: Iterator[_SourceFile]


class _Invalid(Exception):
    """One source file that cannot be read or parsed (reported; its previous records are kept)."""


def git_blob_id(data: bytes) -> str:
    """The id git gives a blob of ``data`` (SHA-1 object format)."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data, usedforsecurity=False).hexdigest()


@contextlib.contextmanager
def _open_source(source: Path) -> Iterator[_Source]:
    import zipfile

    if source.is_dir():
        root = source / MALICIOUS_ROOT
        if root.is_dir():
            yield _Source("malicious-packages", _directory_files(root))
        else:
            yield _Source("directory", _directory_files(source))
    elif source.is_file() and zipfile.is_zipfile(source):
        try:
            archive = zipfile.ZipFile(source)
        except (OSError, zipfile.BadZipFile) as exc:
            raise AdvisoryFileError(f"cannot read zip {source}: {exc}") from exc
        with archive:
            kind, files = _zip_files(archive, source)
            yield _Source(kind, files)
    elif source.is_file():
        yield _Source("file", iter([_stat_file(source, source.name)]))
    else:
        raise AdvisoryFileError(f"no such advisory source: {source} (an OSV directory, zip or JSON file)")


def _read_limited(path: str | Path) -> bytes:
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise _Invalid(f"cannot read: {exc.strerror or exc}") from exc
    if len(data) > MAX_FILE_BYTES:
        raise _Invalid(f"larger than {MAX_FILE_BYTES} bytes")
    return data


def _stat_file(
    path: str | Path, relative: str, blob: str | None = None, st: os.stat_result | None = None
) -> _SourceFile:
    try:
        st = st or os.stat(path)
        stamp = f"{st.st_mtime_ns}:{st.st_size}"
    except OSError:
        stamp = "unreadable"  # read() reports why
    return _SourceFile(relative, stamp, blob, partial(_read_limited, path))


def _directory_files(root: Path) -> Iterator[_SourceFile]:
    yield from _scan(os.fspath(root), "", _git_blobs(root))


def _scan(directory: str, prefix: str, blobs: dict[str, str]) -> Iterator[_SourceFile]:
    """``*.json`` under ``directory``, sorted, dot-entries and symlinked folders skipped. A folder that
    cannot be listed stops the sync (its files would otherwise look removed)."""
    try:
        with os.scandir(directory) as listing:
            entries = sorted(listing, key=lambda e: e.name)
    except OSError as exc:
        raise AdvisoryFileError(f"cannot list {directory}: {exc.strerror or exc}") from exc
    for entry in entries:
        name = entry.name
        if name.startswith("."):
            continue
        if entry.is_dir(follow_symlinks=False):
            yield from _scan(entry.path, f"{prefix}{name}/", blobs)
        elif name.lower().endswith(".json") and entry.is_file():
            relative = prefix + name
            try:
                st = entry.stat()
            except OSError:
                st = None
            yield _stat_file(entry.path, relative, blobs.get(relative), st)


def _git_blobs(root: Path) -> dict[str, str]:
    """Blob ids of the files git tracks under ``root`` and has not seen modified; {} outside git."""

    def git(*args: str) -> bytes | None:
        try:
            done = subprocess.run(
                ["git", "-C", str(root), *args], capture_output=True, timeout=300, check=False
            )
        except (OSError, subprocess.SubprocessError):
            return None
        return done.stdout if done.returncode == 0 else None

    listed = git("ls-files", "--stage", "-z", "--", ".")
    modified = git("ls-files", "--modified", "-z", "--", ".")
    if listed is None or modified is None:
        return {}
    blobs: dict[str, str] = {}
    for entry in listed.split(b"\0"):
        info, _, path = entry.partition(b"\t")
        parts = info.split()
        if len(parts) == 3 and parts[2] == b"0" and len(parts[1]) == 40:
            blobs[os.fsdecode(path)] = parts[1].decode()
    for path in modified.split(b"\0"):
        blobs.pop(os.fsdecode(path), None)
    return blobs


def _zip_files(archive: zipfile.ZipFile, source: Path) -> tuple[str, Iterator[_SourceFile]]:
    import zipfile

    infos = [i for i in archive.infolist() if not i.is_dir() and i.filename.lower().endswith(".json")]
    roots = set()
    for info in infos:
        parts = PurePosixPath(info.filename).parts
        for n in range(len(parts) - 2):
            if parts[n : n + 2] == MALICIOUS_ROOT.parts:
                roots.add(PurePosixPath(*parts[: n + 2]))
                break
    if len(roots) > 1:
        shown = ", ".join(sorted(str(r) for r in roots)[:3])
        raise AdvisoryFileError(f"zip {source} holds several osv/malicious folders ({shown}); pass one")
    root = next(iter(roots), None)

    def files() -> Iterator[_SourceFile]:
        for info in infos:
            path = PurePosixPath(info.filename)
            if root is not None:
                if path.parts[: len(root.parts)] != root.parts:
                    continue
                path = PurePosixPath(*path.parts[len(root.parts) :])
            yield _SourceFile(path.as_posix(), f"zip:{info.CRC:08x}:{info.file_size}", None, _reader(info))

    def _reader(info: zipfile.ZipInfo) -> Callable[[], bytes]:
        def read() -> bytes:
            if info.file_size > MAX_FILE_BYTES:
                raise _Invalid(f"larger than {MAX_FILE_BYTES} bytes")
            try:
                with archive.open(info) as handle:
                    return handle.read(MAX_FILE_BYTES + 1)[:MAX_FILE_BYTES]
            except (OSError, zipfile.BadZipFile, NotImplementedError, RuntimeError) as exc:
                raise _Invalid(f"cannot read zip entry: {exc}") from exc

        return read

    return ("malicious-packages zip" if root is not None else "zip"), files()


def _parse(data: bytes) -> tuple[list[tuple[str, str, PackageAdvisory]], int, int]:
    """(records, advisories with a record, entries skipped) of one file's bytes."""
    try:
        raw = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise _Invalid(f"not JSON: {exc}") from exc
    records: list[tuple[str, str, PackageAdvisory]] = []
    advisories = skipped = 0
    for advisory in advisories_in(raw):
        found, lost = affected_packages(advisory)
        records += found
        skipped += lost
        advisories += bool(found)
    return records, advisories, skipped


# --- sync ----------------------------------------------------------------------------------------
@dataclass
class SyncReport:
    """What one :func:`sync` did."""

    path: str
    source: str
    kind: str
    files: int = 0
    added: int = 0
    changed: int = 0
    removed: int = 0
    unchanged: int = 0
    invalid: list[tuple[str, str]] = field(default_factory=list)
    """``(file, reason)`` of files that could not be read or parsed (their previous records kept)."""
    advisories: int = 0
    packages: int = 0
    records: int = 0
    generation: int = 0
    rebuilt: str = ""
    """Why the index was rebuilt from scratch instead of updated ("" when it was updated or new)."""
    seconds: float = 0.0
    size_bytes: int = 0

    @property
    def changes(self) -> int:
        return self.added + self.changed + self.removed


def sync(source: Path | str, directory: Path | str, *, clock: Callable[[], float] = time.time) -> SyncReport:
    """Bring ``<directory>/index.sqlite`` up to date with ``source`` and publish it (atomically).

    Raises :class:`AdvisoryFileError` when the source does not exist or cannot be opened (the
    published index is left as it was). Unreadable files inside it are reported in
    :attr:`SyncReport.invalid`, not raised.
    """
    import sqlite3

    started = time.perf_counter()
    source, directory = Path(source), Path(directory)
    if not source.exists():
        raise AdvisoryFileError(f"no such advisory source: {source} (an OSV directory, zip or JSON file)")
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise AdvisoryIndexError(f"cannot create the advisory index directory {directory}: {exc}") from exc
    target = index_path(directory)
    with _exclusive(directory / LOCK_FILE):
        for stale in directory.glob(".index-*.tmp"):
            stale.unlink(missing_ok=True)  # left by a sync that was killed
        tmp = directory / f".index-{os.getpid()}.tmp"
        try:
            rebuilt = _prepare(target, tmp)
            with _open_source(source) as opened:
                report = SyncReport(str(target), str(source.resolve()), opened.kind, rebuilt=rebuilt)
                conn = sqlite3.connect(tmp, isolation_level=None)
                try:
                    conn.execute("PRAGMA journal_mode=OFF")  # a private copy: a failed sync deletes it
                    conn.execute("PRAGMA synchronous=OFF")
                    conn.execute("BEGIN")
                    _apply(conn, opened.files, report)
                    _finish(conn, report, clock())
                    conn.execute("COMMIT")
                    free, pages = (
                        conn.execute(f"PRAGMA {p}").fetchone()[0] for p in ("freelist_count", "page_count")
                    )
                    if pages and free / pages > 0.25:
                        conn.execute("VACUUM")
                finally:
                    conn.close()
            _fsync(tmp)
            os.replace(tmp, target)
            _fsync(directory)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
    report.size_bytes = target.stat().st_size
    report.seconds = time.perf_counter() - started
    return report


@contextlib.contextmanager
def _exclusive(lock: Path) -> Iterator[None]:
    try:
        handle = lock.open("a+")
    except OSError as exc:
        raise AdvisoryIndexError(f"cannot open {lock}: {exc}") from exc
    with handle:
        fcntl.flock(handle, fcntl.LOCK_EX)  # another sync of this directory: wait for it
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _prepare(target: Path, tmp: Path) -> str:
    """Copy the published index to ``tmp`` (or create an empty one); why it was rebuilt, or ""."""
    import sqlite3

    reason = ""
    if target.exists():
        shutil.copyfile(target, tmp)
        try:
            conn = sqlite3.connect(tmp)
            try:
                version = _meta(conn).get("schema")
            finally:
                conn.close()
            if version == str(SCHEMA_VERSION):
                return ""
            reason = f"format version {version} (this version writes {SCHEMA_VERSION})"
        except sqlite3.DatabaseError as exc:
            reason = f"unreadable index ({exc})"
        tmp.unlink()
        log.warning("advisory index %s: %s; rebuilding it from the source", target, reason)
    conn = sqlite3.connect(tmp)
    try:
        conn.executescript(_SCHEMA)
        conn.execute("INSERT INTO meta VALUES ('schema', ?), ('generation', '0')", (str(SCHEMA_VERSION),))
        conn.commit()
    finally:
        conn.close()
    return reason


def _meta(conn: sqlite3.Connection) -> dict[str, str]:
    return dict(conn.execute("SELECT key, value FROM meta").fetchall())


def _apply(conn: sqlite3.Connection, files: Iterator[_SourceFile], report: SyncReport) -> None:
    stored = {row[1]: row for row in conn.execute("SELECT id, path, stamp, blob, keys FROM files")}
    seen: set[str] = set()
    for file in files:
        if file.path in seen:  # (a zip may hold an entry twice; the first one counts)
            continue
        seen.add(file.path)
        report.files += 1
        old = stored.get(file.path)
        if old is not None and (old[2] == file.stamp or (file.blob is not None and file.blob == old[3])):
            report.unchanged += 1
            if old[2] != file.stamp:
                conn.execute("UPDATE files SET stamp = ? WHERE id = ?", (file.stamp, old[0]))
            continue
        try:
            data = file.read()
            blob = git_blob_id(data)
            if old is not None and blob == old[3]:
                conn.execute("UPDATE files SET stamp = ? WHERE id = ?", (file.stamp, old[0]))
                report.unchanged += 1
                continue
            records, advisories, skipped = _parse(data)
        except _Invalid as exc:
            report.invalid.append((file.path, str(exc)))
            continue  # previous records kept, stamp not updated: retried next sync
        keys = sorted({(registry, name) for registry, name, _ in records})
        if old is None:
            file_id = conn.execute(
                "INSERT INTO files (path, stamp, blob, advisories, skipped, keys) VALUES (?, ?, ?, ?, ?, ?)",
                (file.path, file.stamp, blob, advisories, skipped, orjson.dumps(keys).decode()),
            ).lastrowid
            report.added += 1
        else:
            file_id = old[0]
            _delete_records(conn, file_id, old[4])
            conn.execute(
                "UPDATE files SET stamp = ?, blob = ?, advisories = ?, skipped = ?, keys = ? WHERE id = ?",
                (file.stamp, blob, advisories, skipped, orjson.dumps(keys).decode(), file_id),
            )
            report.changed += 1
        conn.executemany(
            "INSERT INTO records VALUES (?, ?, ?, ?, ?)",
            [
                (registry, name, file_id, seq, orjson.dumps(record.to_json()).decode())
                for seq, (registry, name, record) in enumerate(records)
            ],
        )
    for path, (file_id, _, _, _, keys) in stored.items():
        if path not in seen:
            _delete_records(conn, file_id, keys)
            conn.execute("DELETE FROM files WHERE id = ?", (file_id,))
            report.removed += 1


def _delete_records(conn: sqlite3.Connection, file_id: int, keys: str) -> None:
    conn.executemany(
        "DELETE FROM records WHERE registry = ? AND name = ? AND file_id = ?",
        [(registry, name, file_id) for registry, name in orjson.loads(keys)],
    )


def _finish(conn: sqlite3.Connection, report: SyncReport, now: float) -> None:
    meta = _meta(conn)
    generation = int(meta.get("generation", "0")) + (1 if report.changes or report.rebuilt else 0)
    report.generation = generation
    report.advisories, report.records = conn.execute(
        "SELECT COALESCE(SUM(advisories), 0), (SELECT COUNT(*) FROM records) FROM files"
    ).fetchone()
    report.packages = conn.execute(
        "SELECT COUNT(*) FROM (SELECT DISTINCT registry, name FROM records)"
    ).fetchone()[0]
    changed_at = (
        repr(now) if report.changes or report.rebuilt or "changed_at" not in meta else meta["changed_at"]
    )
    last = {k: v for k, v in asdict(report).items() if k not in ("seconds", "size_bytes")}
    last["invalid"] = report.invalid[:100]
    values = {
        "generation": str(generation),
        "synced_at": repr(now),
        "changed_at": changed_at,
        "source": report.source,
        "source_kind": report.kind,
        "advisories": str(report.advisories),
        "packages": str(report.packages),
        "records": str(report.records),
        "files": str(conn.execute("SELECT COUNT(*) FROM files").fetchone()[0]),
        "invalid": str(len(report.invalid)),
        "last_sync": orjson.dumps(last).decode(),
    }
    conn.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)", values.items())


# --- status --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class IndexStatus:
    """What ``typostream advisories status`` reports about one index file."""

    path: str
    size_bytes: int
    generation: int
    synced_at: float
    """When the last sync finished (epoch seconds), changed or not."""
    changed_at: float
    """When a sync last changed the index."""
    source: str
    source_kind: str
    advisories: int
    packages: int
    records: int
    files: int
    invalid: int
    last_sync: dict[str, Any]

    def age_s(self, now: float | None = None) -> float:
        """Seconds since the last sync."""
        return max(0.0, (time.time() if now is None else now) - self.synced_at)

    def to_dict(self, now: float | None = None) -> dict[str, Any]:
        return {**asdict(self), "age_s": round(self.age_s(now), 3)}


def read_status(directory: Path | str) -> IndexStatus | None:
    """The status of ``<directory>/index.sqlite``; None when there is none, AdvisoryIndexError when it
    is unreadable."""
    path = index_path(Path(directory))
    if not path.exists():
        return None
    index = AdvisoryIndex(path)
    try:
        return index.status()
    finally:
        index.close()


# --- reading ---------------------------------------------------------------------------------------
class AdvisoryIndex:
    """One published index file, read-only (``immutable``: it is replaced, never modified)."""

    def __init__(self, path: Path | str, cache_size: int = 4096) -> None:
        import sqlite3

        self.path = Path(path)
        self._error = sqlite3.Error
        try:
            uri = self.path.resolve().as_uri() + "?mode=ro&immutable=1"
            self._conn = sqlite3.connect(uri, uri=True, check_same_thread=False)
            self.meta = _meta(self._conn)
        except sqlite3.Error as exc:
            raise AdvisoryIndexError(
                f"advisory index {self.path} is unreadable ({exc}); "
                "run `typostream advisories sync SOURCE` again"
            ) from exc
        if self.meta.get("schema") != str(SCHEMA_VERSION):
            self._conn.close()
            raise AdvisoryIndexError(
                f"advisory index {self.path} has format version {self.meta.get('schema')!r}, this version "
                f"reads {SCHEMA_VERSION}; run `typostream advisories sync SOURCE` again"
            )
        self.generation = int(self.meta.get("generation", "0"))
        self.advisories = int(self.meta.get("advisories", "0"))
        self._lock = threading.Lock()
        self._closed = False
        self._cache: dict[tuple[str, str], tuple[PackageAdvisory, ...]] = {}
        self._cache_size = cache_size

    def records(self, registry: str, name: str) -> tuple[PackageAdvisory, ...]:
        """The records of ``(registry, normalized name)`` (cached; the file never changes)."""
        key = (registry, name)
        found = self._cache.get(key)
        if found is None:
            found = self._query(registry, name)
            if len(self._cache) >= self._cache_size:
                self._cache.clear()
            self._cache[key] = found
        return found

    def _query(self, registry: str, name: str) -> tuple[PackageAdvisory, ...]:
        with self._lock:
            if self._closed:
                raise _Closed(str(self.path))
            try:
                rows = self._conn.execute(
                    "SELECT record FROM records WHERE registry = ? AND name = ?", (registry, name)
                ).fetchall()
            except self._error as exc:  # a damaged file: the lookup fails loudly, never "clean"
                raise AdvisoryIndexError(f"advisory index {self.path}: lookup failed ({exc})") from exc
        return tuple(PackageAdvisory.from_json(orjson.loads(row[0])) for row in rows)

    def status(self) -> IndexStatus:
        meta = self.meta
        last = orjson.loads(meta.get("last_sync", "{}"))
        return IndexStatus(
            path=str(self.path),
            size_bytes=self.path.stat().st_size if self.path.exists() else 0,
            generation=self.generation,
            synced_at=float(meta.get("synced_at", "0")),
            changed_at=float(meta.get("changed_at", "0")),
            source=meta.get("source", ""),
            source_kind=meta.get("source_kind", ""),
            advisories=self.advisories,
            packages=int(meta.get("packages", "0")),
            records=int(meta.get("records", "0")),
            files=int(meta.get("files", "0")),
            invalid=int(meta.get("invalid", "0")),
            last_sync=last if isinstance(last, dict) else {},
        )

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._conn.close()


class _Closed(Exception):
    """A lookup reached a generation closed by a swap meanwhile (it is retried on the new one)."""


class LiveAdvisoryIndex:
    """An :class:`~typostream.agents.domain.advisories.AdvisorySource` that follows the newest index.

    Holds the published generation open; at most every ``refresh_s`` a lookup stats the file and,
    when a sync replaced it, opens the new one, swaps it in and closes the old one (a lookup caught
    mid-swap is answered by the new one). No index yet: lookups find nothing until one appears. A
    new file that cannot be opened is logged and the current generation kept; at construction it
    raises :class:`AdvisoryIndexError` (a damaged index is not silently ignored).
    """

    def __init__(
        self, path: Path | str, refresh_s: float = 10.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.path = Path(path)
        self.refresh_s = refresh_s
        self._clock = clock
        self._current: AdvisoryIndex | None = None
        self._stamp: tuple[int, int, int, int] | None = None
        self._swap = threading.Lock()
        self._checked = clock()
        self.refresh(strict=True)

    @property
    def current(self) -> AdvisoryIndex | None:
        return self._current

    @property
    def generation(self) -> int | None:
        """The generation being served, None while there is no index."""
        current = self._current
        return current.generation if current is not None else None

    def records(self, registry: str, name: str) -> Sequence[PackageAdvisory]:
        now = self._clock()
        if now - self._checked >= self.refresh_s:
            self._checked = now
            self.refresh()
        while (current := self._current) is not None:
            try:
                return current.records(registry, name)
            except _Closed:
                continue  # swapped while this lookup started: ask the new generation
        return ()

    def refresh(self, strict: bool = False) -> bool:
        """Swap in the file at :attr:`path` if it is not the one served; whether it swapped."""
        if not self._swap.acquire(blocking=False):
            return False  # another thread is swapping
        try:
            try:
                st = os.stat(self.path)
            except FileNotFoundError:
                return False  # not synced yet (or removed: keep serving what is loaded)
            stamp = (st.st_dev, st.st_ino, st.st_mtime_ns, st.st_size)
            if stamp == self._stamp:
                return False
            try:
                fresh = AdvisoryIndex(self.path)  # stat first, then open: a later rename is seen next time
            except AdvisoryIndexError as error:
                if strict:
                    raise
                self._stamp = stamp  # logged once per file, retried when a sync replaces it
                log.error("%s; keeping generation %s", error, self.generation)
                return False
            previous, self._current, self._stamp = self._current, fresh, stamp
            if previous is not None:
                previous.close()  # its file (unlinked by the sync) is released now
            log.info(
                "advisory index %s: generation %d (%d advisories) in use%s",
                self.path,
                fresh.generation,
                fresh.advisories,
                "" if previous is None else f", was {previous.generation}",
            )
            return True
        finally:
            self._swap.release()

    def close(self) -> None:
        current, self._current = self._current, None
        if current is not None:
            current.close()
