"""The poll loop: fetch → drop already-sent ids → produce → save the cursor → sleep.

Delivery is at least once: the cursor is saved only after the broker acknowledged every event of a
poll, and the ids of recently sent events are saved with it, so a restart resumes where the last
acknowledged poll ended and re-fetched publishes are not sent twice. Ids are the pipeline's own
(:func:`typostream.agents.domain.events.event_id_for` on the normalised timestamp), so anything that
slips through is still de-duplicated downstream.

Metrics (``agents/adapters/metrics.py``): polls by outcome, events sent, duplicates, skipped changes,
errors by kind, the lag behind the registry, the known backlog, publish → sent latency and the time
of the last successful poll, all labelled by registry.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

import orjson

from typostream.agents.adapters.feeds.base import FeedEvent, FeedSource, event_id, parse_rfc3339
from typostream.agents.adapters.feeds.cursor import CursorState, CursorStore, RecentIds
from typostream.agents.adapters.metrics import (
    FEED_BACKLOG,
    FEED_DELIVERY_SECONDS,
    FEED_DUPLICATES,
    FEED_ERRORS,
    FEED_EVENTS,
    FEED_LAG_SECONDS,
    FEED_LAST_SUCCESS,
    FEED_POLLS,
    FEED_SKIPPED,
)
from typostream.agents.domain.errors import (
    UpstreamRateLimitedError,
    UpstreamResponseError,
    UpstreamUnavailableError,
)

__all__ = ["FeedStats", "ProduceFn", "StatusFn", "event_id", "run_feed"]

ProduceFn = Callable[[Sequence[bytes]], Awaitable[None]]
"""Send these package-feeds JSON values (no key) and return once the broker acknowledged them all."""


@dataclass
class FeedStats:
    registry: str
    polls: int = 0
    sent: int = 0
    duplicates: int = 0
    skipped: int = 0
    errors: int = 0
    last_error: str = ""
    last_poll_at: float = 0.0
    lag_s: float = 0.0
    backlog: int | None = None
    cursor: dict[str, object] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


StatusFn = Callable[[FeedStats], None]


def _age_s(event: FeedEvent, now: float) -> float | None:
    created = parse_rfc3339(event["created_date"])
    return None if created is None else max(0.0, now - created.timestamp())


async def run_feed(
    source: FeedSource,
    producer_send: ProduceFn,
    cursor_store: CursorStore,
    interval_s: float = 30.0,
    once: bool = False,
    limit: int = 500,
    *,
    on_status: StatusFn | None = None,
    stop: asyncio.Event | None = None,
) -> FeedStats:
    """Poll ``source`` until ``stop`` is set (or once). Returns the counters.

    ``once`` runs a single poll and raises on any error. Otherwise a registry that stays
    unavailable (:class:`UpstreamUnavailableError` after the client's retries; the next poll waits
    at least its ``Retry-After``) or answers a body that is not the expected document
    (:class:`UpstreamResponseError`, e.g. a proxy's error page) is reported through ``on_status`` and
    retried, the cursor untouched; other errors (4xx the source cannot recover from, Kafka, the
    cursor file) propagate.
    """
    stop = stop or asyncio.Event()
    state = cursor_store.load()
    recent = RecentIds(state.recent_ids)
    registry = source.registry
    stats = FeedStats(registry=registry, cursor=dict(state.cursor))
    while not stop.is_set():
        more = False
        wait_s = interval_s
        try:
            poll = await source.poll(dict(state.cursor), limit)
        except (UpstreamUnavailableError, UpstreamResponseError) as exc:
            kind = "bad_response" if isinstance(exc, UpstreamResponseError) else "unavailable"
            FEED_POLLS.labels(registry, kind).inc()
            FEED_ERRORS.labels(registry, kind).inc()
            if once:
                raise
            stats.errors += 1
            stats.last_error = str(exc)
            if isinstance(exc, UpstreamRateLimitedError):
                wait_s = max(interval_s, exc.retry_after_s)
        except Exception:
            FEED_POLLS.labels(registry, "failed").inc()
            raise
        else:
            fresh: list[FeedEvent] = []
            fresh_ids: set[str] = set()
            for event in poll.events:
                eid = event_id(event)
                if eid in recent or eid in fresh_ids:
                    stats.duplicates += 1
                    FEED_DUPLICATES.labels(registry).inc()
                    continue
                fresh.append(event)
                fresh_ids.add(eid)
            if fresh:
                await producer_send([orjson.dumps(e) for e in fresh])
            for event in fresh:
                recent.add(event_id(event))
            state = CursorState(cursor=poll.cursor, recent_ids=recent.to_list())
            cursor_store.save(state)
            now = time.time()
            ages = [a for a in (_age_s(e, now) for e in fresh) if a is not None]
            for age in ages:
                FEED_DELIVERY_SECONDS.labels(registry).observe(age)
            if ages:
                stats.lag_s = min(ages)
            elif not poll.more:
                stats.lag_s = 0.0
            FEED_LAG_SECONDS.labels(registry).set(stats.lag_s)
            stats.backlog = poll.backlog
            FEED_BACKLOG.labels(registry).set(poll.backlog or 0)
            FEED_POLLS.labels(registry, "ok").inc()
            FEED_EVENTS.labels(registry).inc(len(fresh))
            FEED_SKIPPED.labels(registry).inc(poll.skipped)
            for kind in poll.errors:
                FEED_ERRORS.labels(registry, kind).inc()
            FEED_LAST_SUCCESS.labels(registry).set(now)
            stats.polls += 1
            stats.sent += len(fresh)
            stats.skipped += poll.skipped
            stats.cursor = dict(poll.cursor)
            stats.notes = poll.notes[-5:]
            stats.last_error = ""
            more = poll.more
        stats.last_poll_at = time.time()
        if on_status is not None:
            on_status(stats)
        if once:
            break
        if not more:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=wait_s)
    return stats
