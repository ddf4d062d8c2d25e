"""The sends of one batch: queued on the producer as the batch is processed, awaited together at its end.

:meth:`Outbox.flush` waits for every delivery and raises the first failure: an agent acks its batch
only after ``flush`` returned, and on a failure it :func:`~.dlq.halt`\\ s with the whole batch
unhandled, so a record that never reached Kafka is never committed (at least once: the records of
that batch that did land are sent again after the restart, and every consumer de-duplicates by id).

Two ways a record is queued:

* **the lane** (a running aiokafka producer, the worker): the record is appended straight to the
  producer's open record batch for its topic partition (aiokafka's C batch builder), and ``flush``
  awaits each touched *batch* once. ``app.producer.send`` costs ~17 µs a record (Faust's wrapper,
  aiokafka's metadata wait, serialisation, the pure-Python murmur2 partitioner, a future and a
  ``TopicPartition`` per record; measured on the detect processes: 19 % of their CPU), the lane
  ~2 µs. Records land exactly where aiokafka's default partitioner puts them (murmur2 of the key,
  cached per key: the keys are package names, which repeat), so the analysed topic stays keyed
  as before; the producer's linger, retries, ordering per partition and ``flush`` (Faust flushes
  before it commits) are unchanged, since the batch is the producer's own.
* **``app.producer.send``** otherwise (agent unit tests record it; a producer not started yet), and
  for a record too large for the lane's size check.

Values are serialised here with orjson, the codec of every JSON topic (``streams/codecs.py``); keys
are the raw bytes of the package key, as Faust's ``raw`` key serializer sends them.
"""

from __future__ import annotations

import asyncio
import copy
import random
import weakref
from collections.abc import Awaitable, Iterable
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer
from aiokafka.errors import ProducerClosed
from aiokafka.partitioner import murmur2
from aiokafka.structs import TopicPartition
from faust.types import AppT, Message

from typostream.agents.adapters import metrics
from typostream.agents.domain.errors import InvalidEventError
from typostream.agents.domain.messages import dead_letter, dead_letter_key
from typostream.agents.stream.dlq import _bytes

Headers = list[tuple[str, bytes]]

LANE_MAX_RECORD_BYTES = 256 * 1024
"""Larger records take ``app.producer.send`` (its size check against ``max_request_size``)."""
_HASHES_MAX = 1 << 17  # murmur2 of this many distinct keys cached (the cache is cleared when full)
_hashes: dict[bytes, int] = {}


def key_hash(key: bytes) -> int:
    """aiokafka's default partitioner hash of ``key`` (``murmur2(key) & 0x7fffffff``), cached."""
    value = _hashes.get(key)
    if value is None:
        if len(_hashes) >= _HASHES_MAX:
            _hashes.clear()
        value = _hashes[key] = murmur2(key) & 0x7FFFFFFF
    return value


class Receipt:
    """Where a tracked record landed; read it after :meth:`Outbox.flush` returned."""

    __slots__ = ("_delivery", "_partition", "_relative")

    def __init__(self, delivery: Any, relative: int, partition: int | None) -> None:
        self._delivery = delivery  # the record's future, or its batch's (then ``relative`` counts)
        self._relative = relative
        self._partition = partition

    @property
    def partition(self) -> int:
        if self._partition is not None:
            return self._partition
        return int(self._delivery.result().partition)

    @property
    def offset(self) -> int:
        return int(self._delivery.result().offset) + self._relative


class _Lane:
    """Appends records to the open batches of one running aiokafka producer."""

    __slots__ = ("__weakref__", "_accumulator", "_cluster", "_producer")

    def __init__(self, producer: AIOKafkaProducer) -> None:
        self._producer = producer
        self._accumulator: Any = producer._message_accumulator
        self._cluster: Any = producer.client.cluster

    async def partitions(self, topic: str) -> int:
        """The topic's partition count (waits for its metadata like ``producer.send``)."""
        found = self._cluster.partitions_for_topic(topic)
        if not found:
            await self._producer.client._wait_on_metadata(topic)
            found = self._cluster.partitions_for_topic(topic)
        return len(found)

    def append(
        self, topic: str, partition: int, key: bytes | None, value: bytes, headers: Headers | None
    ) -> tuple[Any, int]:
        """(the batch the record went into, its offset in the batch); raises if the producer failed."""
        accumulator = self._accumulator
        if accumulator._closed:
            raise ProducerClosed()
        if accumulator._exception is not None:
            raise copy.copy(accumulator._exception)
        tp = TopicPartition(topic, partition)
        queued = accumulator._batches.get(tp)
        if queued:
            batch = queued[-1]
            added = batch._builder.append(timestamp=None, key=key, value=value, headers=headers or [])
            if added is not None:
                return batch, added.offset
        # No open batch for the partition, or it is full: the next one (the first record of an
        # empty batch always fits). aiokafka's own ``send`` would wait here until the full batch
        # is sent; a batch of this agent is bounded, so at most a few batches queue per partition.
        batch = accumulator._append_batch(accumulator.create_builder(), tp)
        added = batch._builder.append(timestamp=None, key=key, value=value, headers=headers or [])
        return batch, added.offset

    def send_now(self, batches: Iterable[Any]) -> None:
        """Close ``batches`` to further records and wake the sender: they go out without lingering.

        The agent has queued all it has (it appends a whole batch of records before it awaits
        anything, so no record of it can be left behind); waiting out ``producer_linger`` would
        only add to the publish → threat latency. The next record for the partition starts a new
        batch.
        """
        for batch in batches:
            batch._builder.close()
        waiter = self._accumulator._waiter_future
        if not waiter.done():
            waiter.set_result(None)


_lanes: weakref.WeakKeyDictionary[AIOKafkaProducer, _Lane] = weakref.WeakKeyDictionary()


def _lane(app: AppT) -> _Lane | None:
    producer = getattr(app.producer, "_producer", None)  # Faust's aiokafka driver, once started
    if not isinstance(producer, AIOKafkaProducer) or producer._txn_manager is not None:
        return None
    lane = _lanes.get(producer)
    if lane is None:
        lane = _lanes[producer] = _Lane(producer)
    return lane


class Outbox:
    """Records for Kafka, queued now and confirmed by :meth:`flush`."""

    __slots__ = ("_batches", "_counts", "_lane", "_pending", "_rejected", "_send")

    def __init__(self, app: AppT) -> None:
        self._send = app.producer.send
        self._lane = _lane(app)
        self._counts: dict[str, int] = {}  # partitions per topic, read once per outbox
        self._batches: dict[int, Any] = {}  # the producer batches records went into, by id
        self._pending: list[Awaitable[Any]] = []
        self._rejected: list[str] = []

    def __len__(self) -> int:
        return len(self._pending) + len(self._batches)

    async def track(
        self,
        topic: str,
        key: bytes | None,
        value: bytes,
        headers: Headers | None = None,
        partition: int | None = None,
    ) -> Receipt:
        """Queue ``value`` (already serialised) for ``topic``; raises only if the producer refuses it.
        The receipt tells the record's offset once :meth:`flush` returned."""
        lane = self._lane
        if lane is None or len(value) > LANE_MAX_RECORD_BYTES:
            delivery = await self._send(topic, key, value, partition, None, headers)
            self._pending.append(delivery)
            return Receipt(delivery, 0, partition)
        if partition is None:
            count = self._counts.get(topic)
            if count is None:
                count = self._counts[topic] = await lane.partitions(topic)
            partition = key_hash(key) % count if key is not None else random.randrange(count)
        batch, relative = lane.append(topic, partition, key, value, headers)
        self._batches[id(batch)] = batch
        return Receipt(batch.future, relative, partition)

    send = track  # for the callers that need no receipt

    async def send_json(
        self, topic: str, key: bytes | None, value: Any, headers: Headers | None = None
    ) -> None:
        await self.send(topic, key, orjson.dumps(value), headers)

    async def dead_letter(
        self, topic: str, error: InvalidEventError, message: Message, value: bytes | None = None
    ) -> None:
        """Queue the bounded DLQ record of ``message`` (``value`` replaces its original bytes if given)."""
        original = _bytes(message.value if value is None else value)
        record = dead_letter(error, original, message.key, message.topic, message.partition, message.offset)
        await self.send_json(topic, dead_letter_key(message.key), record)
        self._rejected.append(error.reason)

    async def flush(self) -> None:
        """Wait until every queued record is delivered; the first failure is raised."""
        pending, self._pending = self._pending, []
        batches, self._batches = self._batches, {}
        if batches and self._lane is not None:
            self._lane.send_now(batches.values())
        for batch in batches.values():
            # Shielded: a cancelled agent must not cancel the producer's own batch future.
            await asyncio.shield(batch.future)
        for delivery in pending:
            await delivery
        rejected, self._rejected = self._rejected, []
        for reason in rejected:
            metrics.EVENTS_REJECTED.labels(reason).inc()
