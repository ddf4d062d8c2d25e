"""The detector's candidate indexes cached on disk, so a process starts without building them.

Building the npm and PyPI indexes from the bundled snapshots costs a few tenths of a second (and
more with a watchlist); reading one back costs a fraction of that, and :class:`LazyIndexes` reads
only the registries a process scans (``typostream scan --registry pypi`` never touches npm's).

**Files.** ``<data dir>/cache/detector-<registry>-<key>.bin``. ``key`` hashes everything an index
is built from: the registry's snapshot file, the watchlist names (in order), the source of the
detection package (name forms, tunables, index structures, techniques), the confusables table it
folds with, the encoding versions and the Python version. Change any of them and the key changes:
the old file is never read again and is pruned when a new one is written (the newest
:data:`KEEP` per registry stay, for processes that alternate watchlists). The allowlist is not
part of the key: it filters results and never enters an index.

A file is a magic line, one JSON header line (format, registry, key, payload size and SHA-256) and
the payload, :func:`~typostream.agents.domain.detection.index.dump_index`'s bytes: the index and
the :mod:`~typostream.agents.domain.detection.derived` tables of its registry (word families,
legacy scopes, the look-alike fold table: without them the first scans of a process would still
parse the snapshot and the confusables table, npm ~70 ms). Reading a file adopts its tables. A
file that is missing, truncated, damaged (digest), of another format or of another key, or whose
tables are not those this code derives, is a miss: the index is rebuilt and the file rewritten
(atomically: a temporary file renamed over it). The cache never fails a scan: when the directory
cannot be used, indexes are built in memory as before.

**Security.** The payload is pickle, read by an unpickler that resolves exactly three classes
(``Target``, ``NameForms``, ``CandidateIndex``: making one only stores values in it) and refuses
every other name, so a file cannot make the reader call any function: reading a planted file runs
no code (the pickle documentation's "Restricting Globals"). The result must then be laid out as this
code lays an index out (the fields of the three classes, a sample of every table's element types),
else it is a miss. What a planted file could still do is hide a squat behind a doctored index, so
the cache is kept private to its user:

- the directory is created ``0700``; an existing one must be a real directory (not a symlink)
  owned by the current user, and is made ``0700`` if it is not; otherwise the cache is not used
  (one warning) and indexes are built in memory;
- a file is opened without following symlinks and used only if it is a regular file owned by the
  current user and writable by no one else; files are created ``0600``;
- the SHA-256 in the header is checked before the payload is parsed (it catches damage; it is
  not a signature: whoever can write the directory is the user already).

Don't share ``<data dir>/cache`` across trust boundaries (for example a CI cache restored from
builds of untrusted pull requests); set ``TYPOSTREAM_DETECTOR_CACHE=false`` to build in memory.

Alternatives weighed, reading the npm index on this machine (CPU time): JSON of plain containers
~2x slower than the restricted pickle; a hand-parsed columnar format (strings one per line and an
int64 array, shapes from the annotations) ~1.3x slower; ``marshal`` ~10 % faster, but documented as
unsafe against crafted data, and it cannot hold the index's classes without a Python-level rebuild
that gives most of the difference back. Reading costs per object, so the index holds fewer: its
tables hold tuples, and a target alone under a key is one shared 1-tuple in every table
(``CandidateIndex.build``): npm 141 -> 83 ms, PyPI 78 -> 51 ms to unpickle (a third of it is
making the ~20,000 ``Target``s, whose frozen-dataclass ``__init__`` runs in Python).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import stat
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from functools import cache
from pathlib import Path
from typing import Any

from typostream.agents.domain import detection
from typostream.agents.domain.detection import derived
from typostream.agents.domain.detection.detector import build_index
from typostream.agents.domain.detection.index import (
    INDEX_FORMAT,
    CandidateIndex,
    dump_index,
    load_index_tables,
)
from typostream.agents.domain.detection.names import confusables_file
from typostream.agents.domain.detection.tunables import SNAPSHOT_FILES
from typostream.agents.domain.errors import IndexCacheError
from typostream.agents.domain.vocabulary import DETECTOR_REGISTRIES
from typostream.data.popular import SNAPSHOT_DIR

__all__ = ["FILE_FORMAT", "KEEP", "IndexCache", "LazyIndexes", "cache_key", "encode", "source_fingerprint"]

log = logging.getLogger(__name__)

MAGIC = b"typostream detector index\n"
FILE_FORMAT = 1
"""Version of the file layout (magic, header, payload); the payload has its own ``INDEX_FORMAT``."""
KEEP = 4
"""Cache files kept per registry (newest first) when a new one is written."""
_STALE_TMP_S = 3600.0
"""Temporary files of writers that died are removed after this long."""
_MAX_HEADER = 4096
"""A header line is ~150 bytes; a file without a newline this early is not an index cache file."""
_UID = os.getuid() if hasattr(os, "getuid") else None
_O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


def source_fingerprint(root: Path) -> bytes:
    """SHA-256 of every ``*.py`` under ``root``: paths and contents."""
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.digest()


@cache
def _code_fingerprint() -> bytes:
    """Hash of what builds an index besides its inputs: the detection package's source and the
    confusables table (by size and mtime: hashing its 900 kB would cost more than it guards)."""
    digest = hashlib.sha256(source_fingerprint(Path(detection.__file__).resolve().parent))
    confusables = confusables_file()
    try:
        info = confusables.stat()
        digest.update(f"{confusables}:{info.st_size}:{info.st_mtime_ns}".encode())
    except OSError:
        digest.update(b"no confusables")
    return digest.digest()


_code_fingerprint()  # now, next to the import of the code it describes (not when first needed)


def cache_key(registry: str, watched: Sequence[str], snapshot_dir: Path = SNAPSHOT_DIR) -> str:
    """The key of ``registry``'s index built with ``watched``: changes with every input of the build
    (``snapshot_dir``: where the bundled snapshots are)."""
    digest = hashlib.sha256()
    versions = [FILE_FORMAT, INDEX_FORMAT, *sys.version_info[:2], registry, list(watched)]
    digest.update(json.dumps(versions, ensure_ascii=False).encode("utf-8", "surrogatepass"))
    digest.update(_code_fingerprint())
    snapshot = SNAPSHOT_FILES.get(registry)
    digest.update((snapshot_dir / snapshot).read_bytes() if snapshot else b"no snapshot")
    return digest.hexdigest()[:32]


class IndexCache:
    """Indexes on disk under ``directory`` (``<data dir>/cache``); see the module docstring."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self._warned = False
        self._keys: dict[tuple[str, tuple[str, ...]], str] = {}

    def path(self, registry: str, watched: Sequence[str]) -> Path:
        """Where the index of ``registry`` with ``watched`` is cached."""
        key = self._keys.get((registry, tuple(watched)))
        if key is None:
            key = self._keys[registry, tuple(watched)] = cache_key(registry, watched)
        return self.directory / f"detector-{registry}-{key}.bin"

    # --- use ---------------------------------------------------------------------------------
    def get(self, registry: str, watched: Sequence[str] = ()) -> CandidateIndex:
        """The index of ``registry`` with ``watched``: read from the cache, else built and stored."""
        index = self.load(registry, watched)
        if index is None:
            index = build_index(registry, watched)
            self.store(index, watched)
        return index

    def indexes(self, watched: Sequence[str] = (), *, lazy: bool = True) -> Mapping[str, CandidateIndex]:
        """Every registry's index: read on first use (``lazy``), or all of them now."""
        indexes = LazyIndexes(self, watched)
        if lazy:
            return indexes
        return {registry: indexes[registry] for registry in indexes}

    def load(self, registry: str, watched: Sequence[str] = ()) -> CandidateIndex | None:
        """The cached index, or None when there is none that can be used (never raises)."""
        if not self._usable(create=False):
            return None
        path = self.path(registry, watched)
        try:
            fd = os.open(path, os.O_RDONLY | _O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0))
        except FileNotFoundError:
            return None
        except OSError as exc:  # a symlink (ELOOP), no permission...
            log.info("index cache %s not read: %s", path, exc)
            return None
        with os.fdopen(fd, "rb") as handle:
            info = os.fstat(handle.fileno())
            problem = _file_problem(info)
            if problem:
                log.warning("index cache %s not used: %s", path, problem)
                return None
            head = handle.read(len(MAGIC)) + handle.readline(_MAX_HEADER)
            payload = handle.read()  # its own bytes object: no copy of a slice
        try:
            index, tables = _decode(head, payload, registry, path.stem.rsplit("-", 1)[1])
            derived.adopt(registry, tables)
        except (IndexCacheError, ValueError) as exc:
            log.info("index cache %s not used (%s): rebuilding it", path, exc)
            return None
        return index

    def store(self, index: CandidateIndex, watched: Sequence[str] = ()) -> Path | None:
        """Write ``index`` (built with ``watched``); the path, or None when it could not be written."""
        if not self._usable(create=True):
            return None
        path = self.path(index.registry, watched)
        try:
            data = encode(index, path.stem.rsplit("-", 1)[1])
        except IndexCacheError as exc:
            log.warning("index cache: %s (indexes are built in memory)", exc)
            return None
        import tempfile  # (only to write: not on a cache hit's import path)

        try:
            fd, tmp = tempfile.mkstemp(prefix=".detector-", suffix=".tmp", dir=self.directory)  # 0600
        except OSError as exc:
            log.info("index cache %s not written: %s", path, exc)
            return None
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            os.replace(tmp, path)
        except OSError as exc:
            log.info("index cache %s not written: %s", path, exc)
            Path(tmp).unlink(missing_ok=True)
            return None
        self._prune(index.registry)
        return path

    # --- housekeeping ------------------------------------------------------------------------
    def _usable(self, create: bool) -> bool:
        """Whether the directory exists (or was created) and is private to the current user."""
        try:
            if create:
                self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            info = os.lstat(self.directory)
        except FileNotFoundError:
            return False
        except OSError as exc:  # read-only file system, no permission...
            log.info("index cache directory %s not usable: %s", self.directory, exc)
            return False
        problem = None
        if stat.S_ISLNK(info.st_mode):
            problem = "a symlink, not a directory"
        elif not stat.S_ISDIR(info.st_mode):
            log.info("index cache %s not usable: not a directory", self.directory)
            return False
        elif _UID is not None and info.st_uid != _UID:
            problem = f"owned by uid {info.st_uid}, not by the current user"
        elif _UID is not None and stat.S_IMODE(info.st_mode) != 0o700:
            try:
                os.chmod(self.directory, 0o700)  # ours: make it private
            except OSError as exc:
                problem = f"cannot make it private: {exc}"
        if problem:
            if not self._warned:
                self._warned = True
                log.warning(
                    "index cache %s not used: %s (indexes are built in memory)", self.directory, problem
                )
            return False
        if create:
            ignore = self.directory / ".gitignore"
            if not ignore.exists():  # keep a project's `git status` clean when the data dir is in it
                with contextlib.suppress(OSError):
                    ignore.write_text("# created by typostream: detector index cache\n*\n")
        return True

    def _prune(self, registry: str) -> None:
        def mtime(path: Path) -> float:
            try:
                return path.stat().st_mtime
            except OSError:
                return 0.0

        files = sorted(self.directory.glob(f"detector-{registry}-*.bin"), key=mtime, reverse=True)
        stale = [p for p in self.directory.glob(".detector-*.tmp") if time.time() - mtime(p) > _STALE_TMP_S]
        for path in files[KEEP:] + stale:
            with contextlib.suppress(OSError):
                path.unlink()


def _file_problem(info: os.stat_result) -> str | None:
    if not stat.S_ISREG(info.st_mode):
        return "not a regular file"
    if _UID is not None and info.st_uid != _UID:
        return f"owned by uid {info.st_uid}, not by the current user"
    if info.st_mode & 0o022:
        return "writable by other users"
    return None


def encode(index: CandidateIndex, key: str, tables: Mapping[str, Any] | None = None) -> bytes:
    """The cache file of ``index`` under ``key``: magic line, JSON header line, payload (the index
    and ``tables``: by default the :mod:`~typostream.agents.domain.detection.derived` tables of its
    registry, computed now if this process has not yet)."""
    payload = dump_index(index, derived.values(index.registry) if tables is None else tables)
    header = {
        "format": FILE_FORMAT,
        "registry": index.registry,
        "key": key,
        "size": len(payload),
        "sha256": hashlib.sha256(payload).hexdigest(),
    }
    return MAGIC + json.dumps(header).encode() + b"\n" + payload


def _decode(head: bytes, payload: bytes, registry: str, key: str) -> tuple[CandidateIndex, dict[str, Any]]:
    """The index and tables of a file read as its first line plus header line (``head``) and the
    rest (``payload``)."""
    if not head.startswith(MAGIC):
        raise IndexCacheError("not an index cache file")
    if not head.endswith(b"\n"):
        raise IndexCacheError("truncated header")
    try:
        header = json.loads(head[len(MAGIC) :])
    except ValueError as exc:
        raise IndexCacheError("damaged header") from exc
    if not isinstance(header, dict) or header.get("format") != FILE_FORMAT:
        raise IndexCacheError("another file format")
    if header.get("registry") != registry or header.get("key") != key:
        raise IndexCacheError("another registry or key")
    if header.get("size") != len(payload):
        raise IndexCacheError(f"truncated: {len(payload)} of {header.get('size')} bytes")
    if hashlib.sha256(payload).hexdigest() != header.get("sha256"):
        raise IndexCacheError("damaged: the payload's SHA-256 differs from the header's")
    return load_index_tables(payload, registry)


class LazyIndexes(Mapping[str, CandidateIndex]):
    """Every registry's index, read from the cache (or built) the first time it is asked for;
    thread safe. Hand it to :meth:`Detector.default` (``indexes=``)."""

    def __init__(
        self, cache: IndexCache, watched: Sequence[str] = (), registries: Sequence[str] = DETECTOR_REGISTRIES
    ) -> None:
        self._cache = cache
        self._watched = tuple(watched)
        self._registries = tuple(registries)
        self._loaded: dict[str, CandidateIndex] = {}
        self._lock = threading.Lock()

    def __getitem__(self, registry: str) -> CandidateIndex:
        index = self._loaded.get(registry)
        if index is None:
            if registry not in self._registries:
                raise KeyError(registry)
            with self._lock:
                index = self._loaded.get(registry)
                if index is None:
                    index = self._loaded[registry] = self._cache.get(registry, self._watched)
        return index

    def __iter__(self) -> Iterator[str]:
        return iter(self._registries)

    def __len__(self) -> int:
        return len(self._registries)

    def loaded(self) -> tuple[str, ...]:
        """The registries whose index has been read or built so far."""
        return tuple(self._loaded)
