"""MultiLevelCache against the real redis-server of the embedded stack (plus Redis-less cases)."""

from __future__ import annotations

import asyncio
import signal
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import redis.asyncio as aioredis
from prometheus_client import REGISTRY

from typostream.agents.adapters.cache import MultiLevelCache
from typostream.agents.domain.metadata import PackageMetadata
from typostream.streams.stack import StackState, redis_server
from typostream.streams.stack.processes import free_port, spawn, stop_popen, wait_ready


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class CountingLoader:
    def __init__(self, value: Any, delay: float = 0.0) -> None:
        self.value = value
        self.delay = delay
        self.calls = 0

    async def __call__(self) -> Any:
        self.calls += 1
        if self.delay:
            await asyncio.sleep(self.delay)
        return self.value


def requests(level: str, result: str, cls: str) -> float:
    value = REGISTRY.get_sample_value(
        "typostream_cache_requests_total", {"level": level, "result": result, "cls": cls}
    )
    return value or 0.0


def redis_errors(op: str) -> float:
    return REGISTRY.get_sample_value("typostream_cache_redis_errors_total", {"op": op}) or 0.0


@pytest.fixture
async def redis_client(embedded_stack: StackState) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.from_url(embedded_stack.redis_url)
    try:
        yield client
    finally:
        await client.aclose()


CacheFactory = Callable[..., MultiLevelCache]


@pytest.fixture
async def cache_factory(embedded_stack: StackState, key_prefix: str) -> AsyncIterator[CacheFactory]:
    """``(**overrides) -> MultiLevelCache`` on the stack's Redis with this test's key prefix."""
    made: list[MultiLevelCache] = []

    def make(**overrides: Any) -> MultiLevelCache:
        options: dict[str, Any] = {"key_prefix": key_prefix, **overrides}
        redis = options.pop("redis", embedded_stack.redis_url)
        cache = MultiLevelCache(redis, **options)
        made.append(cache)
        return cache

    yield make
    for cache in made:
        await cache.close()


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.integration
async def test_l1_hit(cache_factory: CacheFactory) -> None:
    cache = cache_factory()
    loader = CountingLoader({"a": 1})
    before = requests("l1", "hit", "metadata")
    assert await cache.get_or_load("metadata", "npm:a@1", loader) == {"a": 1}
    assert await cache.get_or_load("metadata", "npm:a@1", loader) == {"a": 1}
    assert loader.calls == 1
    assert requests("l1", "hit", "metadata") - before == 1


@pytest.mark.integration
async def test_l2_hit_after_l1_expiry_and_in_another_process_cache(
    cache_factory: CacheFactory, redis_client: aioredis.Redis, key_prefix: str
) -> None:
    clock = FakeClock()
    cache = cache_factory(clock=clock, l1_max_ttl_s=10)
    loader = CountingLoader({"v": 2})
    assert await cache.get_or_load("metadata", "k", loader) == {"v": 2}
    stored = await redis_client.get(f"{key_prefix}metadata:k")
    assert stored is not None and orjson.loads(stored) == {"v": 2}
    assert 3500 < await redis_client.ttl(f"{key_prefix}metadata:k") <= 3600  # the class TTL, 1 h

    clock.now += 11  # L1 entry expired, Redis still has it
    l2_hits = requests("l2", "hit", "metadata")
    assert await cache.get_or_load("metadata", "k", loader) == {"v": 2}
    assert loader.calls == 1
    assert requests("l2", "hit", "metadata") - l2_hits == 1

    other_worker = cache_factory()  # empty L1, same Redis
    assert await other_worker.get_or_load("metadata", "k", CountingLoader("unused")) == {"v": 2}


@pytest.mark.integration
async def test_l2_hit_after_l1_lru_eviction_with_decode(cache_factory: CacheFactory) -> None:
    cache = cache_factory(l1_size=2)
    meta = PackageMetadata("npm", "a", "1", install_scripts={"install": "x"}, maintainers=("m",))
    loaders = {k: CountingLoader(meta if k == "a" else k) for k in "abc"}
    for k in "abc":  # "a" is evicted by "c"
        await cache.get_or_load("metadata", k, loaders[k], decode=PackageMetadata.from_dict)
    got = await cache.get_or_load("metadata", "a", loaders["a"], decode=PackageMetadata.from_dict)
    assert got == meta and isinstance(got, PackageMetadata)
    assert loaders["a"].calls == 1


@pytest.mark.integration
async def test_single_flight_20_concurrent_gets(cache_factory: CacheFactory) -> None:
    cache = cache_factory()
    loader = CountingLoader({"x": 1}, delay=0.05)
    results = await asyncio.gather(*(cache.get_or_load("metadata", "hot", loader) for _ in range(20)))
    assert results == [{"x": 1}] * 20
    assert loader.calls == 1


@pytest.mark.integration
async def test_loader_error_reaches_every_waiter_and_is_not_cached(cache_factory: CacheFactory) -> None:
    cache = cache_factory()
    calls = 0

    async def failing() -> Any:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.01)
        raise RuntimeError("registry down")

    results = await asyncio.gather(
        *(cache.get_or_load("metadata", "f", failing) for _ in range(5)), return_exceptions=True
    )
    assert calls == 1 and all(isinstance(r, RuntimeError) for r in results)
    assert await cache.get_or_load("metadata", "f", CountingLoader("ok")) == "ok"


@pytest.mark.integration
async def test_negative_caching(
    cache_factory: CacheFactory, redis_client: aioredis.Redis, key_prefix: str
) -> None:
    clock = FakeClock()
    cache = cache_factory(clock=clock, ttls={"negative": 60})
    loader = CountingLoader(None)
    misses = requests("l3", "miss", "metadata")
    assert await cache.get_or_load("metadata", "npm:ghost@1", loader) is None
    assert await cache.get_or_load("metadata", "npm:ghost@1", loader) is None
    assert loader.calls == 1
    assert requests("l3", "miss", "metadata") - misses == 1
    assert await redis_client.get(f"{key_prefix}metadata:npm:ghost@1") == b"null"
    assert 0 < await redis_client.ttl(f"{key_prefix}metadata:npm:ghost@1") <= 60  # negative TTL

    clock.now += 61  # L1 expired; Redis still holds the negative entry (its own clock)
    assert await cache.get_or_load("metadata", "npm:ghost@1", loader) is None
    assert loader.calls == 1


@pytest.mark.integration
async def test_per_class_ttls(
    cache_factory: CacheFactory, redis_client: aioredis.Redis, key_prefix: str
) -> None:
    cache = cache_factory()
    await cache.get_or_load("malicious", "npm:x@1", CountingLoader(["MAL-1"]))
    assert 86000 < await redis_client.ttl(f"{key_prefix}malicious:npm:x@1") <= 86400


@pytest.mark.integration
async def test_redis_down_degrades_to_loader(key_prefix: str) -> None:
    cache = MultiLevelCache(
        f"redis://127.0.0.1:{_closed_port()}/0",
        key_prefix=key_prefix,
        redis_timeout_s=0.2,
        redis_probe_interval_s=0.05,
    )
    try:
        gets, skipped, probes = redis_errors("get"), redis_errors("skipped"), redis_errors("probe")
        l3_hits = requests("l3", "hit", "metadata")
        loader = CountingLoader({"ok": True})
        assert await cache.get_or_load("metadata", "a", loader) == {"ok": True}
        assert not cache.redis_up
        assert await cache.get_or_load("metadata", "b", loader) == {"ok": True}  # Redis skipped
        assert loader.calls == 2
        assert redis_errors("get") - gets == 1
        assert redis_errors("skipped") - skipped >= 1
        assert requests("l3", "hit", "metadata") - l3_hits == 2
        await asyncio.sleep(0.3)  # the background probe keeps trying (and failing); lookups do not
        assert await cache.get_or_load("metadata", "c", loader) == {"ok": True}
        assert redis_errors("probe") - probes >= 2
        assert redis_errors("get") - gets == 1
        assert not cache.redis_up
    finally:
        await cache.close()


async def test_without_redis_is_l1_plus_loader() -> None:
    cache = MultiLevelCache(None, l1_size=4)
    loader = CountingLoader(7)
    assert await cache.get_or_load("metadata", "k", loader) == 7
    assert await cache.get_or_load("metadata", "k", loader) == 7
    assert loader.calls == 1
    await cache.close()


@pytest.mark.integration
async def test_unserializable_value_stays_in_l1_only(
    cache_factory: CacheFactory, redis_client: aioredis.Redis, key_prefix: str
) -> None:
    cache = cache_factory()
    value = object()
    assert await cache.get_or_load("metadata", "o", CountingLoader(value)) is value
    assert await cache.get_or_load("metadata", "o", CountingLoader("unused")) is value
    assert await redis_client.get(f"{key_prefix}metadata:o") is None


@pytest.mark.integration
async def test_cancelled_caller_does_not_cancel_the_shared_load(cache_factory: CacheFactory) -> None:
    cache = cache_factory()
    loader = CountingLoader("v", delay=0.05)
    first = asyncio.ensure_future(cache.get_or_load("metadata", "c", loader))
    await asyncio.sleep(0)
    second = asyncio.ensure_future(cache.get_or_load("metadata", "c", loader))
    await asyncio.sleep(0.01)
    first.cancel()
    assert await second == "v"
    assert loader.calls == 1
    assert first.cancelled()


# --- Redis restarts and outages: a private redis-server this test may stop, freeze and restart ---


class PrivateRedis:
    """A redis-server on a fixed port (restarts keep the port, lose the data: persistence is off)."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.url = redis_server.url(self.port)
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = spawn(
            redis_server.command(self.port, self.workdir), self.workdir / "redis.log", die_with_parent=True
        )
        wait_ready(self.proc, self.port, redis_server.ping_ready, timeout=10)

    def stop(self) -> None:
        if self.proc is not None:
            stop_popen(self.proc)
            self.proc = None

    def freeze(self) -> None:  # accepts TCP connections (kernel backlog) but never answers
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGCONT)

    def put(self, key: str, value: bytes) -> None:
        import redis

        client = redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=2)
        try:
            client.set(key, value)
        finally:
            client.close()


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    server = PrivateRedis(tmp_path)
    server.start()
    try:
        yield server
    finally:
        if server.proc is not None:
            server.thaw()
        server.stop()


async def _warm_pool(cache: MultiLevelCache, connections: int = 8) -> None:
    """Concurrent lookups so the client's pool holds ``connections`` sockets to the old server."""

    async def load() -> Any:
        await asyncio.sleep(0.02)
        return {"warm": True}

    await asyncio.gather(*(cache.get_or_load("metadata", f"warm-{i}", load) for i in range(connections)))


async def _seconds_until_l2_serves(cache: MultiLevelCache, server: PrivateRedis, key_prefix: str) -> float:
    """Keep 8 lookups in flight (every pooled connection gets used) until Redis answers again."""
    server.put(f"{key_prefix}metadata:probe", orjson.dumps({"from": "redis"}))
    started = time.monotonic()
    round_no = 0
    while time.monotonic() - started < 30:
        round_no += 1
        cache.clear_l1()
        others = [cache.get_or_load("metadata", f"other-{round_no}-{i}", CountingLoader(i)) for i in range(7)]
        probe, *_ = await asyncio.gather(
            cache.get_or_load("metadata", "probe", CountingLoader({"from": "loader"})), *others
        )
        if probe == {"from": "redis"}:
            return time.monotonic() - started
        await asyncio.sleep(0.02)
    return float("inf")


@pytest.mark.integration
async def test_serves_l2_again_within_2s_of_a_redis_restart(
    private_redis: PrivateRedis, key_prefix: str
) -> None:
    cache = MultiLevelCache(private_redis.url, key_prefix=key_prefix)  # the defaults the worker uses
    try:
        await _warm_pool(cache)
        private_redis.stop()
        private_redis.start()  # same port; every pooled connection is now stale
        assert await _seconds_until_l2_serves(cache, private_redis, key_prefix) < 2.0
    finally:
        await cache.close()


@pytest.mark.integration
async def test_redis_down_then_back_lookups_stay_fast_and_l2_returns(
    private_redis: PrivateRedis, key_prefix: str
) -> None:
    cache = MultiLevelCache(private_redis.url, key_prefix=key_prefix)
    try:
        await _warm_pool(cache)
        private_redis.stop()
        slowest = 0.0
        for i in range(100):  # connection refused: every lookup goes straight to the loader
            started = time.monotonic()
            assert await cache.get_or_load("metadata", f"down-{i}", CountingLoader(i)) == i
            slowest = max(slowest, time.monotonic() - started)
            await asyncio.sleep(0.01)
        assert slowest < 0.25  # no connect timeout (0.5 s) paid by any lookup
        private_redis.start()
        assert await _seconds_until_l2_serves(cache, private_redis, key_prefix) < 2.0
    finally:
        await cache.close()


@pytest.mark.integration
async def test_frozen_redis_costs_at_most_one_timeout_per_lookup_burst(
    private_redis: PrivateRedis, key_prefix: str
) -> None:
    cache = MultiLevelCache(private_redis.url, key_prefix=key_prefix, redis_timeout_s=0.3)
    try:
        await _warm_pool(cache)
        private_redis.freeze()  # every socket read or connect now waits for its timeout
        durations = []
        deadline = time.monotonic() + 6.0
        i = 0
        while time.monotonic() < deadline:  # 6 s of lookups, 8 at a time
            i += 1
            started = time.monotonic()
            batch = [cache.get_or_load("metadata", f"frozen-{i}-{j}", CountingLoader(j)) for j in range(8)]
            assert await asyncio.gather(*batch) == list(range(8))
            durations.append(time.monotonic() - started)
            await asyncio.sleep(0.01)
        slow = [d for d in durations if d > 0.2]  # waited for the 0.3 s timeout
        assert len(slow) <= 1, f"{len(slow)} of {len(durations)} bursts waited for Redis: {slow}"
        assert max(durations) < 0.3 + 0.2  # one timeout, not one per pooled connection
        private_redis.thaw()
        assert await _seconds_until_l2_serves(cache, private_redis, key_prefix) < 2.0
    finally:
        private_redis.thaw()
        await cache.close()
