"""Agents ``sink_<stream>``: batch analysed events and threats into every configured sink.

Sinks are idempotent (ClickHouse skips stored ids; ReplacingMergeTree keyed by id), so a batch
replayed after a crash (at-least-once) does not duplicate rows. A failing write is retried and
the batch is not acked until it lands: the agent stalls rather than loses data. A record the sink
cannot take (a bug upstream) is dead-lettered on its own, so one bad record never stalls the rest.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import orjson
from faust import StreamT
from faust.types import EventT, TopicT

from typostream.agents.adapters import metrics
from typostream.agents.adapters.sinks.base import Sink, StreamName
from typostream.agents.domain.errors import InvalidRowError, internal_error
from typostream.agents.stream.context import StreamContext
from typostream.agents.stream.dlq import send_to_dlq

log = logging.getLogger("typostream.sink")
MAX_BACKOFF_S = 10.0
Write = Callable[[Sequence[dict[str, Any]]], Awaitable[Any]]


async def write_with_retry(table: str, write: Write, rows: list[dict[str, Any]]) -> None:
    """Write until it lands; only :class:`InvalidRowError` (the data, not the server) is raised."""
    delay = 0.2
    while True:
        try:
            with metrics.SINK_BATCH_SECONDS.labels(table).time():
                await write(rows)
        except InvalidRowError:
            raise
        except Exception as exc:  # any driver/server error: keep the batch, back off, retry
            metrics.SINK_FAILURES.labels(table).inc()
            log.warning("sink write to %s failed (%s rows), retrying in %.1fs: %s",
                        table, len(rows), delay, exc)  # fmt: skip
            await asyncio.sleep(delay)
            delay = min(MAX_BACKOFF_S, delay * 2)
            continue
        metrics.SINK_ROWS.labels(table).inc(len(rows))
        return


async def write_batch(table: str, write: Write, events: Sequence[EventT], dlq: TopicT) -> None:
    """Write a batch; if a record is rejected, write them one by one and dead-letter the bad ones."""
    try:
        await write_with_retry(table, write, [_record(e) for e in events])
        return
    except InvalidRowError as exc:
        log.error("batch for %s has a bad row, writing rows one by one: %s", table, exc)
    for event in events:
        try:
            await write_with_retry(table, write, [_record(event)])
        except InvalidRowError as exc:
            await send_to_dlq(dlq, internal_error(exc), event.message, orjson.dumps(event.value))


def _record(event: EventT) -> dict[str, Any]:
    value: dict[str, Any] = event.value  # type: ignore[assignment]  # the orjson codec gives dicts
    return value


def register(ctx: StreamContext, sinks: Sequence[Sink], batch_size: int, batch_seconds: float) -> None:
    """One agent per (sink, stream): a slow sink never holds back another one's offsets."""
    sources = {"events": ctx.topics.analysed, "threats": ctx.topics.threats}
    for sink in sinks:
        for stream in sink.streams:
            _register_one(ctx, sink, stream, sources[stream], batch_size, batch_seconds)

    @ctx.app.on_before_shutdown.connect
    async def close_sinks(app: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
        for sink in sinks:
            await sink.close()


def _register_one(
    ctx: StreamContext, sink: Sink, stream: StreamName, source: TopicT, size: int, within: float
) -> None:
    name = f"sink_{stream}" if sink.id == "clickhouse" else f"sink_{sink.id}_{stream}"
    dlq = ctx.topics.dlq

    async def write(records: Sequence[dict[str, Any]]) -> Any:
        return await sink.write(stream, records)

    @ctx.app.agent(source, name=name)
    async def sink_agent(events_stream: StreamT) -> None:
        async for events in events_stream.take_events(size, within=within):  # type: ignore[attr-defined]
            await write_batch(stream, write, events, dlq)
