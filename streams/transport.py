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

4. Messages are handed to the streams without four tasks each (:meth:`Consumer._drain_messages`).

Faust's drain loop awaits ``wait_first(callback(message), suspend_flow.wait())`` for every message:
four asyncio tasks (the callback, the flow event, the service's stopped and crashed events) to
deliver a message that almost always goes straight into a stream's queue. Here the callback runs
at once; only when it has to wait (a full stream queue, flow control during a rebalance) does the
rest of it run under the same ``wait_first``, so a rebalance still interrupts it as before.

Selected with the ``typostream+kafka://`` broker scheme (``Settings.highwater_from_fetch``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Coroutine, Generator, Iterable, Mapping
from typing import Any, cast

from aiokafka import AIOKafkaConsumer, TopicPartition
from faust.transport import drivers
from faust.transport.consumer import CONSUMER_FETCHING, ensure_TP
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP
from faust.utils.functional import consecutive_numbers
from mode import ServiceT

SCHEME = "typostream+kafka"
FETCH_TIMEOUT_S = 10.0


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
        """Faust's ``Consumer._drain_messages`` (faust-streaming 0.15), with the callback run at once
        and gaps computed by :meth:`_mark_gap` / :meth:`_first_read`."""
        callback = self.callback
        getmany = self.getmany
        consumer_should_stop = cast(Any, self)._stopped.is_set
        fetcher_should_stop = cast(Any, fetcher)._stopped.is_set
        get_read_offset = self._read_offset.__getitem__
        set_read_offset = self._read_offset.__setitem__
        set_flag, unset_flag = self.diag.set_flag, self.diag.unset_flag
        commit_every = self._commit_every
        acks_enabled_for = self.app.topics.acks_enabled_for
        fresh = self._fresh_tps
        yield_every = 100
        num_since_yield = 0
        sleep = asyncio.sleep
        try:
            while not (consumer_should_stop() or fetcher_should_stop()):
                set_flag(CONSUMER_FETCHING)
                ait = getmany(timeout=1.0)
                await self.sleep(0)
                if not self.should_stop:
                    async for tp, message in ait:
                        num_since_yield += 1
                        if num_since_yield > yield_every:
                            await sleep(0)
                            num_since_yield = 0
                        offset = message.offset
                        r_offset = get_read_offset(tp)
                        if r_offset is not None and offset < r_offset:
                            continue  # read again below the read offset: Faust drops it too
                        if r_offset is None or (fresh and tp in fresh):
                            fresh.discard(tp)
                            self._first_read(tp, offset, acks_enabled_for(message.topic))
                        elif offset - r_offset > 1 and acks_enabled_for(message.topic):
                            self._mark_gap(tp, r_offset + 1, offset)
                        if commit_every is not None and self._n_acked >= commit_every:
                            self._n_acked = 0
                            await self.commit()
                        delivery: Any = callback(message)  # the conductor's on_message coroutine
                        try:
                            blocked = delivery.send(None)
                        except StopIteration:
                            pass  # delivered without waiting: the usual case
                        else:  # it waits (full queue, flow control): let a rebalance interrupt it
                            await self.wait_first(_Resume(delivery, blocked), self.suspend_flow.wait())
                        set_read_offset(tp, offset)
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


class Transport(faust_aiokafka.Transport):
    Consumer = Consumer


def register_transport() -> None:
    """Make ``typostream+kafka://`` resolve to this transport (idempotent)."""
    drivers.TRANSPORTS.aliases[SCHEME] = f"{__name__}:Transport"
