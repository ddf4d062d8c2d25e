"""A Faust transport adapted to the embedded broker (Tansu); harmless against real Kafka.

1. End offsets from a fetch's high watermark.

Tansu (the embedded broker) answers ListOffsets(latest) with the *base offset of the last
record batch + 1*, not the high watermark. Faust's table recovery trusts that number, so with
batched producing it stops reading a changelog early or raises ConsistencyError on restart.
A Fetch response carries the true high watermark, so this transport fetches one record at
the listed offset − 1 for each non-empty partition and takes the larger of the two. Against a
real Kafka cluster the two agree and the only cost is one small fetch per recovery.

2. A short fetch wait. Tansu does not answer a long-polling Fetch when new records arrive; it
waits the full ``fetch_max_wait_ms``, which Faust hard-codes to 1,500 ms, so every topic hop
added up to 1.5 s of latency (measured: 1.45 s median publish → threat). The wait comes from
the broker URL's ``fetch_max_wait_ms`` query parameter.

3. Commits never pass a message that was not acked (:meth:`Consumer._new_offset`).

Faust computes the offset to commit from the acked offsets, but it only refuses to commit when the
first acked offset is *more than one* past the committed one (``min(acked) - committed > 1``), and
not at all while nothing was committed yet (``committed`` is ``None`` or 0). So with committed = 10
and acked = [11, 12, 13] it commits 14 although offset 10 was never acked: a message still in
flight (an agent with ``concurrency > 1``, a batch being retried) or released by ``halt`` is lost
on the next restart. Here the head of the acked offsets must be the committed offset itself (or,
with nothing committed, the first offset read). Offsets that are missing from the log (a
compacted topic, transaction markers, a log start moved by retention) are counted as acked: the
first record read after a seek that lands past the committed offset marks the offsets before it
as a gap, and a gap inside the log covers the missing offsets only (Faust's own also covered the
record that revealed it, so a later ack could commit past that record too).

4. Messages reach the streams without Faust's per-message coroutines (:meth:`Consumer._drain_messages`).

Faust delivers each fetched record through three layers of coroutines: an async generator step
(flow, generation and assignment checks, the high watermark, the monitor), the conductor's
``on_message`` (an asyncio lock, flow control, the producer-buffer check reading a setting, Faust's
serializer registry even for ``raw`` topics, the event class looked up in the settings) and
``wait_first(callback, suspend_flow.wait())``: four asyncio tasks to put a message on a queue.
Measured: ~15 µs a message, a quarter of the CPU of the store process. Here the drain loop builds
a fetch's messages directly and runs the per-partition checks, flow control and the producer-buffer
check once per fetch, then delivers the records in Faust's order (round robin between topics and
between a topic's partitions, a record at a time). When every stream reading a partition takes its
key and value as raw bytes (all of typostream's agents), the conductor's handler is a
:class:`LeanDelivery`: a plain call puts the event Faust's ``raw`` decode would make on each
stream's queue, with the same pressure callbacks. Only a delivery that has to wait (a full stream
queue) or a partition read by another kind of stream (a table's changelog during recovery, a
model-typed topic: Faust's own handler) runs as a coroutine under Faust's ``wait_first(...,
suspend_flow.wait())``, so a rebalance still interrupts it.

Selected with the ``typostream+kafka://`` broker scheme (``Settings.highwater_from_fetch``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Coroutine, Generator, Iterable, Mapping
from typing import Any, cast

from aiokafka import AIOKafkaConsumer, TopicPartition
from faust.serializers.schemas import Schema
from faust.topics import Topic
from faust.transport import conductor as faust_conductor
from faust.transport import drivers
from faust.transport.consumer import CONSUMER_FETCHING, ensure_TP
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP, Message
from faust.types.tuples import ConsumerMessage
from faust.utils.functional import consecutive_numbers
from mode import ServiceT

SCHEME = "typostream+kafka"
FETCH_TIMEOUT_S = 10.0
YIELD_EVERY = 256  # messages delivered between two yields to the event loop (Faust's loop: 100)


async def fetched_highwaters(bootstrap_servers: list[str], listed: Mapping[TP, int]) -> dict[TP, int]:
    """Correct ``listed`` end offsets with the high watermark a fetch reports."""
    result = dict(listed)
    wanted = {TopicPartition(tp.topic, tp.partition): tp for tp, offset in listed.items() if offset > 0}
    if not wanted:
        return result
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap_servers, group_id=None, enable_auto_commit=False, max_poll_records=1
    )
    await consumer.start()
    try:
        consumer.assign(list(wanted))
        for atp, tp in wanted.items():
            consumer.seek(atp, listed[tp] - 1)
        pending = set(wanted)
        deadline = time.monotonic() + FETCH_TIMEOUT_S
        while pending and time.monotonic() < deadline:
            await consumer.getmany(*pending, timeout_ms=200, max_records=1)
            for atp in list(pending):
                highwater = consumer.highwater(atp)
                if highwater is not None:
                    tp = wanted[atp]
                    result[tp] = max(result[tp], highwater)
                    pending.discard(atp)
    finally:
        await consumer.stop()
    return result


class FetchHighwaterConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    def _create_worker_consumer(self, transport: faust_aiokafka.Transport) -> AIOKafkaConsumer:
        consumer = super()._create_worker_consumer(transport)
        wait_ms = transport.url[0].query.get("fetch_max_wait_ms")
        if wait_ms is not None:
            consumer._fetch_max_wait_ms = int(wait_ms)  # read when the consumer starts its fetcher
        return consumer

    async def _highwaters(self, partitions: list[TP]) -> Mapping[TP, int]:
        listed = await super()._highwaters(partitions)
        if self.consumer.in_transaction:
            return listed
        servers = [f"{url.host}:{url.port or 9092}" for url in self.transport.url]
        return await fetched_highwaters(servers, listed)


class _Resume:
    """The rest of a coroutine that, stepped once by hand, suspended on ``blocked``.

    Awaiting it hands ``blocked`` to the running task, then drives the coroutine on exactly as a
    task would (values and exceptions sent in, futures passed out) until it returns.
    """

    __slots__ = ("_blocked", "_coro")

    def __init__(self, coro: Coroutine[Any, Any, Any], blocked: Any) -> None:
        self._coro = coro
        self._blocked = blocked

    def __await__(self) -> Generator[Any, Any, Any]:
        coro, pending = self._coro, self._blocked
        while True:
            try:
                sent = yield pending
            except GeneratorExit:
                coro.close()
                raise
            except BaseException as exc:  # cancellation and the like: into the coroutine
                try:
                    pending = coro.throw(exc)
                except StopIteration as stop:
                    return stop.value
            else:
                try:
                    pending = coro.send(sent)
                except StopIteration as stop:
                    return stop.value


class Consumer(faust_aiokafka.Consumer):
    """Faust's aiokafka consumer with exact commit offsets and a cheaper drain loop (items 3 and 4)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._fresh_tps: set[TP] = set()  # the next record read is the first since a seek
        self._heads: dict[TP, int] = {}  # first offset read, for partitions with nothing committed

    def _new_consumer_thread(self) -> faust_aiokafka.AIOKafkaConsumerThread:
        return FetchHighwaterConsumerThread(self, loop=self.loop, beacon=self.beacon)

    # -- commit offsets ------------------------------------------------------------------------

    def _new_offset(self, tp: TP) -> int | None:
        """The offset to commit for ``tp``: one past the acked run that starts at the head, or None.

        The head is the committed offset (the next message to process), or while nothing is
        committed the first offset read. A head that is not acked holds the commit back, however
        many offsets after it are.
        """
        acked = self._acked[tp]
        if not acked:
            return None
        max_offset = max(acked)
        gaps = self._gap[tp]
        if gaps:  # offsets missing from the log, up to the highest acked one, count as acked
            candidates = gaps.overlap(0, max_offset)
            if candidates:
                missing = {offset for gap in candidates for offset in range(gap.begin, gap.end)}
                gaps.chop(0, max(max(missing), max_offset) + 1)
                acked.extend(missing.difference(acked))
        acked.sort()
        committed = self._committed_offset[tp]
        head = committed if committed is not None else self._heads.get(tp)
        if head is not None and acked[0] > head:
            return None  # the head (at least) is not acked yet
        batch = next(consecutive_numbers(acked))
        acked[: len(batch)] = []
        self._acked_index[tp].difference_update(batch)
        return int(batch[-1]) + 1

    def _mark_gap(self, tp: TP, start: int, end: int) -> None:
        """Offsets ``start`` .. ``end - 1`` are not in the log: nothing will ever ack them."""
        committed = self._committed_offset[tp]
        if committed is not None:
            start = max(start, committed)
        if start < end:
            gaps = self._gap[tp]
            gaps.addi(start, end)
            gaps.merge_overlaps()

    def _first_read(self, tp: TP, offset: int, acks_enabled: bool) -> None:
        committed = self._committed_offset[tp]
        if committed is None:
            self._heads[tp] = offset
        elif offset > committed and acks_enabled:
            self._mark_gap(tp, committed, offset)  # e.g. retention moved the log start past it

    async def perform_seek(self) -> None:
        await super().perform_seek()
        self._seeked(self.assignment())

    async def seek(self, partition: TP, offset: int) -> None:
        await super().seek(partition, offset)
        self._seeked([ensure_TP(partition)])

    def _seeked(self, tps: Iterable[TP]) -> None:
        for tp in tps:
            self._fresh_tps.add(tp)
            self._heads.pop(tp, None)

    async def on_partitions_revoked(self, revoked: set[TP]) -> None:
        for tp in revoked:
            self._fresh_tps.discard(tp)
            self._heads.pop(tp, None)
        await super().on_partitions_revoked(revoked)

    # -- the drain loop ------------------------------------------------------------------------

    async def _drain_messages(self, fetcher: ServiceT) -> None:  # pragma: no cover - needs a broker
        """Faust's ``Consumer._drain_messages`` and ``getmany`` (faust-streaming 0.15) in one loop
        (item 4), gaps computed by :meth:`_mark_gap` / :meth:`_first_read`."""
        consumer_should_stop = cast(Any, self)._stopped.is_set
        fetcher_should_stop = cast(Any, fetcher)._stopped.is_set
        set_flag, unset_flag = self.diag.set_flag, self.diag.unset_flag
        try:
            while not (consumer_should_stop() or fetcher_should_stop()):
                set_flag(CONSUMER_FETCHING)
                await self.sleep(0)
                if not self.should_stop:
                    records, active_partitions = await self._wait_next_records(1.0)
                    if records and not self.should_stop:
                        await self._deliver(records, active_partitions)
                unset_flag(CONSUMER_FETCHING)
        except self.consumer_stopped_errors:
            if self.transport.app.should_stop:
                self.log.info("Broker stopped consumer, shutting down...")
                return
            raise
        except asyncio.CancelledError:
            if self.transport.app.should_stop:
                self.log.info("Consumer shutting down for user cancel.")
                return
            raise
        except Exception as exc:
            self.log.exception("Drain messages raised: %r", exc)
            raise
        finally:
            unset_flag(CONSUMER_FETCHING)

    async def _deliver(self, records: Mapping[TP, list[Any]], active_partitions: set[TP] | None) -> None:
        """Hand one fetch's records to the streams, a record at a time in Faust's order: round robin
        between topics and, within a topic, between its partitions (``DefaultSchedulingStrategy``)."""
        app = self.app
        if not self.flow_active:
            # Faust's getmany: records fetched while flow stopped (a rebalance) are not delivered.
            try:
                await self.perform_seek()
            except Exception as exc:
                self.log.warning(f"exception performing seek when flow not active {exc}")
            return
        generation_id = app.consumer_generation_id
        callbacks = cast(Any, app.topics)._tp_to_callback
        read_offsets = self._read_offset
        buffered = self._buffered_partitions
        track_end_offset = app.monitor.track_tp_end_offset
        messages: dict[TP, list[ConsumerMessage]] = {}
        lean = False
        for tp, tp_records in records.items():
            if active_partitions is not None and tp not in active_partitions and tp not in buffered:
                continue
            track_end_offset(tp, self.highwater(tp))
            found = self._messages(tp, tp_records, generation_id, read_offsets.get(tp))
            if found:
                messages[tp] = found
                lean = lean or type(callbacks.get(tp)) is LeanDelivery
        if not messages:
            return
        commit_every = self._commit_every
        if commit_every is not None and self._n_acked >= commit_every:
            self._n_acked = 0
            await self.commit()
        if lean:  # what Faust's handler awaits before each message, once for the fetch
            await self._interruptible(app.flow_control.acquire())
            await self._interruptible(app.producer.buffer.wait_until_ebb())
        if len(messages) == 1:
            [(only, found)] = messages.items()
            order: Iterable[tuple[TP, ConsumerMessage]] = ((only, message) for message in found)
        else:
            order = self.scheduler.iterate(messages)
        callback = self.callback
        since_yield = 0
        for tp, message in order:
            since_yield += 1
            if since_yield >= YIELD_EVERY:  # let the agents run during a large fetch
                since_yield = 0
                await asyncio.sleep(0)
            if not self.flow_active or app.consumer_generation_id != generation_id:
                break  # a rebalance began: the rest is read again from the committed offsets
            handler = callbacks.get(tp)
            if type(handler) is LeanDelivery:
                if handler.put_now(message):
                    read_offsets[tp] = message.offset
                    continue
                await self._interruptible(handler.put(message))  # a stream's queue is full
            else:
                await self._interruptible(cast(Coroutine[Any, Any, Any], callback(message)))  # on_message
            read_offsets[tp] = message.offset

    async def _interruptible(self, delivery: Coroutine[Any, Any, Any]) -> None:
        """Run ``delivery``; if it has to wait, a rebalance (``suspend_flow``) interrupts it."""
        try:
            blocked = delivery.send(None)
        except StopIteration:
            return  # done without waiting: the usual case
        await self.wait_first(_Resume(delivery, blocked), self.suspend_flow.wait())

    def _messages(
        self, tp: TP, tp_records: list[Any], generation_id: int, r_offset: int | None
    ) -> list[ConsumerMessage]:
        """The records as Faust messages (``_to_message``), those below the read offset dropped (as
        Faust does), with the gaps before and between them marked."""
        fresh = self._fresh_tps
        acks_enabled = self.app.topics.acks_enabled_for(tp.topic)
        out: list[ConsumerMessage] = []
        append = out.append
        for record in tp_records:
            offset = record.offset
            if r_offset is not None and offset < r_offset:
                continue  # read again below the read offset: Faust drops it too
            if r_offset is None or (fresh and tp in fresh):
                fresh.discard(tp)
                self._first_read(tp, offset, acks_enabled)
            elif offset - r_offset > 1 and acks_enabled:
                self._mark_gap(tp, r_offset + 1, offset)
            timestamp = record.timestamp
            append(
                ConsumerMessage(
                    record.topic,
                    record.partition,
                    offset,
                    timestamp / 1000.0 if timestamp is not None else cast(float, None),  # as Faust
                    record.timestamp_type,
                    record.headers,
                    record.key,
                    record.value,
                    record.checksum,
                    record.serialized_key_size,
                    record.serialized_value_size,
                    tp,
                    generation_id=generation_id,
                )
            )
            r_offset = offset
        return out


class LeanDelivery:
    """The conductor's handler for a partition whose every stream takes raw key and value bytes.

    Each message becomes the event Faust's ``raw`` decode makes (key and value as they came,
    ``app.conf.Event``), put on every stream's queue as Faust's conductor does: one event shared by
    the streams, a reference per stream, the pressure callbacks that pause and resume fetching the
    partition, a waiting put when a queue is full. :meth:`put_now` does it without a coroutine when
    no queue is full (the drain loop checks flow control and the producer buffer once per fetch);
    calling it is Faust's handler interface (:meth:`put`, also the full-queue path).
    """

    __slots__ = ("_acquire", "_app", "_channels", "_ebb", "_event", "_n", "_on_full", "_pressure", "_queues")

    def __init__(self, conductor: Any, tp: TP, channels: Iterable[Any]) -> None:
        app = conductor.app
        self._app = app
        self._channels = list(channels)
        self._queues = [channel.queue for channel in self._channels]
        self._n = len(self._queues)
        self._event = app.conf.Event
        self._acquire = app.flow_control.acquire
        self._ebb = app.producer.buffer.wait_until_ebb
        on_topic_buffer_full = app.sensors.on_topic_buffer_full
        consumer_on_buffer_full = app.consumer.on_buffer_full
        consumer_on_buffer_drop = app.consumer.on_buffer_drop

        def on_pressure_high() -> None:
            on_topic_buffer_full(tp)
            consumer_on_buffer_full(tp)

        def on_pressure_drop() -> None:
            consumer_on_buffer_drop(tp)

        self._pressure = {"on_pressure_high": on_pressure_high, "on_pressure_drop": on_pressure_drop}
        self._on_full = lambda: on_topic_buffer_full(tp)

    @staticmethod
    def serves(channels: Iterable[Any]) -> bool:
        """True if every channel is a plain topic stream decoding raw keys and values."""
        found = False
        for channel in channels:
            schema = getattr(channel, "schema", None)
            if (
                not isinstance(channel, Topic)
                or type(schema) is not Schema
                or schema.key_type is not None
                or schema.value_type is not None
                or schema.key_serializer != "raw"
                or schema.value_serializer != "raw"
            ):
                return False
            found = True
        return found

    def put_now(self, message: Message) -> bool:
        """Deliver ``message`` if no stream's queue is full (True); else nothing happened (False)."""
        queues = self._queues
        for queue in queues:
            if queue.full():
                return False
        message.incref(self._n)
        event = self._event(self._app, message.key, message.value, message.headers, message)
        pressure = self._pressure
        for queue in queues:
            queue.put_nowait_enhanced(event, **pressure)
        return True

    async def put(self, message: Message) -> None:
        """Deliver ``message``, waiting for flow control, the producer buffer and full queues."""
        await self._acquire()
        await self._ebb()
        message.incref(self._n)
        event = self._event(self._app, message.key, message.value, message.headers, message)
        for channel, queue in zip(self._channels, self._queues, strict=True):
            if queue.full():
                self._on_full()
                await channel.put(event)
            else:
                queue.put_nowait_enhanced(event, **self._pressure)

    async def __call__(self, message: Message) -> None:
        await self.put(message)


class Conductor(faust_conductor.Conductor):
    """Faust's conductor, with :class:`LeanDelivery` for the partitions it serves."""

    def _build_handler(self, tp: TP, channels: Any) -> Any:
        if LeanDelivery.serves(channels):
            return LeanDelivery(self, tp, channels)
        return super()._build_handler(tp, channels)


class Transport(faust_aiokafka.Transport):
    Consumer = Consumer
    Conductor = Conductor


def register_transport() -> None:
    """Make ``typostream+kafka://`` resolve to this transport (idempotent)."""
    drivers.TRANSPORTS.aliases[SCHEME] = f"{__name__}:Transport"
