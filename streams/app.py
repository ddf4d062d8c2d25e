"""The composition root: Settings → components → Faust app → topics, tables, agents, web views.

Dataflow::

    registry.publish ──validate──▶ typostream.events ──detect──▶ typostream.threats ──▶ alerting
          │ (raw bytes)     │          (keyed by package)  │ └──▶ typostream.analysed
          │                 └──▶ typostream.dlq            │            │
          │                                          packages table     ▼
          │                      typostream.events ──enrich (opt-in)──▶ threats
          │                                                     sink_* ──▶ every configured Sink

Nothing below this module builds its own dependencies: agents get exactly the services they use.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING

import faust

from typostream.agents.domain.assess import Assessor
from typostream.agents.stream import detect, enrich, sink, validate
from typostream.agents.stream.context import StreamContext, Tables, Topics
from typostream.streams import components, lag, web
from typostream.streams.codecs import register_codecs
from typostream.streams.config import Settings
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


def faust_app(settings: Settings, store: str = "rocksdb://") -> faust.App:
    register_codecs()
    register_transport()
    settings.worker_dir.mkdir(parents=True, exist_ok=True)
    return faust.App(
        settings.app_id,
        broker=settings.kafka_url,
        store=store,
        datadir=str(settings.worker_dir),
        topic_partitions=settings.partitions,
        topic_replication_factor=settings.replication_factor,
        consumer_auto_offset_reset="earliest",
        web_host=settings.web_host,
        web_port=settings.web_port,
        web_bind=settings.web_host,
        # Slow or oversized HTTP clients are disconnected (head/body/idle limits, 1 MiB bodies).
        web_application_options=web_application_options(settings),
        # Faster group joins on a single-node broker (infra notes: 4–8 s to Ready instead of ~30 s).
        broker_session_timeout=4,
        broker_heartbeat_interval=1,
        broker_rebalance_timeout=4,
        producer_max_batch_size=1 if settings.unbatched_producer else 16384,
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
) -> WorkerApp:
    """A ready-to-run worker for ``settings``; Kafka is not contacted until the worker starts.

    ``assessor``/``sinks``/``analytics``/``store`` are injectable so agent unit tests run without
    servers. By default one ClickHouse connection serves both the sink and analytics reads.
    """
    app = faust_app(settings, store)
    connection = cache(lambda: components.open_clickhouse(settings))
    if sinks is None:
        sinks = components.build_sinks(settings, components.SinkResources(clickhouse=connection))
        if analytics is None and "clickhouse" in {s.id for s in sinks}:
            analytics = components.build_analytics(connection())
    ctx = StreamContext(app, declare_topics(app, settings), declare_tables(app, settings))
    worker = WorkerApp(
        app=app,
        settings=settings,
        topics=ctx.topics,
        tables=ctx.tables,
        assessor=assessor or components.build_assessor(settings),
        sinks=sinks,
        analytics=analytics,
    )
    validate.register(ctx, settings.max_event_bytes)
    detect.register(ctx, worker.assessor)
    enrichment = components.build_enrichment(settings)
    if enrichment is not None:
        enrich.register(ctx, enrichment.client, enrichment.cache, enrichment.patterns, enrichment.concurrency)
    sink.register(ctx, sinks, settings.sink_batch_size, settings.sink_batch_seconds)
    web.register(worker)
    lag.register(worker)  # consumer lag per partition, sampled by a timer
    logging.getLogger("typostream").setLevel(settings.log_level)
    return worker
