"""Agents ``sink_events`` and ``sink_threats``: batch analysed events and threats into ClickHouse.

Inserts are idempotent (ReplacingMergeTree keyed by id), so a batch replayed after a crash
(at-least-once) does not duplicate rows. A failing insert is retried and the batch is not
acked until it lands: the agent stalls rather than loses data.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from typing import Any

from faust import StreamT

from typostream.agents.records import threat_row
from typostream.streams import metrics
from typostream.streams.pipeline import Pipeline

log = logging.getLogger("typostream.sink")
MAX_BACKOFF_S = 10.0


async def write_with_retry(table: str, insert: Callable[[Sequence[dict[str, Any]]], Any], rows: list) -> None:
    delay = 0.2
    while True:
        try:
            with metrics.SINK_BATCH_SECONDS.labels(table).time():
                await asyncio.to_thread(insert, rows)
        except Exception as exc:  # any driver/server error: keep the batch, back off, retry
            metrics.SINK_FAILURES.labels(table).inc()
            log.warning(
                "clickhouse insert into %s failed (%s rows), retrying in %.1fs: %s",
                table,
                len(rows),
                delay,
                exc,
            )
            await asyncio.sleep(delay)
            delay = min(MAX_BACKOFF_S, delay * 2)
            continue
        metrics.SINK_ROWS.labels(table).inc(len(rows))
        return


def register(pipeline: Pipeline) -> None:
    topics, sink, settings = pipeline.topics, pipeline.sink, pipeline.settings
    size, within = settings.sink_batch_size, settings.sink_batch_seconds

    @pipeline.app.agent(topics.analysed, name="sink_events")
    async def sink_events(stream: StreamT) -> None:
        async for values in stream.take(size, within=within):
            await write_with_retry("events", sink.insert_events, list(values))

    @pipeline.app.agent(topics.threats, name="sink_threats")
    async def sink_threats(stream: StreamT) -> None:
        async for values in stream.take(size, within=within):
            await write_with_retry("threats", sink.insert_threats, [threat_row(v) for v in values])
