"""MultiLevelCache against the real redis-server of the embedded stack (plus Redis-less cases)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Callable
from typing import Any

import orjson
import pytest
import redis.asyncio as aioredis
from prometheus_client import REGISTRY

from typostream.agents.adapters.cache import MultiLevelCache
from typostream.agents.domain.metadata import PackageMetadata
from typostream.streams.stack import StackState


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
    clock = FakeClock()
    cache = MultiLevelCache(
        f"redis://127.0.0.1:{_closed_port()}/0", key_prefix=key_prefix, clock=clock, redis_timeout_s=0.2
    )
    try:
        gets, skipped = redis_errors("get"), redis_errors("skipped")
        l3_hits = requests("l3", "hit", "metadata")
        loader = CountingLoader({"ok": True})
        assert await cache.get_or_load("metadata", "a", loader) == {"ok": True}
        assert await cache.get_or_load("metadata", "b", loader) == {"ok": True}  # Redis backed off
        assert loader.calls == 2
        assert redis_errors("get") - gets == 1
        assert redis_errors("skipped") - skipped >= 1
        assert requests("l3", "hit", "metadata") - l3_hits == 2
        clock.now += 10  # backoff over: Redis is tried (and fails) again
        assert await cache.get_or_load("metadata", "c", loader) == {"ok": True}
        assert redis_errors("get") - gets == 2
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
