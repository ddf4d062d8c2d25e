"""Agent ``packages``: analysed events (keyed by package) → the ``packages`` table, in batches.

Why a table agent of its own: the input topic is not keyed (package-feeds events land on any
partition), and a Faust table lives in the partition of the event that writes it, so a table fed
from the input would keep one package's state in several partitions, on several workers. The
analysed topic is keyed by ``registry:name``: every event of a package reaches this agent on one
partition, in the order ``detect`` sent them, which is the order the table folds them in. The
riskiest threat of an event comes in the analysed record's ``typostream-last-threat`` header.

Per batch, each package's events are folded into its state in memory and the table is written
once per package, only when the state changed (a redelivered event changes nothing). A write is
what ``table[key] = state`` does (the RocksDB store of the event's partition, a changelog record
to the same partition), except that the changelog records go through the producer directly and
their deliveries are awaited before the store is written and the batch acked: Faust's own
changelog path queues them in a buffer that stalls every consumer once it holds more than 100
records, and does not wait for them before committing. Each delivered changelog offset is persisted
in the store, as Faust's ``Table._on_changelog_sent`` does, so recovery replays the changelog from
there. Reads and writes go to the partition's RocksDB database directly, in the bytes Faust's
store uses (:class:`_Store`), and a partition's writes of a batch are one RocksDB write batch.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import orjson
import rocksdict
from faust import StreamT
from faust.stores.rocksdb import Store as RocksDBStore
from faust.streams import _current_event  # the event Faust's stores and tables take the partition from
from faust.types import TP, AppT, EventT
from faust.types.tables import TableT

from typostream.agents.domain.errors import internal_error
from typostream.agents.domain.messages import update_package_state
from typostream.agents.stream.batches import json_value, take_batches
from typostream.agents.stream.context import StreamContext
from typostream.agents.stream.detect import LAST_THREAT_HEADER
from typostream.agents.stream.dlq import halt, release
from typostream.agents.stream.outbox import Outbox

log = logging.getLogger("typostream.packages")

BATCH = 2000
BATCH_WAIT_S = 0.05


def register(ctx: StreamContext) -> None:
    app, source, packages = ctx.app, ctx.topics.analysed, ctx.tables.packages
    dlq = ctx.topics.dlq.get_topic_name()

    @app.agent(source, name="packages")
    async def track(stream: StreamT) -> None:
        async for batch in take_batches(stream, BATCH, BATCH_WAIT_S):
            outbox = Outbox(app)
            try:
                changed = await fold(packages, batch, outbox, dlq)
                await write(app, packages, changed, outbox)
            except asyncio.CancelledError:
                release(batch)
                raise
            except Exception as exc:  # a changelog record or a dead letter could not be delivered
                await halt(app, [stream], source, batch, exc)
                return
            finally:
                _current_event.set(None)


async def fold(
    packages: TableT, batch: Sequence[EventT], outbox: Outbox, dlq: str
) -> dict[str, tuple[EventT, dict[str, Any]]]:
    """Each package's new state after the batch, with its last event; unchanged packages left out."""
    store = _Store.of(packages)
    before: dict[str, Any] = {}
    after: dict[str, tuple[EventT, dict[str, Any]]] = {}
    for event in batch:
        message = event.message
        try:
            value = json_value(event)
            key = message.key.decode() if message.key is not None else None
            if key is None:
                raise ValueError("an analysed record without a package key")
            if key in after:
                previous: Any = after[key][1]
            else:
                previous = before[key] = store.get(key, event)
            state = update_package_state(previous, value)
            headers: Any = message.headers or ()
            for name, header in headers.items() if isinstance(headers, Mapping) else headers:
                if name == LAST_THREAT_HEADER:
                    state["last_threat"] = orjson.loads(header)
            after[key] = (event, state)
        except Exception as exc:  # a record detect never sends (a bug upstream): dead-letter it
            log.exception("packages failed on %s[%s]@%s", message.topic, message.partition, message.offset)
            await outbox.dead_letter(dlq, internal_error(exc), message)
    return {key: entry for key, entry in after.items() if entry[1] != before[key]}


async def write(
    app: AppT, packages: TableT, changed: dict[str, tuple[EventT, dict[str, Any]]], outbox: Outbox
) -> None:
    """Changelog each changed state to its event's partition and, once delivered, store it there.

    The store is written after the deliveries: a batch whose changelog records did not all land
    is redelivered and must find the old states, or it would see nothing left to change.
    """
    store = _Store.of(packages)
    changelog = packages.changelog_topic.get_topic_name()
    receipts, writes = [], []
    for key, (event, state) in changed.items():
        encoded_key, encoded = store.encode_key(key), orjson.dumps(state)
        partition = event.message.partition
        receipts.append(await outbox.track(changelog, encoded_key, encoded, None, partition))
        writes.append((key, event, state, encoded))
    await outbox.flush()
    highest: dict[int, int] = {}
    for receipt in receipts:
        partition = receipt.partition
        highest[partition] = max(highest.get(partition, -1), receipt.offset)
    store.put_all(writes)
    for partition, offset in highest.items():
        store.set_persisted_offset(TP(changelog, partition), offset)


_KEYS_MAX = 1 << 16


class _Store:
    """The table's store, read and written per partition without Faust's per-key machinery.

    With Faust's RocksDB store (the worker) a read or write goes straight to the partition's
    database: the key encoded by the table's key serializer (cached: package keys repeat), the
    value with orjson, the table's value codec (``streams/codecs.py``; the stored bytes are the
    same as Faust's ``store[key] = state`` writes). Faust's own path costs ~25 µs a package
    (serializer registry lookups, the current-event lookup, an LRU key index under a lock). Any
    other store (``memory://`` in agent unit tests) is used through its mapping interface, with
    the event that Faust's stores take the partition from.
    """

    __slots__ = ("__weakref__", "_encoded", "_rocks", "_store")

    def __init__(self, table: TableT) -> None:
        self._store: Any = table.data  # Faust's Store (typed as a plain mapping)
        self._rocks = (
            isinstance(self._store, RocksDBStore) and not table.is_global and not table.use_partitioner
        )
        self._encoded: dict[str, bytes] = {}

    @classmethod
    def of(cls, table: TableT) -> _Store:
        """The one per table (keyed by identity: a table is a mapping, compared by contents)."""
        entry = _stores.get(id(table))
        if entry is None or entry[0]() is not table or entry[1]._store is not table.data:
            entry = _stores[id(table)] = (weakref.ref(table), cls(table))
        return entry[1]

    def encode_key(self, key: str) -> bytes:
        encoded = self._encoded.get(key)
        if encoded is None:
            if len(self._encoded) >= _KEYS_MAX:
                self._encoded.clear()
            # A copy of exactly its size: orjson's result keeps the capacity it wrote into (4 KiB
            # here), 12 MB for 3,000 cached keys (measured).
            encoded = self._encoded[key] = memoryview(self._store._encode_key(key)).tobytes()
        return encoded

    def get(self, key: str, event: EventT) -> Any:
        if self._rocks:
            raw = self._store._db_for_partition(event.message.partition).get(self.encode_key(key))
            return None if raw is None else orjson.loads(raw)
        _current_event.set(weakref.ref(event))  # the store reads this event's partition
        return self._store.get(key)

    def put_all(self, items: Iterable[tuple[str, EventT, dict[str, Any], bytes]]) -> None:
        """Store each (key, event, state, the state encoded) in its event's partition."""
        if not self._rocks:
            for key, event, state, _ in items:
                _current_event.set(weakref.ref(event))  # the store writes this event's partition
                self._store[key] = state
            return
        batches: dict[int, Any] = {}
        for key, event, _, encoded in items:
            partition = event.message.partition
            writes = batches.get(partition)
            if writes is None:
                writes = batches[partition] = rocksdict.WriteBatch(raw_mode=True)
            writes.put(self.encode_key(key), encoded)
        for partition, writes in batches.items():
            self._store._db_for_partition(partition).write(writes)

    def set_persisted_offset(self, tp: TP, offset: int) -> None:
        self._store.set_persisted_offset(tp, offset)


_stores: dict[int, tuple[weakref.ref[TableT], _Store]] = {}
