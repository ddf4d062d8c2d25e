"""A worker that meets a broker which lost its data recovers by itself instead of crash-looping.

The embedded broker with ``memory://`` storage forgets every topic, record and committed offset
when it stops. The worker does not: its RocksDB tables remember, per changelog partition, the
offset of the last changelog record they applied, and Faust remembers the consumer positions it
read. Against the emptied broker both point past the high-water mark, and then

- Faust's table recovery raises ``ConsistencyError`` (persisted offset > high-water) on every
  start, until someone deletes the worker's data dir;
- a committed offset past the end makes the consumer wait at that offset: every new record below
  it is skipped.

Two pieces fix that at the root:

``recover_before_start`` runs before Faust starts (``prepare_worker``). It compares each local
table partition's persisted offset with its changelog's high-water mark and each committed
offset of the consumer group with its topic's high-water mark. A table partition that is ahead
has its RocksDB files dropped, so Faust rebuilds it from the changelog (the broker's copy is the
source of truth); a committed offset that is ahead moves back to the log start. One warning line
says what was done.

``BrokerWatch`` runs inside a live worker (a Faust timer). It notices the broker losing its data
(a topic vanished, changed its partition count or its end offset went back), logs one warning,
recreates the topics, leaves a marker in the worker dir and stops the worker gracefully;
``typostream worker`` then starts again in the same process (``restart_if_requested``) and the
marker makes ``recover_before_start`` rebuild all local state. Restarting is simpler and safer
than patching a running Faust app whose in-memory offsets, tables and gaps all describe data that
no longer exists.

Events the broker itself dropped before the worker read them are gone (memory storage): nothing
on the worker side can bring them back. ``typostream stack up --durable`` keeps broker data.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.client import AIOKafkaClient
from aiokafka.protocol.metadata import MetadataRequest
from aiokafka.protocol.offset import OffsetRequest
from aiokafka.structs import OffsetAndMetadata
from faust.stores.rocksdb import Store as RocksDBStore
from faust.types import TP

from typostream.streams.config import Settings
from typostream.streams.topics import ensure_topics, topic_specs
from typostream.streams.transport import fetched_highwaters

if TYPE_CHECKING:
    from typostream.streams.app import WorkerApp

log = logging.getLogger(__name__)

LOSS_MARKER = "broker-data-lost"
"""File in the worker dir: the broker lost its data while this worker ran (holds the reason)."""
WATCH_INTERVAL_S = 2.0
RESTART_DELAY_S = 1.0
_OFFSET_KEY = RocksDBStore.offset_key
_BROKER_TIMEOUT_S = 15.0


@dataclass
class LocalTable:
    """One RocksDB partition of a table on disk, with the changelog partition it replays."""

    changelog: TP
    path: Path
    persisted_offset: int | None


@dataclass
class RecoveryReport:
    """What ``recover_before_start`` changed (empty when the broker and the worker agree)."""

    reason: str = ""
    dropped: list[LocalTable] = field(default_factory=list)
    offsets_reset: dict[TP, tuple[int, int]] = field(default_factory=dict)
    highwaters: dict[TP, int] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.dropped or self.offsets_reset)

    def line(self) -> str:
        parts = []
        if self.dropped:
            tables = ", ".join(
                f"{t.changelog.topic}[{t.changelog.partition}] at {t.persisted_offset}"
                f" (end {self.highwaters.get(t.changelog, 0)})"
                for t in self.dropped
            )
            parts.append(f"dropped local table partitions {tables}: Faust rebuilds them from the changelog")
        if self.offsets_reset:
            moved = ", ".join(
                f"{tp.topic}[{tp.partition}] {old}->{new}"
                for tp, (old, new) in sorted(self.offsets_reset.items())
            )
            parts.append(f"moved committed offsets back to the log start: {moved}")
        return (
            f"the broker lost data ({self.reason}); {'; '.join(parts)}. "
            "Events the broker dropped before they were processed are lost "
            "(`typostream stack up --durable` keeps them)"
        )


def local_tables(pipeline: WorkerApp) -> list[LocalTable]:
    """Every RocksDB table partition present in the worker dir, with its persisted offset."""
    found = []
    for table in pipeline.app.tables.values():
        store = table.data
        if not isinstance(store, RocksDBStore):
            continue
        topic = table.changelog_topic.get_topic_name()
        stem = store.partition_path(0).name.rsplit("-", 1)[0]
        for path in sorted(store.partition_path(0).parent.glob(f"{stem}-*.db")):
            suffix = path.name[len(stem) + 1 : -len(".db")]
            if suffix.isdigit():
                found.append(LocalTable(TP(topic, int(suffix)), path, persisted_offset(path)))
    return found


def persisted_offset(path: Path) -> int | None:
    """The offset Faust stored in one partition's RocksDB (``None``: no offset, or unreadable)."""
    from rocksdict import AccessType, Options, Rdict

    try:
        db = Rdict(str(path), options=Options(raw_mode=True), access_type=AccessType.read_only())
    except Exception:  # a half-written or foreign directory: leave it to Faust
        return None
    try:
        raw = db.get(_OFFSET_KEY)
    finally:
        db.close()
    return int(raw) if raw is not None else None


def consumed_topics(settings: Settings) -> list[str]:
    """Topics whose offsets the worker's consumer group commits (all but the table changelogs)."""
    from typostream.streams.topics import changelog_topic

    changelog = changelog_topic(settings)
    return [spec.name for spec in topic_specs(settings) if spec.name != changelog]


def recover_before_start(pipeline: WorkerApp) -> RecoveryReport:
    """Drop table partitions and move back committed offsets that are ahead of the broker.

    With a loss marker left by ``BrokerWatch`` every local table partition is dropped and every
    committed offset moves back to the log start: whatever the broker holds now was written after
    it lost its data, and the stopping worker may have committed positions from before.
    """
    settings = pipeline.settings
    marker = settings.worker_dir / LOSS_MARKER
    marked = marker.read_text(encoding="utf-8").strip() if marker.exists() else ""
    tables = local_tables(pipeline)
    report = asyncio.run(
        asyncio.wait_for(
            _compare_with_broker(settings, tables, everything=bool(marked)), _BROKER_TIMEOUT_S * 2
        )
    )
    for table in report.dropped:
        shutil.rmtree(table.path, ignore_errors=True)
    if report:
        report.reason = marked or report.reason
        log.warning("%s", report.line())
    marker.unlink(missing_ok=True)
    return report


async def _compare_with_broker(
    settings: Settings, tables: Sequence[LocalTable], *, everything: bool
) -> RecoveryReport:
    report = RecoveryReport()
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap,
        group_id=settings.app_id,
        enable_auto_commit=False,
        request_timeout_ms=int(_BROKER_TIMEOUT_S * 1000),
    )
    await consumer.start()
    try:
        await consumer.topics()  # metadata of every topic, which creates none
        group_tps = [
            TopicPartition(topic, p)
            for topic in consumed_topics(settings)
            for p in sorted(consumer.partitions_for_topic(topic) or ())
        ]
        changelog_tps = [TopicPartition(t.changelog.topic, t.changelog.partition) for t in tables]
        wanted = sorted(set(group_tps) | set(changelog_tps))
        listed = await consumer.end_offsets(wanted) if wanted else {}
        ends = await fetched_highwaters(
            settings.kafka_bootstrap.split(","),
            {TP(tp.topic, tp.partition): off for tp, off in listed.items()},
        )
        report.highwaters = ends
        for table in tables:
            end = ends.get(table.changelog, 0)
            # Faust's persisted offset is the last record it applied: it must be below the end.
            if table.persisted_offset is not None and (everything or table.persisted_offset >= end):
                report.dropped.append(table)
        ahead: dict[TopicPartition, int] = {}
        for tp in group_tps:
            committed = await consumer.committed(tp)
            end = ends.get(TP(tp.topic, tp.partition), 0)
            if committed is not None and committed > 0 and (everything or committed > end):
                ahead[tp] = committed
        if ahead:
            starts = await consumer.beginning_offsets(list(ahead))
            ahead = {tp: old for tp, old in ahead.items() if old != starts[tp]}
        if ahead:
            consumer.assign(list(ahead))
            await consumer.commit({tp: OffsetAndMetadata(starts[tp], "") for tp in ahead})
            report.offsets_reset = {
                TP(tp.topic, tp.partition): (old, starts[tp]) for tp, old in ahead.items()
            }
        if report.dropped:
            report.reason = "table changelogs end before the offsets the local tables persisted"
        elif report.offsets_reset:
            report.reason = "committed offsets are past the end of their topics"
    finally:
        await consumer.stop()
    return report


class BrokerWatch:
    """Notice, while the worker runs, that the broker lost its data.

    Each ``check`` asks for the partitions and end offsets of ``topics`` (never creating one: a
    metadata request naming a topic would make Tansu create it with 4 partitions). Compared with
    the previous check, a topic that vanished, changed its partition count or whose end offset
    went back means the broker lost data. End offsets only grow otherwise (retention and
    compaction move the log start, not the end).
    """

    def __init__(self, bootstrap: str, topics: Iterable[str]) -> None:
        self.bootstrap = bootstrap
        self.topics = sorted(set(topics))
        self._client: AIOKafkaClient | None = None
        self._seen: dict[str, dict[int, int]] = {}

    async def snapshot(self) -> dict[str, dict[int, int]]:
        """``{topic: {partition: listed end offset}}`` for the watched topics that exist."""
        if self._client is None:
            self._client = AIOKafkaClient(bootstrap_servers=self.bootstrap, request_timeout_ms=5000)
            await self._client.bootstrap()
        client = self._client
        node = client.get_random_node()
        if node is None:
            raise ConnectionError("no broker known")
        response = await client.send(node, MetadataRequest(self.topics, False))
        partitions: dict[str, list[int]] = {}
        for entry in response.topics:  # (error, topic, [is_internal,] partitions) by version
            error_code, topic, parts = entry[0], entry[1], entry[-1]
            if error_code == 0 and topic in self.topics:
                partitions[topic] = sorted(part[1] for part in parts)
        request = OffsetRequest(-1, 0, [(t, [(p, -1) for p in ps]) for t, ps in partitions.items() if ps])
        ends: dict[str, dict[int, int]] = {t: {} for t in partitions}
        if any(partitions.values()):
            response = await client.send(node, request)
            for topic, parts in response.topics:
                for part, error_code, *info in parts:
                    if error_code == 0:
                        ends[topic][part] = int(info[-1] if response.API_VERSION else (info[0] or [0])[0])
        return ends

    async def check(self) -> str | None:
        """The reason the broker lost data since the previous check, or ``None``."""
        now = await self.snapshot()
        before, self._seen = self._seen, now
        if not before:
            return None
        for topic, old in before.items():
            new = now.get(topic)
            if new is None:
                return f"topic {topic} disappeared"
            if len(new) != len(old):
                return f"topic {topic} went from {len(old)} to {len(new)} partitions"
            for partition, offset in old.items():
                if new.get(partition, 0) < offset:
                    return (
                        f"the end of {topic}[{partition}] went back from {offset} to {new.get(partition, 0)}"
                    )
        return None

    async def close(self) -> None:
        """Drop the connection (a close that hangs on a dead broker is abandoned after 1 s)."""
        client, self._client = self._client, None
        if client is not None:
            try:
                await asyncio.wait_for(client.close(), 1.0)
            except Exception as exc:
                log.debug("broker watch: close: %r", exc)


@dataclass
class WatchState:
    """Set when the worker stops because the broker lost data, so that it starts again."""

    restart: bool = False
    reason: str = ""


def mark_broker_loss(state: WatchState, settings: Settings, reason: str, hard_after_s: float = 30.0) -> None:
    """Leave the marker for ``recover_before_start`` and ask for a restart.

    A graceful stop that hangs (a flush to a broker that lost the topic) is cut short: after
    ``hard_after_s`` the process restarts anyway, which loses nothing the broker still has.
    """
    if state.restart:
        return
    state.restart, state.reason = True, reason
    settings.worker_dir.mkdir(parents=True, exist_ok=True)
    (settings.worker_dir / LOSS_MARKER).write_text(reason + "\n", encoding="utf-8")
    timer = threading.Timer(hard_after_s, _hard_restart, args=(state,))
    timer.daemon = True
    timer.start()


def _hard_restart(state: WatchState) -> None:
    log.warning("the worker did not stop within its grace period: restarting it now")
    restart_if_requested(state)


def watch_broker(
    pipeline: WorkerApp,
    interval_s: float = WATCH_INTERVAL_S,
    stop: Callable[[], None] | None = None,
) -> WatchState:
    """Register a Faust timer that runs ``BrokerWatch`` and stops the worker on data loss."""
    settings = pipeline.settings
    state = WatchState()
    watch = BrokerWatch(settings.kafka_bootstrap, [spec.name for spec in topic_specs(settings)])
    stop = stop or (lambda: os.kill(os.getpid(), signal.SIGTERM))

    @pipeline.app.timer(interval_s)
    async def broker_watch() -> None:
        if state.restart:
            return
        try:
            reason = await asyncio.wait_for(watch.check(), interval_s * 0.75)
        except Exception as exc:  # broker down or slow: connection errors are logged (rate-limited) elsewhere
            log.debug("broker watch: %r", exc)
            await watch.close()
            return
        if reason is None:
            return
        log.warning("the broker lost its data (%s): restarting the worker to rebuild its state", reason)
        mark_broker_loss(state, settings, reason)
        try:  # so the stopping worker can flush and commit, and nothing auto-creates them wrongly
            await ensure_topics(settings)
        except Exception as exc:
            log.debug("broker watch: cannot recreate topics: %r", exc)
        await watch.close()
        stop()

    pipeline.app.on_before_shutdown.connect(_closer(watch))  # type: ignore[arg-type]
    return state


def _closer(watch: BrokerWatch) -> Callable[..., object]:
    async def close(app: object, **kwargs: object) -> None:
        await watch.close()

    return close


def restart_if_requested(state: WatchState, argv: Sequence[str] | None = None) -> None:
    """Replace this process with a fresh ``typostream worker`` when the watch stopped it."""
    if not state.restart:
        return
    args = list(argv if argv is not None else sys.orig_argv)
    sys.stdout.flush()
    sys.stderr.flush()
    time.sleep(RESTART_DELAY_S)
    os.execv(sys.executable, [sys.executable, *args[1:]])
