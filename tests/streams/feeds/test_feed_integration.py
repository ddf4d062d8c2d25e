"""``run_feed`` → the real embedded Kafka-protocol broker: events validate, the cursor blocks replays."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

import pytest
from aiohttp.test_utils import TestServer
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from fixture_feeds import NPM_EXPECTED, PYPI_EXPECTED

from tests.conftest import SettingsFactory
from typostream.agents.adapters.feeds import (
    CursorStore,
    FeedHTTP,
    FeedSource,
    NpmSource,
    PypiSource,
    run_feed,
)
from typostream.agents.domain.events import parse_publish
from typostream.streams.config import Settings
from typostream.streams.topics import ensure_topics

pytestmark = pytest.mark.integration


async def _records(settings: Settings, timeout_s: float = 3.0) -> list[tuple[bytes | None, bytes]]:
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        tps = [TopicPartition(settings.topic_input, p) for p in range(settings.partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        out: list[tuple[bytes | None, bytes]] = []
        idle_until = time.monotonic() + timeout_s
        while time.monotonic() < idle_until:
            batch = await consumer.getmany(timeout_ms=200)
            for records in batch.values():
                out.extend((r.key, r.value) for r in records if r.value is not None)
                idle_until = time.monotonic() + 0.5
        return out
    finally:
        await consumer.stop()


async def _feed_once(settings: Settings, source: FeedSource, store: CursorStore) -> int:
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all")
    await producer.start()

    async def send(values: Sequence[bytes]) -> None:
        futures = [await producer.send(settings.topic_input, value=v, key=None) for v in values]
        for future in futures:
            await future

    try:
        return (await run_feed(source, send, store, once=True, limit=100)).sent
    finally:
        await producer.stop()
        await source.close()


async def test_feeds_publish_valid_events_once(
    settings_factory: SettingsFactory, feed_server: TestServer, tmp_path: Path
) -> None:
    settings = settings_factory()
    await ensure_topics(settings)
    base = str(feed_server.make_url("")).rstrip("/")

    def sources() -> list[tuple[FeedSource, CursorStore]]:
        http = FeedHTTP(timeout_s=2, retries=2, backoff_s=0.01)
        return [
            (NpmSource(base, base, http, start="0"), CursorStore.for_registry(settings.data_dir, "npm")),
            (PypiSource(base, FeedHTTP(timeout_s=2)), CursorStore.for_registry(settings.data_dir, "pypi")),
        ]

    sent = [await _feed_once(settings, source, store) for source, store in sources()]
    assert sent == [len(NPM_EXPECTED), len(PYPI_EXPECTED)]
    records = await _records(settings)
    assert all(key is None for key, _ in records)  # package-feeds convention: no key
    events = [parse_publish(value, settings.max_event_bytes) for _, value in records]
    assert {(e.name, e.version, e.created_date) for e in events} == NPM_EXPECTED | PYPI_EXPECTED
    assert len(events) == len(NPM_EXPECTED) + len(PYPI_EXPECTED)

    # Second run (fresh sources, as after a restart): the saved cursors publish nothing new.
    assert [await _feed_once(settings, source, store) for source, store in sources()] == [0, 0]
    assert len(await _records(settings, timeout_s=1.5)) == len(events)
