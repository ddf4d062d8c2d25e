"""``run_feed`` against the local registries (127.0.0.1) with an in-memory producer."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp.test_utils import TestServer
from fixture_feeds import AGENTS, HITS, LAST_SEQ, NPM_EXPECTED, PYPI_EXPECTED

from typostream.agents.adapters.feeds import (
    USER_AGENT,
    CursorState,
    CursorStore,
    FeedHTTP,
    NpmSource,
    PypiSource,
    run_feed,
)
from typostream.agents.domain.errors import CursorFileError, UpstreamHTTPError, UpstreamUnavailableError


class Sink:
    def __init__(self) -> None:
        self.values: list[dict[str, Any]] = []

    async def __call__(self, values: Sequence[bytes]) -> None:
        self.values.extend(orjson.loads(v) for v in values)

    def triples(self) -> set[tuple[str, str, str]]:
        return {(v["name"], v["version"], v["created_date"]) for v in self.values}


def _http() -> FeedHTTP:
    return FeedHTTP(timeout_s=2, retries=2, backoff_s=0.01)


def npm_source(server: TestServer, start: str = "0") -> NpmSource:
    base = str(server.make_url("")).rstrip("/")
    return NpmSource(base, base, _http(), start=start)


async def test_npm_once_then_resume_without_duplicates(feed_server: TestServer, tmp_path: Path) -> None:
    store = CursorStore.for_registry(tmp_path, "npm")
    sink = Sink()
    source = npm_source(feed_server)
    stats = await run_feed(source, sink, store, once=True, limit=100)
    await source.close()
    assert sink.triples() == NPM_EXPECTED and len(sink.values) == len(NPM_EXPECTED)
    assert stats.sent == 4 and stats.skipped == 4  # deleted, 404, metadata-only, unpublished
    assert store.load().cursor == {"since": LAST_SEQ}
    hits = feed_server.app[HITS]
    assert hits["/@acme%2fwidgets"] == 1 and hits["/flaky"] == 2 and hits["/gone-pkg"] == 0
    assert set(feed_server.app[AGENTS]) == {USER_AGENT}

    again = Sink()
    source = npm_source(feed_server)
    await run_feed(source, again, store, once=True, limit=100)
    await source.close()
    assert again.values == []
    assert store.load().cursor == {"since": LAST_SEQ}


async def test_npm_fresh_cursor_starts_now(feed_server: TestServer, tmp_path: Path) -> None:
    sink = Sink()
    store = CursorStore.for_registry(tmp_path, "npm")
    source = npm_source(feed_server, start="now")
    await run_feed(source, sink, store, once=True)
    await source.close()
    assert sink.values == [] and store.load().cursor == {"since": 0}


async def test_pypi_once_then_resume(feed_server: TestServer, tmp_path: Path) -> None:
    base = str(feed_server.make_url("")).rstrip("/")
    store = CursorStore.for_registry(tmp_path, "pypi")
    sink = Sink()
    source = PypiSource(base, _http())
    await run_feed(source, sink, store, once=True)
    await source.close()
    assert sink.triples() == PYPI_EXPECTED
    assert [v["name"] for v in sink.values] == ["numpy", "reqeusts", "Flask-Login"]  # oldest first
    newest = {"newest": "2026-11-02T14:00:09.000Z", "name": "Flask-Login", "version": "0.7.0"}
    assert store.load().cursor == newest

    again = Sink()
    source = PypiSource(base, _http(), new_projects=True)
    stats = await run_feed(source, again, store, once=True)
    await source.close()
    assert [(v["name"], v["version"], v["created_date"]) for v in again.values] == [
        ("brand-new", "0.0.1", "2026-11-02T14:00:07.123Z")
    ]
    assert stats.duplicates == 3


async def test_pypi_cursor_skips_items_older_than_the_slack(feed_server: TestServer, tmp_path: Path) -> None:
    base = str(feed_server.make_url("")).rstrip("/")
    store = CursorStore.for_registry(tmp_path, "pypi")
    store.save(CursorState(cursor={"newest": "2026-11-02T14:30:00.000Z"}))
    sink = Sink()
    source = PypiSource(base, _http())
    await run_feed(source, sink, store, once=True)
    await source.close()
    assert sink.values == []
    assert store.load().cursor["newest"] == "2026-11-02T14:30:00.000Z"


async def test_unavailable_registry_raises_once_and_keeps_the_cursor(tmp_path: Path) -> None:
    store = CursorStore.for_registry(tmp_path, "pypi")
    # Port 9 on 127.0.0.1: nothing listens, so every attempt is a connection error.
    source = PypiSource("http://127.0.0.1:9", FeedHTTP(timeout_s=1, retries=1, backoff_s=0.01))
    with pytest.raises(UpstreamUnavailableError, match="after 2 attempts"):
        await run_feed(source, Sink(), store, once=True)
    await source.close()
    assert not store.path.exists()


async def test_continuous_mode_survives_an_outage_and_stops_on_request(tmp_path: Path) -> None:
    store = CursorStore.for_registry(tmp_path, "pypi")
    source = PypiSource("http://127.0.0.1:9", FeedHTTP(timeout_s=1, retries=0))
    stop = asyncio.Event()
    seen: list[int] = []

    def status(stats: Any) -> None:
        seen.append(stats.errors)
        if stats.errors >= 2:
            stop.set()

    stats = await asyncio.wait_for(
        run_feed(source, Sink(), store, interval_s=0.05, on_status=status, stop=stop), timeout=10
    )
    await source.close()
    assert stats.errors == 2 and seen == [1, 2] and "unavailable" in stats.last_error


async def test_wrong_base_url_is_an_http_error(feed_server: TestServer, tmp_path: Path) -> None:
    base = str(feed_server.make_url("")).rstrip("/")
    source = PypiSource(base + "/nope", _http())
    with pytest.raises(UpstreamHTTPError, match="HTTP 404"):
        await run_feed(source, Sink(), CursorStore.for_registry(tmp_path, "pypi"), once=True)
    await source.close()


def test_corrupt_cursor_file_is_reported(tmp_path: Path) -> None:
    store = CursorStore.for_registry(tmp_path, "npm")
    store.path.parent.mkdir(parents=True)
    store.path.write_text("{not json")
    with pytest.raises(CursorFileError, match="delete it"):
        store.load()
