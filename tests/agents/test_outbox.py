"""The outbox's lane (records appended to the producer's own batches) against the real embedded broker."""

from __future__ import annotations

import asyncio
import time
from types import SimpleNamespace
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import ProducerClosed

from tests.conftest import SettingsFactory
from typostream.agents.stream.outbox import Outbox
from typostream.streams.topics import ensure_topics

pytestmark = pytest.mark.integration


def app_with(producer: AIOKafkaProducer) -> Any:
    """What the outbox reads of a Faust app: ``app.producer._producer`` (started) and ``.send``."""

    async def faust_send(
        topic: str, key: Any, value: Any, partition: Any, timestamp: Any, headers: Any
    ) -> Any:
        return await producer.send(topic, value, key=key, partition=partition, headers=headers)

    return SimpleNamespace(producer=SimpleNamespace(_producer=producer, send=faust_send))


async def read_all(bootstrap: str, topic: str, partitions: int, expected: int) -> list[Any]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        out: list[Any] = []
        deadline = time.monotonic() + 20
        while len(out) < expected and time.monotonic() < deadline:
            for records in (await consumer.getmany(timeout_ms=300)).values():
                out.extend(records)
        return out
    finally:
        await consumer.stop()


async def test_the_lane_lands_records_where_the_producer_would_with_their_offsets(
    settings_factory: SettingsFactory,
) -> None:
    settings = settings_factory(partitions=3)
    await ensure_topics(settings)
    topic, other = settings.topic_analysed, settings.topic_threats
    # Small producer batches: the records of one outbox fill several batches per partition.
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap, max_batch_size=4096, linger_ms=500
    )
    await producer.start()
    try:
        outbox = Outbox(app_with(producer))
        keys = [f"pypi:pkg-{i % 40}".encode() for i in range(600)]
        receipts = []
        started = time.monotonic()
        for i, key in enumerate(keys):
            headers = [("typostream-last-threat", b'{"n":%d}' % i)] if i % 7 == 0 else None
            receipts.append(await outbox.track(topic, key, b"value-%d" % i, headers))
        await outbox.send(other, None, b"unkeyed")
        await outbox.flush()
        assert time.monotonic() - started < 0.4  # sent at flush, not after the 500 ms linger
        # The producer's own partitioner, for comparison (same key, same partition).
        expected = {key: (await (await producer.send(other, b"x", key=key))).partition for key in set(keys)}
    finally:
        await producer.stop()

    records = await read_all(settings.kafka_bootstrap, topic, 3, len(keys))
    assert len(records) == len(keys)
    by_value = {r.value: r for r in records}
    for i, (key, receipt) in enumerate(zip(keys, receipts, strict=True)):
        record = by_value[b"value-%d" % i]
        assert (record.key, record.partition) == (key, expected[key]) == (key, receipt.partition)
        assert record.offset == receipt.offset
        assert list(record.headers) == ([("typostream-last-threat", b'{"n":%d}' % i)] if i % 7 == 0 else [])
    for partition in range(3):  # in the order they were queued, per partition
        values = [r.value for r in sorted(records, key=lambda r: r.offset) if r.partition == partition]
        assert values == sorted(values, key=lambda v: int(v.split(b"-")[1]))


async def test_a_record_for_a_stopped_producer_is_refused(settings_factory: SettingsFactory) -> None:
    settings = settings_factory(partitions=1)
    await ensure_topics(settings)
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap)
    await producer.start()
    outbox = Outbox(app_with(producer))
    await outbox.send(settings.topic_analysed, b"k", b"before")
    await outbox.flush()
    await producer.stop()
    with pytest.raises(ProducerClosed):
        await outbox.send(settings.topic_analysed, b"k", b"after")


async def test_a_large_record_takes_the_producers_checked_path(settings_factory: SettingsFactory) -> None:
    settings = settings_factory(partitions=1)
    await ensure_topics(settings)
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap)
    await producer.start()
    try:
        outbox = Outbox(app_with(producer))
        receipt = await outbox.track(settings.topic_dlq, b"k", b"x" * 300_000)
        await asyncio.wait_for(outbox.flush(), 20)
        assert (receipt.partition, receipt.offset) == (0, 0)  # from the record's own delivery
    finally:
        await producer.stop()
