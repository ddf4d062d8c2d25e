"""Multi-level read-through cache: L1 in-process TTL+LRU -> L2 Redis -> L3 a loader.

``await cache.get_or_load(cls, key, loader)``:

1. L1 (this process): bounded LRU with per-entry expiry; hit -> return.
2. L2 (Redis, optional): ``GET {prefix}{cls}:{key}``; values are orjson (``null`` = cached "not
   found"); hit -> decode, fill L1, return.
3. L3: ``await loader()`` (e.g. ``RegistryClient.fetch`` or a Faust-table lookup); the result is
   written to L2 and L1. ``None`` is cached too, with the ``negative`` TTL.

TTLs are per value class (:data:`DEFAULT_TTLS`: ``metadata`` 1 h, ``negative`` 5 min, ``malicious``
24 h; unknown classes use ``default``); L1 keeps entries at most ``l1_max_ttl_s`` so workers do
not serve stale data for long. Concurrent misses of one key share one load (single-flight, per
process). Loader exceptions propagate to every waiter and are not cached.

Redis errors never fail a lookup, and a Redis outage costs lookups at most one timeout:

* **A restarted Redis is not an outage.** Every pooled connection to the old process is stale.
  The client this cache builds from a URL retries a command once, at once, on a fresh
  connection after a ``ConnectionError`` (redis-py ``Retry(NoBackoff(), 1)`` limited to
  ``ConnectionError``; GET and SET are idempotent), so each stale socket costs a reconnect, not
  an error. Timeouts are not retried: that would double the wait on a hung server. (redis-py's
  ``health_check_interval`` would PING idle connections first: one round trip more, and it still
  needs the retry to reconnect.)
* **A failing Redis is skipped, then probed.** The first error is counted
  (``typostream_cache_redis_errors_total{op=get|set}``) and turns Redis off for every lookup
  (``op=skipped``): they go straight to the loader. One background task PINGs Redis every
  ``redis_probe_interval_s`` (failures: ``op=probe``) and turns it back on at the first answer,
  so L2 serves again within about that interval after Redis returns, while no lookup waits on
  a dead or hung Redis beyond the ``redis_timeout_s`` of those already in flight when it failed.

Every lookup counts ``typostream_cache_requests_total{level, result, cls}``: ``l1`` hit/miss,
``l2`` hit/miss (when Redis was asked), ``l3`` hit (loader returned a value) / miss (``None``).
Redis commands are timed (``typostream_redis_command_duration_seconds{op}``) and the client's
pool is reported in ``typostream_db_connections{db="redis"}`` (``metrics.watch_redis``).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Final, TypeVar

import orjson
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError

from typostream.agents.adapters.metrics import CACHE_REDIS_ERRORS, CACHE_REQUESTS, REDIS_SECONDS, watch_redis

__all__ = ["DEFAULT_TTLS", "Loader", "MultiLevelCache"]

T = TypeVar("T")
Loader = Callable[[], Awaitable[Any]]
"""An async callable with no arguments returning the value (or ``None`` for "not found")."""

DEFAULT_TTLS: Final[Mapping[str, float]] = {
    "metadata": 3600.0,
    "negative": 300.0,
    "malicious": 86400.0,
    "default": 3600.0,
}
_MISSING: Final = object()
log = logging.getLogger(__name__)
_REDIS_GET, _REDIS_SET, _REDIS_PING = (REDIS_SECONDS.labels(op) for op in ("get", "set", "ping"))


class _L1:
    """LRU of ``key -> (expires_at, value)``; expired entries are dropped when read."""

    def __init__(self, size: int, clock: Callable[[], float]) -> None:
        self.size = max(1, size)
        self.clock = clock
        self.data: OrderedDict[str, tuple[float, Any]] = OrderedDict()

    def get(self, key: str) -> Any:
        item = self.data.get(key)
        if item is None:
            return _MISSING
        expires_at, value = item
        if expires_at <= self.clock():
            del self.data[key]
            return _MISSING
        self.data.move_to_end(key)
        return value

    def set(self, key: str, value: Any, ttl: float) -> None:
        self.data[key] = (self.clock() + ttl, value)
        self.data.move_to_end(key)
        while len(self.data) > self.size:
            self.data.popitem(last=False)

    def clear(self) -> None:
        self.data.clear()


class MultiLevelCache:
    """L1 memory -> L2 Redis -> L3 loader. One instance per worker process, shared by agents.

    ``redis``: a URL (the cache owns and closes the client), a ``redis.asyncio.Redis`` (not
    closed here) or ``None`` (L1 + loader only).
    """

    def __init__(
        self,
        redis: str | aioredis.Redis | None = None,
        *,
        l1_size: int = 10_000,
        ttls: Mapping[str, float] | None = None,
        l1_max_ttl_s: float = 300.0,
        key_prefix: str = "typostream:",
        redis_timeout_s: float = 0.5,
        redis_probe_interval_s: float = 0.5,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttls: dict[str, float] = {**DEFAULT_TTLS, **(ttls or {})}
        self.l1_max_ttl_s = l1_max_ttl_s
        self.key_prefix = key_prefix
        self.redis_probe_interval_s = redis_probe_interval_s
        self._clock = clock
        self._l1 = _L1(l1_size, clock)
        self._inflight: dict[str, asyncio.Task[Any]] = {}
        self._redis_up = True
        self._probe: asyncio.Task[None] | None = None
        self._owns_redis = isinstance(redis, str)
        if isinstance(redis, str):
            self._redis: aioredis.Redis | None = aioredis.from_url(
                redis,
                socket_timeout=redis_timeout_s,
                socket_connect_timeout=redis_timeout_s,
                # a stale pooled connection (Redis restarted) reconnects once instead of failing
                retry=Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,)),
            )
        else:
            self._redis = redis
        if self._redis is not None:
            watch_redis(self._redis)

    def ttl_for(self, cls: str) -> float:
        return self.ttls.get(cls, self.ttls["default"])

    def redis_key(self, cls: str, key: str) -> str:
        return f"{self.key_prefix}{cls}:{key}"

    @property
    def redis_up(self) -> bool:
        """False while Redis is skipped after an error (until a probe PING answers)."""
        return self._redis_up

    async def close(self) -> None:
        """Wait for in-flight loads, stop the probe, close the Redis client if this cache created it."""
        if self._inflight:
            await asyncio.gather(*self._inflight.values(), return_exceptions=True)
        if self._probe is not None:
            self._probe.cancel()
            await asyncio.gather(self._probe, return_exceptions=True)
            self._probe = None
        if self._redis is not None and self._owns_redis:
            await self._redis.aclose()
        self._redis = None

    def clear_l1(self) -> None:
        self._l1.clear()

    async def get_or_load(
        self,
        cls: str,
        key: str,
        loader: Loader,
        decode: Callable[[Any], Any] | None = None,
    ) -> Any:
        """The cached value of ``(cls, key)``, loading it with ``loader`` on a miss.

        ``decode`` turns a JSON value read from Redis back into the loader's type (e.g.
        ``PackageMetadata.from_dict``); it is not applied to ``None``.
        """
        full_key = self.redis_key(cls, key)
        value = self._l1.get(full_key)
        if value is not _MISSING:
            CACHE_REQUESTS.labels("l1", "hit", cls).inc()
            return value
        CACHE_REQUESTS.labels("l1", "miss", cls).inc()
        task = self._inflight.get(full_key)
        if task is None:
            task = asyncio.ensure_future(self._load(cls, full_key, loader, decode))
            self._inflight[full_key] = task
            task.add_done_callback(functools.partial(self._load_done, full_key))
        return await asyncio.shield(task)

    def _load_done(self, key: str, task: asyncio.Task[Any]) -> None:
        if self._inflight.get(key) is task:
            del self._inflight[key]
        if not task.cancelled():
            task.exception()  # mark retrieved: waiters may all have been cancelled

    async def _load(
        self, cls: str, full_key: str, loader: Loader, decode: Callable[[Any], Any] | None
    ) -> Any:
        raw = await self._redis_get(full_key)
        if raw is not None:
            try:
                value = orjson.loads(raw)
                if value is not None and decode is not None:
                    value = decode(value)
            except Exception:  # a corrupt or foreign value: reload it
                log.warning("cache_decode_failed key=%s", full_key, exc_info=True)
            else:
                CACHE_REQUESTS.labels("l2", "hit", cls).inc()
                ttl = self.ttl_for(cls if value is not None else "negative")
                self._l1.set(full_key, value, min(ttl, self.l1_max_ttl_s))
                return value
        if self._redis is not None:
            CACHE_REQUESTS.labels("l2", "miss", cls).inc()
        value = await loader()
        CACHE_REQUESTS.labels("l3", "hit" if value is not None else "miss", cls).inc()
        ttl = self.ttl_for(cls if value is not None else "negative")
        self._l1.set(full_key, value, min(ttl, self.l1_max_ttl_s))
        await self._redis_set(full_key, value, ttl)
        return value

    # --- Redis, degrading on errors ------------------------------------------------------------
    def _redis_usable(self) -> bool:
        if self._redis is None:
            return False
        if not self._redis_up:
            CACHE_REDIS_ERRORS.labels("skipped").inc()
            return False
        return True

    def _redis_failed(self, op: str, exc: BaseException) -> None:
        CACHE_REDIS_ERRORS.labels(op).inc()
        if self._redis_up:
            log.warning("cache_redis_error op=%s error=%s: %s", op, type(exc).__name__, exc)
        self._redis_up = False
        if self._probe is None or self._probe.done():
            self._probe = asyncio.ensure_future(self._probe_until_up())

    async def _probe_until_up(self) -> None:
        """PING every ``redis_probe_interval_s`` until Redis answers, then use it again."""
        while self._redis is not None:
            await asyncio.sleep(self.redis_probe_interval_s)
            try:
                with _REDIS_PING.time():
                    await self._redis.ping()
            except (RedisError, OSError, TimeoutError):
                CACHE_REDIS_ERRORS.labels("probe").inc()
                continue
            self._redis_up = True
            log.warning("cache_redis_back")
            return

    async def _redis_get(self, full_key: str) -> bytes | None:
        if not self._redis_usable():
            return None
        assert self._redis is not None
        try:
            with _REDIS_GET.time():
                raw = await self._redis.get(full_key)
        except (RedisError, OSError, TimeoutError) as exc:
            self._redis_failed("get", exc)
            return None
        return raw.encode() if isinstance(raw, str) else raw

    async def _redis_set(self, full_key: str, value: Any, ttl: float) -> None:
        if not self._redis_usable():
            return
        assert self._redis is not None
        try:
            payload = orjson.dumps(value)
        except TypeError:
            log.warning("cache_value_not_serializable key=%s type=%s", full_key, type(value).__name__)
            return
        try:
            with _REDIS_SET.time():
                await self._redis.set(full_key, payload, px=max(1, int(ttl * 1000)))
        except (RedisError, OSError, TimeoutError) as exc:
            self._redis_failed("set", exc)
