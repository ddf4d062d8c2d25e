"""The composition root: Settings → components → Faust app → topics, tables, agents, web views.

Dataflow::

    registry.publish ──detect──▶ typostream.threats ──▶ alerting, sink_threats
      (raw bytes)       │  └───▶ typostream.analysed ──▶ packages table, sink_events, enrich (opt-in)
                        └──────▶ typostream.dlq         (keyed by package)            └──▶ threats

One process runs every agent (:data:`ROLE_ALL`). ``typostream worker --processes N`` splits them
(``streams/worker.py``): N :data:`ROLE_DETECT` processes share the input partitions (their own
consumer group, ``<app_id>-detect``: they keep no state), and one :data:`ROLE_STORE` process keeps
the packages table and feeds the sinks under the app's own group (embedded chDB allows one writer
process; its table and offsets are those of a single-process worker).

Nothing below this module builds its own dependencies: agents get exactly the services they use.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any, cast

import faust

from typostream.agents.domain.assess import Assessor
from typostream.agents.domain.detection import Detector
from typostream.agents.domain.errors import ConfigError
from typostream.agents.stream import detect, enrich, packages, sink
from typostream.agents.stream.context import StreamContext, Tables, Topics
from typostream.streams import components, lag, web
from typostream.streams.codecs import register_codecs
from typostream.streams.config import Settings
from typostream.streams.libc import glibc_function
from typostream.streams.tables import declare_tables
from typostream.streams.topics import declare_topics
from typostream.streams.transport import register_transport
from typostream.streams.web.server import web_application_options

if TYPE_CHECKING:
    from typostream.agents.adapters.analytics import Analytics
    from typostream.agents.adapters.sinks.base import Sink


@dataclass(frozen=True)
class WorkerApp:
    """The composed worker: the Faust app plus what the web views and the worker runner need."""

    app: faust.App
    settings: Settings
    topics: Topics
    tables: Tables
    assessor: Assessor
    sinks: Sequence[Sink]
    analytics: Analytics | None


ROLE_ALL = "all"
ROLE_DETECT = "detect"
ROLE_STORE = "store"
ROLES = (ROLE_ALL, ROLE_DETECT, ROLE_STORE)
DETECT_GROUP_SUFFIX = "-detect"
PRODUCER_BATCH_BYTES = 512 * 1024
"""Per-partition producer batch. aiokafka's ``send`` waits for a produce round trip whenever the
partition's batch is full: at Faust's 16 KiB that was every ~35 analysed records, a wait of a few
milliseconds that stalled the agent; a bounded dead letter (~350 KB) still fits one batch."""


STORE_FETCH_MAX_WAIT_MS = 100
"""The store process's fetch wait (``fetch_max_wait_ms`` is the floor). The embedded broker answers
a fetch that finds nothing new only when the wait is over, and each fetch costs it more the more
record batches the partition holds (measured: a plain aiokafka consume → produce loop at 1k events/s
went from 10.7 to 115.6 ms median publish → output over four 6-second runs). The store is not on the
publish → threat path (its sinks batch for 0.5 s): ten times fewer of its fetches while it is caught
up leave the broker to the detect path. Against Kafka, whose fetch returns when data arrives, the
longer wait costs nothing."""


def detect_group(settings: Settings) -> str:
    """The consumer group (Faust app id) of the detect processes of ``--processes N``."""
    return settings.app_id + DETECT_GROUP_SUFFIX


class LazyDetector:
    """A :class:`Detector` built on first use (any attribute but :attr:`built`), once, whichever
    thread asks first."""

    def __init__(self, build: Callable[[], Detector]) -> None:
        self._build = build
        self._detector: Detector | None = None
        self._lock = threading.Lock()

    @property
    def built(self) -> bool:
        return self._detector is not None

    def __getattr__(self, name: str) -> Any:
        if self._detector is None:
            with self._lock:
                if self._detector is None:
                    self._detector = self._build()
        return getattr(self._detector, name)


def lazy_assessor(settings: Settings) -> Assessor:
    """The store process's assessor: only its scan API uses one. The known-malicious part is built
    at once (the on-disk advisory index is opened, not loaded: the metrics endpoint watches it from
    the start), the detector on the first scan: its candidate indexes are ~70 MB of Python objects
    (~100 MB resident) the process would otherwise carry for nothing. Wrapping the whole assessor
    instead did not keep it lazy: registering ``/metrics`` reads ``assessor.known``."""
    detector = LazyDetector(lambda: components.build_detector(settings))
    return components.build_assessor(settings, detector=cast(Detector, detector))


def faust_app(
    settings: Settings, store: str = "rocksdb://", role: str = ROLE_ALL, index: int = 0
) -> faust.App:
    """The Faust app of one worker process; a detect process (``index`` 1..N) has a data dir and a
    web port (``web_port + index``) of its own (its group is in ``settings.app_id``: :func:`build_app`)."""
    register_codecs()
    register_transport()
    datadir, web_port = settings.worker_dir, settings.web_port
    if role == ROLE_DETECT:
        datadir, web_port = datadir / f"detect-{index}", web_port + index
    datadir.mkdir(parents=True, exist_ok=True)
    broker = settings
    if role == ROLE_STORE and settings.fetch_max_wait_ms < STORE_FETCH_MAX_WAIT_MS:
        broker = settings.replace(fetch_max_wait_ms=STORE_FETCH_MAX_WAIT_MS)
    return faust.App(
        settings.app_id,
        broker=broker.kafka_url,
        store=store,
        datadir=str(datadir),
        topic_partitions=settings.partitions,
        topic_replication_factor=settings.replication_factor,
        consumer_auto_offset_reset="earliest",
        # A standby replica doubles every table write on another worker and, on a 2-core machine,
        # left workers unable to finish (infra notes); the store role is one process anyway.
        table_standby_replicas=settings.table_standby_replicas,
        web_host=settings.web_host,
        web_port=web_port,
        web_bind=settings.web_host,
        # Slow or oversized HTTP clients are disconnected (head/body/idle limits, 1 MiB bodies).
        web_application_options=web_application_options(settings),
        # Faster group joins on a single-node broker (infra notes: 4–8 s to Ready instead of ~30 s).
        broker_session_timeout=4,
        broker_heartbeat_interval=1,
        broker_rebalance_timeout=4,
        # Large batches: aiokafka makes a send wait for a round trip whenever a partition's batch is full.
        producer_max_batch_size=1 if settings.unbatched_producer else PRODUCER_BATCH_BYTES,
        # A 2 ms linger turns one produce request per message into one per batch.
        producer_linger=settings.producer_linger_ms / 1000.0,
        table_cleanup_interval=30.0,
        Monitor="typostream.streams.monitor:LeanMonitor",
        logging_config=None,
    )


def build_app(
    settings: Settings,
    assessor: Assessor | None = None,
    sinks: Sequence[Sink] | None = None,
    analytics: Analytics | None = None,
    store: str = "rocksdb://",
    role: str = ROLE_ALL,
    index: int = 0,
) -> WorkerApp:
    """A ready-to-run worker for ``settings``; Kafka is not contacted until the worker starts.

    ``assessor``/``sinks``/``analytics``/``store`` are injectable so agent unit tests run without
    servers. By default one ClickHouse connection serves both the sink and analytics reads.
    ``role`` picks the agents of one process of ``--processes N`` (see the module docstring).
    """
    if role not in ROLES:
        raise ConfigError(f"unknown worker role {role!r}; expected one of: {', '.join(ROLES)}")
    stateful = role != ROLE_DETECT
    if not stateful:  # its own consumer group: recovery, lag and the web views see that one
        settings = settings.replace(app_id=detect_group(settings))
    app = faust_app(settings, store, role, index)
    if not stateful:
        sinks, analytics = [], None  # the store process writes (embedded chDB: one writer process)
    connection = cache(lambda: components.open_clickhouse(settings))
    if sinks is None:
        sinks = components.build_sinks(settings, components.SinkResources(clickhouse=connection))
        if analytics is None and "clickhouse" in {s.id for s in sinks}:
            analytics = components.build_analytics(connection())
    tables = declare_tables(app, settings) if stateful else Tables(packages=None)  # type: ignore[arg-type]
    ctx = StreamContext(app, declare_topics(app, settings), tables)
    if assessor is None:
        # The store process only scans for its API: its detector is built on the first scan.
        build = lazy_assessor if role == ROLE_STORE else components.build_assessor
        assessor = build(settings)
    worker = WorkerApp(
        app=app,
        settings=settings,
        topics=ctx.topics,
        tables=ctx.tables,
        assessor=assessor,
        sinks=sinks,
        analytics=analytics,
    )
    if role != ROLE_STORE:
        detect.register(ctx, worker.assessor, settings.max_event_bytes)
        enrichment = components.build_enrichment(settings)
        if enrichment is not None:
            enrich.register(
                ctx, enrichment.client, enrichment.cache, enrichment.patterns, enrichment.concurrency
            )
    if stateful:
        packages.register(ctx)
        sink.register(ctx, sinks, settings.sink_batch_size, settings.sink_batch_seconds)
        web.register(worker)
    else:  # the table and analytics live in the store process; this one serves metrics and scans
        web.register(worker, endpoints=(web.metrics, web.health, web.scan))
    lag.register(worker)  # consumer lag per partition, sampled by a timer
    opened = connection.cache_info().currsize > 0  # this process holds the ClickHouse connection
    embedded = opened and settings.clickhouse_dsn.startswith("chdb")
    register_memory_release(app, connection if embedded else None)
    logging.getLogger("typostream").setLevel(settings.log_level)
    return worker


MEMORY_RELEASE_S = 10.0


def register_memory_release(app: faust.App, chdb: Callable[[], Any] | None) -> None:
    """Every :data:`MEMORY_RELEASE_S`, hand memory the process has freed back to the OS.

    glibc keeps freed heap in its arenas and chDB's jemalloc keeps freed pages for reuse, so a burst
    leaves the process larger than it needs to be. Measured after a 200k-event run: each detect
    process went back to ~212 MB instead of staying at ~245 MB; the peak during a run is not lower.
    Both run in a thread (a trim takes the allocator's locks for a few milliseconds; the purge waits
    for the connection lock like any statement); a failure is logged and the next round tries again.
    """
    trim = glibc_function("malloc_trim")
    if trim is None and chdb is None:
        return

    def release() -> None:
        if trim is not None:
            trim(0)
        if chdb is not None:
            connection = chdb()
            with connection.lock:
                connection.run(lambda: connection.client.command("SYSTEM JEMALLOC PURGE"), "command")

    @app.timer(interval=MEMORY_RELEASE_S)
    async def release_memory() -> None:
        try:
            await asyncio.to_thread(release)
        except Exception as exc:  # a closed or failing connection: the sink reports that itself
            logging.getLogger("typostream.worker").debug("memory release failed: %r", exc)
