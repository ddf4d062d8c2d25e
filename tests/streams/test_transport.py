"""End offsets from a fetch's high watermark, against the real embedded broker."""

from __future__ import annotations

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from faust.types import TP

from tests.conftest import SettingsFactory
from typostream.streams.topics import ensure_topics
from typostream.streams.transport import fetched_highwaters

pytestmark = pytest.mark.integration


async def test_fetched_highwater_counts_every_record_of_a_batch(settings_factory: SettingsFactory) -> None:
    settings = settings_factory(partitions=1)
    await ensure_topics(settings)
    topic = settings.topic_events
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, linger_ms=200)
    await producer.start()
    try:
        batch = producer.create_batch()
        for i in range(500):
            assert batch.append(key=None, value=b"x%d" % i, timestamp=None) is not None
        await (await producer.send_batch(batch, topic, partition=0))  # one 500-record batch
    finally:
        await producer.stop()

    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap)
    await consumer.start()
    try:
        listed = await consumer.end_offsets([TopicPartition(topic, 0)])
    finally:
        await consumer.stop()
    tp = TP(topic, 0)
    fixed = await fetched_highwaters([settings.kafka_bootstrap], {tp: listed[TopicPartition(topic, 0)]})
    assert fixed[tp] == 500
    print(f"ListOffsets said {listed[TopicPartition(topic, 0)]}, fetch said {fixed[tp]}")


async def test_empty_partitions_need_no_fetch() -> None:
    # Offsets of 0 are trusted as-is: nothing to fetch, no broker contacted.
    assert await fetched_highwaters(["127.0.0.1:1"], {TP("t", 0): 0}) == {TP("t", 0): 0}
