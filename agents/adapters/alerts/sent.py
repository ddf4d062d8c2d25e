"""Which (target, threat id) pairs were delivered already: a replayed threat is not sent twice.

Two stores, chosen by ``TYPOSTREAM_ALERT_DEDUPE``:

- ``file`` (default) — ``<data dir>/alerts/sent.log``, one line ``<unix time> <target key>:<threat id>``
  appended (flushed and fsynced) right after the target's 2xx. Loaded at start, so a restart does
  not resend. One process owns it (``sent.lock``, ``flock``): a second deliverer on the same data
  dir fails at start instead of double-sending. Compacted when dead lines outnumber live ones.
- ``redis`` — ``SET typostream:alert-sent:<target key>:<threat id> <unix time> EX <ttl>`` on the
  configured Redis, shared by every worker / ``alerts run`` process (use it with several replicas
  or without a persistent data dir). A Redis error stalls delivery (the batch is retried) rather
  than risk a duplicate.

Bound: an id is remembered for ``TYPOSTREAM_ALERT_DEDUPE_TTL_S`` (default 7 days) and the file store
keeps at most :data:`MAX_ENTRIES` newest ids; a threat replayed after that is alerted again. The
target key is a hash of the URL, so neither store holds a secret. The window that can still
duplicate is between a target's 2xx and the store write (a crash exactly there); receivers can
de-duplicate on the ``X-Typostream-Threat-Id`` header.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import IO, Final, Protocol

import redis.asyncio as aioredis

from typostream.agents.domain.errors import ConfigError

__all__ = ["MAX_ENTRIES", "FileSentStore", "RedisSentStore", "SentStore"]

MAX_ENTRIES: Final = 200_000
REDIS_PREFIX: Final = "typostream:alert-sent:"


class SentStore(Protocol):
    def open(self) -> None:
        """Blocking, idempotent: load/lock/connect (a worker calls it before it starts)."""

    async def seen(self, key: str) -> bool: ...

    async def add(self, key: str) -> None: ...

    async def close(self) -> None: ...


class FileSentStore:
    """The append-only file store (see the module docstring)."""

    def __init__(
        self,
        directory: Path,
        ttl_s: float,
        *,
        max_entries: int = MAX_ENTRIES,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.path = Path(directory) / "sent.log"
        self.lock_path = Path(directory) / "sent.lock"
        self.ttl_s = ttl_s
        self.max_entries = max(1, max_entries)
        self._clock = clock
        self._sent: OrderedDict[str, float] = OrderedDict()
        self._lines = 0
        self._file: IO[str] | None = None
        self._lock_file: IO[str] | None = None
        self._io = threading.Lock()  # appends (worker threads) vs compaction

    def __repr__(self) -> str:
        return f"FileSentStore({str(self.path)!r}, entries={len(self._sent)})"

    def __len__(self) -> int:
        return len(self._sent)

    def open(self) -> None:
        if self._file is not None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        lock = self.lock_path.open("a+")
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.close()
            raise ConfigError(
                f"another process delivers alerts from {self.path.parent} (lock {self.lock_path}): run alert "
                "delivery in one process per data dir (TYPOSTREAM_ALERT_IN_WORKER=false on workers when "
                "`typostream alerts run` delivers), or use TYPOSTREAM_ALERT_DEDUPE=redis"
            ) from None
        self._lock_file = lock
        self._load()
        self._file = self.path.open("a", encoding="utf-8")
        if self._file.tell() > 0 and not self._ends_with_newline():
            self._file.write("\n")  # a torn last line must not swallow the next entry
            self._file.flush()

    def _ends_with_newline(self) -> bool:
        with self.path.open("rb") as handle:
            handle.seek(-1, os.SEEK_END)
            return handle.read(1) == b"\n"

    def _load(self) -> None:
        now = self._clock()
        self._sent.clear()
        self._lines = 0
        if self.path.exists():
            with self.path.open(encoding="utf-8", errors="replace") as handle:
                for line in handle:
                    self._lines += 1
                    stamp, _, key = line.strip().partition(" ")
                    try:
                        at = float(stamp)
                    except ValueError:
                        continue  # a torn last line after a crash, or garbage: skip it
                    if key and at + self.ttl_s > now:
                        self._sent.pop(key, None)
                        self._sent[key] = at
        while len(self._sent) > self.max_entries:
            self._sent.popitem(last=False)
        if self._lines > len(self._sent):
            self._compact()

    def _compact(self) -> None:
        """Rewrite the file with the live entries only (atomic replace)."""
        with self._io:
            tmp = self.path.with_suffix(".tmp")
            with tmp.open("w", encoding="utf-8") as handle:
                handle.writelines(f"{at:.3f} {key}\n" for key, at in self._sent.items())
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, self.path)
            self._lines = len(self._sent)
            if self._file is not None:
                self._file.close()
                self._file = self.path.open("a", encoding="utf-8")

    async def seen(self, key: str) -> bool:
        if self._file is None:
            await asyncio.to_thread(self.open)
        at = self._sent.get(key)
        return at is not None and at + self.ttl_s > self._clock()

    async def add(self, key: str) -> None:
        if self._file is None:
            await asyncio.to_thread(self.open)
        await asyncio.to_thread(self._append, key, self._clock())

    def _append(self, key: str, at: float) -> None:
        """Durable first, then remembered; every change of the entries happens under ``_io``."""
        with self._io:
            assert self._file is not None
            self._file.write(f"{at:.3f} {key}\n")
            self._file.flush()
            os.fsync(self._file.fileno())
            self._lines += 1
            self._sent.pop(key, None)
            self._sent[key] = at
            while len(self._sent) > self.max_entries:
                self._sent.popitem(last=False)
            compact = self._lines > 2 * len(self._sent) + 1000
        if compact:
            self._compact()

    async def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        if self._lock_file is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(self._lock_file, fcntl.LOCK_UN)
            self._lock_file.close()
            self._lock_file = None


class RedisSentStore:
    """The shared Redis store (see the module docstring)."""

    def __init__(self, url: str, ttl_s: float, *, prefix: str = REDIS_PREFIX) -> None:
        self.prefix = prefix
        self.ttl_s = ttl_s
        self._url = url
        self._redis: aioredis.Redis | None = None

    def __repr__(self) -> str:
        return f"RedisSentStore(prefix={self.prefix!r})"

    def open(self) -> None:
        if self._redis is None:
            self._redis = aioredis.from_url(self._url, socket_timeout=5.0, socket_connect_timeout=5.0)

    def _client(self) -> aioredis.Redis:
        self.open()
        assert self._redis is not None
        return self._redis

    async def seen(self, key: str) -> bool:
        return bool(await self._client().exists(self.prefix + key))

    async def add(self, key: str) -> None:
        ttl = max(1, int(self.ttl_s))
        await self._client().set(self.prefix + key, f"{time.time():.3f}", ex=ttl)

    async def close(self) -> None:
        if self._redis is not None:
            await self._redis.aclose()
            self._redis = None
