"""Agents ``sink_events`` and ``sink_threats``: batch analysed events and threats into ClickHouse.

Inserts are idempotent (the sink skips stored ids; ReplacingMergeTree keyed by id), so a batch
replayed after a crash (at-least-once) does not duplicate rows. A failing insert is retried and
the batch is not acked until it lands: the agent stalls rather than loses data. A row the table
cannot take (a bug upstream) is dead-lettered on its own, so one bad row never stalls the rest.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from typing import Any

import orjson
from faust import StreamT
from faust.types import EventT, TopicT

from typostream.agents.dlq import send_to_dlq
from typostream.agents.exceptions import internal_error
from typostream.agents.records import threat_row
from typostream.agents.sinks.clickhouse import InvalidRowError
from typostream.streams import metrics
from typostream.streams.pipeline import Pipeline

log = logging.getLogger("typostream.sink")
MAX_BACKOFF_S = 10.0
Insert = Callable[[Sequence[dict[str, Any]]], Any]


async def write_with_retry(table: str, insert: Insert, rows: list[dict[str, Any]]) -> None:
    """Insert until it lands; only :class:`InvalidRowError` (the data, not the server) is raised."""
    delay = 0.2
    while True:
        try:
            with metrics.SINK_BATCH_SECONDS.labels(table).time():
                await asyncio.to_thread(insert, rows)
        except InvalidRowError:
            raise
        except Exception as exc:  # any driver/server error: keep the batch, back off, retry
            metrics.SINK_FAILURES.labels(table).inc()
            log.warning("clickhouse insert into %s failed (%s rows), retrying in %.1fs: %s",
                        table, len(rows), delay, exc)  # fmt: skip
            await asyncio.sleep(delay)
            delay = min(MAX_BACKOFF_S, delay * 2)
            continue
        metrics.SINK_ROWS.labels(table).inc(len(rows))
        return


async def write_batch(
    table: str, insert: Insert, to_row: Callable[[Any], dict[str, Any]], events: Sequence[EventT], dlq: TopicT
) -> None:
    """Write a batch; if a row is rejected, write the rows one by one and dead-letter the bad ones."""
    try:
        await write_with_retry(table, insert, [to_row(e.value) for e in events])
        return
    except (InvalidRowError, KeyError, TypeError, ValueError) as exc:
        log.error("batch for %s has a bad row, writing rows one by one: %s", table, exc)
    for event in events:
        try:
            await write_with_retry(table, insert, [to_row(event.value)])
        except (InvalidRowError, KeyError, TypeError, ValueError) as exc:
            await send_to_dlq(dlq, internal_error(exc), event.message, orjson.dumps(event.value))


def register(pipeline: Pipeline) -> None:
    topics, sink, settings = pipeline.topics, pipeline.sink, pipeline.settings
    size, within = settings.sink_batch_size, settings.sink_batch_seconds

    @pipeline.app.agent(topics.analysed, name="sink_events")
    async def sink_events(stream: StreamT) -> None:
        async for events in stream.take_events(size, within=within):  # type: ignore[attr-defined]
            await write_batch("events", sink.insert_events, dict, events, topics.dlq)

    @pipeline.app.agent(topics.threats, name="sink_threats")
    async def sink_threats(stream: StreamT) -> None:
        async for events in stream.take_events(size, within=within):  # type: ignore[attr-defined]
            await write_batch("threats", sink.insert_threats, threat_row, events, topics.dlq)
