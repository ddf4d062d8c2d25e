"""Agents ``sink_<stream>``: batch analysed events and threats into every configured sink.

Sinks are idempotent (ClickHouse skips stored ids; ReplacingMergeTree keyed by id), so a batch
replayed after a crash (at-least-once) does not duplicate rows. A failing write is retried and
the batch is not acked until it lands: the agent stalls rather than loses data. A record the sink
cannot take (a bug upstream) is dead-lettered on its own, so one bad record never stalls the rest.

The retry loop gives way to a stopping worker: the write in flight is abandoned (a blocking driver
call may finish in its thread; it is idempotent either way), the batch is released uncommitted and
the agent ends, so SIGTERM stops the worker in seconds and the next one writes the batch again.
A bad record whose dead letter cannot be sent halts the worker without committing (``dlq.py``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from faust import StreamT
from faust.types import EventT, TopicT
from mode import Service

from typostream.agents.adapters import metrics
from typostream.agents.adapters.sinks.base import Sink, StreamName
from typostream.agents.domain.errors import InvalidEventError, InvalidRowError, internal_error
from typostream.agents.stream.batches import json_value, take_batches
from typostream.agents.stream.context import StreamContext
from typostream.agents.stream.dlq import halt, let_go, release, send_to_dlq

log = logging.getLogger("typostream.sink")
MAX_BACKOFF_S = 10.0
Write = Callable[[Sequence[dict[str, Any]]], Awaitable[Any]]


async def write_with_retry(
    table: str, write: Write, rows: list[dict[str, Any]], worker: Service, sink: str = "clickhouse"
) -> bool:
    """Write until it lands (True) or ``worker`` stops (False, nothing known to be written).

    Only :class:`InvalidRowError` (the data, not the server) is raised. ``sink``: the sink's id in
    the metrics.
    """
    delay = 0.2
    while not worker.should_stop:
        try:
            with metrics.SINK_BATCH_SECONDS.labels(table, sink).time():
                outcome = await worker.wait(write(rows))  # returns early, write cancelled, on stop
        except InvalidRowError:
            raise
        except Exception as exc:  # any driver/server error: keep the batch, back off, retry
            metrics.SINK_FAILURES.labels(table, sink).inc()
            log.warning("sink write to %s failed (%s rows), retrying in %.1fs: %s",
                        table, len(rows), delay, exc)  # fmt: skip
            await worker.sleep(delay)  # returns early on stop
            delay = min(MAX_BACKOFF_S, delay * 2)
            continue
        if outcome.stopped:
            break
        metrics.SINK_ROWS.labels(table, sink).inc(len(rows))
        return True
    log.warning("worker stopping: %s rows for %s left unwritten and uncommitted", len(rows), table)
    return False


async def write_batch(
    table: str, write: Write, events: Sequence[EventT], dlq: TopicT, worker: Service, sink: str = "clickhouse"
) -> bool:
    """Write a batch; if a record is rejected, write them one by one and dead-letter the bad ones.

    True once every record landed or was dead-lettered, False if ``worker`` stopped first.
    """
    try:
        return await write_with_retry(table, write, [_record(e) for e in events], worker, sink)
    except InvalidRowError as exc:
        log.error("batch for %s has a bad row, writing rows one by one: %s", table, exc)
    for event in events:
        try:
            if not await write_with_retry(table, write, [_record(event)], worker, sink):
                return False
        except InvalidRowError as exc:
            error = exc if isinstance(exc, InvalidEventError) else internal_error(exc)  # e.g. undeliverable
            await send_to_dlq(dlq, error, event.message)
    return True


def _record(event: EventT) -> dict[str, Any]:
    try:
        return json_value(event)
    except (TypeError, ValueError) as exc:  # not a JSON object: the record's own problem
        raise InvalidRowError(f"not a JSON object: {exc}") from None


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
    app, dlq = ctx.app, ctx.topics.dlq

    async def write(records: Sequence[dict[str, Any]]) -> Any:
        return await sink.write(stream, records)

    @app.agent(source, name=name)
    async def sink_agent(events_stream: StreamT) -> None:
        async for events in take_batches(events_stream, size, within):
            try:
                written = await write_batch(stream, write, events, dlq, app, sink.id)
            except asyncio.CancelledError:
                release(events)
                raise
            except Exception as exc:  # a bad record's dead letter could not be sent
                await halt(app, [events_stream], source, events, exc)
                return
            if not written:  # the worker is stopping: leave the batch to the next one
                await let_go(app, [events_stream], source, events)
                return
