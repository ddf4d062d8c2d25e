"""The poll loop: fetch → drop already-sent ids → produce → save the cursor → sleep.

Delivery is at least once: the cursor is saved only after the broker acknowledged every event of a
poll, and the ids of recently sent events are saved with it, so a restart resumes where the last
acknowledged poll ended and re-fetched publishes are not sent twice. Ids are the pipeline's own
(:func:`typostream.agents.domain.events.event_id_for`), so anything that slips through is still
de-duplicated downstream.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

import orjson

from typostream.agents.adapters.feeds.base import FeedEvent, FeedSource
from typostream.agents.adapters.feeds.cursor import CursorState, CursorStore, RecentIds
from typostream.agents.domain.errors import UpstreamUnavailableError
from typostream.agents.domain.events import event_id_for

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
    cursor: dict[str, object] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


StatusFn = Callable[[FeedStats], None]


def event_id(event: FeedEvent) -> str:
    return event_id_for(event["type"], event["name"], event["version"], event["created_date"])


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
    unavailable (:class:`UpstreamUnavailableError`, after the client's retries) is reported through
    ``on_status`` and retried next interval; other errors (4xx, unparseable bodies, Kafka, the
    cursor file) propagate.
    """
    stop = stop or asyncio.Event()
    state = cursor_store.load()
    recent = RecentIds(state.recent_ids)
    stats = FeedStats(registry=source.registry, cursor=dict(state.cursor))
    while not stop.is_set():
        more = False
        try:
            poll = await source.poll(dict(state.cursor), limit)
        except UpstreamUnavailableError as exc:
            if once:
                raise
            stats.errors += 1
            stats.last_error = str(exc)
        else:
            fresh: list[FeedEvent] = []
            fresh_ids: list[str] = []
            for event in poll.events:
                eid = event_id(event)
                if eid in recent or eid in fresh_ids:
                    stats.duplicates += 1
                    continue
                fresh.append(event)
                fresh_ids.append(eid)
            if fresh:
                await producer_send([orjson.dumps(e) for e in fresh])
            for eid in fresh_ids:
                recent.add(eid)
            state = CursorState(cursor=poll.cursor, recent_ids=recent.to_list())
            cursor_store.save(state)
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
                await asyncio.wait_for(stop.wait(), timeout=interval_s)
    return stats
