"""``run_feed`` against the local registries (127.0.0.1) with an in-memory producer.

Each registry defect of issue 10 has a test here: PyPI loses nothing across an outage longer than
the RSS window, names are normalised, package-feeds' fixture shapes parse, npm starts from
``update_seq`` and re-initialises a rejected cursor, packuments are fetched conditionally and
re-fetched when the CDN still serves the revision before the change, ``Retry-After`` is honoured
and the feed's metrics move.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp.test_utils import TestServer
from fixture_feeds import (
    AGENTS,
    HITS,
    LAST_SEQ,
    LEGACY_SEQ,
    NPM_EXPECTED,
    PACKAGE_FEEDS_NPM_EXPECTED,
    PACKAGE_FEEDS_PACKUMENTS,
    PACKAGE_FEEDS_UPDATES_XML,
    PYPI_EXPECTED,
    PYPI_SEED_SERIAL,
    Registries,
    Scripted,
    pep503,
)
from prometheus_client import REGISTRY

from typostream.agents.adapters.feeds import (
    USER_AGENT,
    CursorState,
    CursorStore,
    FeedHTTP,
    NpmSource,
    PypiSource,
    run_feed,
)
from typostream.agents.adapters.feeds.base import event_id, rfc3339_utc
from typostream.agents.domain.errors import (
    CursorFileError,
    UpstreamHTTPError,
    UpstreamRateLimitedError,
    UpstreamUnavailableError,
)


class Sink:
    def __init__(self) -> None:
        self.values: list[dict[str, Any]] = []

    async def __call__(self, values: Sequence[bytes]) -> None:
        self.values.extend(orjson.loads(v) for v in values)

    def triples(self) -> set[tuple[str, str, str]]:
        """(name, version, created_date as validation normalises it)."""
        return {
            (v["name"], v["version"], rfc3339_utc(datetime.fromisoformat(v["created_date"])))
            for v in self.values
        }

    def pairs(self) -> Counter[tuple[str, str]]:
        return Counter((v["name"], v["version"]) for v in self.values)


def _http(**kw: Any) -> FeedHTTP:
    return FeedHTTP(timeout_s=2, retries=2, backoff_s=0.01, **kw)


def npm_source(base: str, start: str = "0", **kw: Any) -> NpmSource:
    return NpmSource(base, base, _http(), start=start, **kw)


def pypi_source(base: str, http: FeedHTTP | None = None, **kw: Any) -> PypiSource:
    options: dict[str, Any] = {"changelog_interval_s": 0, "changelog_spacing_s": 0, "rss_spacing_s": 0}
    return PypiSource(base, http or _http(), **{**options, **kw})


async def _once(source: NpmSource | PypiSource, sink: Sink, store: CursorStore, limit: int = 100) -> Any:
    try:
        return await run_feed(source, sink, store, once=True, limit=limit)
    finally:
        await source.close()


async def _drain(source: NpmSource | PypiSource, sink: Sink, store: CursorStore, limit: int = 100) -> Any:
    """Poll until the source says it has nothing more right now (what the loop does without sleeping)."""
    stop = asyncio.Event()

    def status(stats: Any) -> None:
        if not stats.last_error and stats.backlog == 0:
            stop.set()

    try:
        return await asyncio.wait_for(
            run_feed(source, sink, store, interval_s=0.01, limit=limit, on_status=status, stop=stop),
            timeout=30,
        )
    finally:
        await source.close()


def metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


# --- npm ----------------------------------------------------------------------------------------
async def test_npm_once_then_resume_without_duplicates(
    feed_server: TestServer, base_url: str, registries: Registries, tmp_path: Path
) -> None:
    store = CursorStore.for_registry(tmp_path, "npm")
    sink = Sink()
    stats = await _once(npm_source(base_url), sink, store)
    assert sink.triples() == NPM_EXPECTED and len(sink.values) == len(NPM_EXPECTED)
    assert stats.sent == 4 and stats.skipped == 4  # deleted, 404, metadata-only, unpublished
    assert store.load().cursor["since"] == LAST_SEQ
    hits = feed_server.app[HITS]
    assert hits["/@acme%2fwidgets"] == 1 and hits["/flaky"] == 2 and hits["/gone-pkg"] == 0
    assert set(feed_server.app[AGENTS]) == {USER_AGENT}
    assert all(v["schema_ver"] == "1.1" and v["artifact_id"] == "" for v in sink.values)

    again = Sink()
    await _once(npm_source(base_url), again, store)
    assert again.values == []
    assert store.load().cursor["since"] == LAST_SEQ


async def test_npm_fresh_cursor_starts_at_update_seq_not_since_now(
    base_url: str, registries: Registries, tmp_path: Path
) -> None:
    """Defect: a fresh cursor sent ``since=now``, which the paged replication API rejects."""
    sink = Sink()
    store = CursorStore.for_registry(tmp_path, "npm")
    await _once(npm_source(base_url, start="now"), sink, store)
    asked = [r.query.get("since") for r in registries.logged("/_changes")]
    assert asked == [str(LAST_SEQ)]  # GET / said update_seq 7
    assert registries.logged("/")[0].status == 200
    assert sink.values == [] and store.load().cursor["since"] == LAST_SEQ

    # What is published from then on arrives on the next poll.
    registries.npm.publish("fresh-pkg", "1.0.0", datetime.now(UTC))
    await _once(npm_source(base_url, start="now"), sink, store)
    assert [(v["name"], v["version"]) for v in sink.values] == [("fresh-pkg", "1.0.0")]


async def test_npm_head_falls_back_to_the_newest_change(
    base_url: str, registries: Registries, tmp_path: Path
) -> None:
    """A replica whose root is CouchDB's server welcome (no ``update_seq``): ask ``_changes``."""
    registries.npm.db_info = False
    store = CursorStore.for_registry(tmp_path, "npm")
    await _once(npm_source(base_url, start="now"), Sink(), store)
    assert [r.query.get("descending") for r in registries.logged("/_changes")] == ["true", None]
    assert store.load().cursor["since"] == LAST_SEQ


async def test_npm_rejected_cursor_is_reinitialised_not_fatal(
    base_url: str, registries: Registries, tmp_path: Path
) -> None:
    """Defect: a 4xx for the saved cursor (here a pre-2025 opaque sequence) stopped the feed."""
    store = CursorStore.for_registry(tmp_path, "npm")
    store.save(CursorState(cursor={"since": LEGACY_SEQ}))
    before = metric("typostream_feed_errors_total", registry="npm", kind="cursor_reset")
    stats = await _once(npm_source(base_url), Sink(), store)
    assert [r.status for r in registries.logged("/_changes")] == [400, 200]
    assert store.load().cursor["since"] == LAST_SEQ
    assert any("rejected (HTTP 400)" in note for note in stats.notes)
    assert metric("typostream_feed_errors_total", registry="npm", kind="cursor_reset") == before + 1

    registries.npm.publish("after-reset", "0.1.0", datetime.now(UTC))
    sink = Sink()
    await _once(npm_source(base_url), sink, store)
    assert [(v["name"], v["version"]) for v in sink.values] == [("after-reset", "0.1.0")]


async def test_npm_packuments_are_fetched_conditionally(
    base_url: str, registries: Registries, tmp_path: Path
) -> None:
    """Defect: packuments were fetched in full every time; now If-None-Match, 304 from the cache."""
    store = CursorStore.for_registry(tmp_path, "npm")
    source = npm_source(base_url)
    sink = Sink()
    await run_feed(source, sink, store, once=True)
    first = registries.logged("/left-pad")[-1]
    assert first.status == 200 and "If-None-Match" not in first.headers
    # Another change row for left-pad whose document the registry answers unchanged (same rev).
    registries.npm.rows.append({"seq": LAST_SEQ + 1, "id": "left-pad", "changes": [{"rev": "12-a1"}]})
    registries.npm.update_seq = LAST_SEQ + 1
    before = metric(
        "typostream_feed_http_requests_total", registry="npm", endpoint="packument", outcome="304"
    )
    await run_feed(source, sink, store, once=True)
    await source.close()
    second = registries.logged("/left-pad")[-1]
    assert second.headers.get("If-None-Match", "").startswith('"') and second.status == 304
    assert metric(
        "typostream_feed_http_requests_total", registry="npm", endpoint="packument", outcome="304"
    ) == (before + 1)
    assert sink.pairs()[("left-pad", "1.3.0")] == 1  # answered from the cache, not sent twice


async def test_npm_stale_packument_is_refetched_until_it_has_the_change(
    base_url: str, registries: Registries, tmp_path: Path
) -> None:
    """The registry's CDN lags the changes feed: the first answer is the revision before the change."""
    now = datetime.now(UTC)
    registries.npm.rows.clear()
    registries.npm.publish("lagging", "1.0.0", now - timedelta(days=30))
    store = CursorStore.for_registry(tmp_path, "npm")
    store.save(CursorState(cursor={"since": registries.npm.update_seq}))
    registries.npm.publish("lagging", "1.1.0", now, stale_requests=1)
    source = npm_source(base_url, stale_retry_s=60)
    sink = Sink()
    await run_feed(source, sink, store, once=True)
    assert sink.values == [] and "lagging" in store.load().cursor["pending"]
    await run_feed(source, sink, store, once=True)  # next poll: the CDN has caught up
    await source.close()
    assert [(v["name"], v["version"]) for v in sink.values] == [("lagging", "1.1.0")]
    assert "pending" not in store.load().cursor


async def test_npm_catch_up_after_downtime_keeps_versions_older_than_the_last_edit(
    base_url: str, registries: Registries, tmp_path: Path
) -> None:
    """Down for an hour: a version published 40 min ago, then a metadata edit 5 min ago. CouchDB
    lists the document once, at the edit; the version is still sent."""
    now = datetime.now(UTC)
    registries.npm.rows.clear()
    registries.npm.publish("busy", "1.0.0", now - timedelta(days=3))
    store = CursorStore.for_registry(tmp_path, "npm")
    down_since = rfc3339_utc(now - timedelta(hours=1))
    store.save(CursorState(cursor={"since": registries.npm.update_seq, "caught_up_at": down_since}))
    registries.npm.publish("busy", "2.0.0", now - timedelta(minutes=40))
    registries.npm.touch("busy", now - timedelta(minutes=5))  # e.g. `npm deprecate busy@1`
    assert [r["id"] for r in registries.npm.rows] == ["busy"]
    sink = Sink()
    await _once(npm_source(base_url), sink, store)
    assert [(v["name"], v["version"]) for v in sink.values] == [("busy", "2.0.0")]


async def test_npm_pages_through_a_backlog_without_losing_or_repeating(
    base_url: str, registries: Registries, tmp_path: Path
) -> None:
    now = datetime.now(UTC)
    registries.npm.rows.clear()
    store = CursorStore.for_registry(tmp_path, "npm")
    store.save(CursorState(cursor={"since": registries.npm.update_seq, "caught_up_at": rfc3339_utc(now)}))
    for n in range(45):
        registries.npm.publish(f"pkg-{n:02d}", "1.0.0", now + timedelta(seconds=n))
    sink = Sink()
    stats = await _drain(npm_source(base_url), sink, store, limit=10)
    assert sink.pairs() == Counter({(f"pkg-{n:02d}", "1.0.0"): 1 for n in range(45)})
    assert [r.query["limit"] for r in registries.logged("/_changes")][:5] == ["10"] * 5
    assert stats.polls == 5 and stats.backlog == 0


async def test_npm_package_feeds_fixture_packuments(
    base_url: str, registries: Registries, tmp_path: Path
) -> None:
    registries.npm.rows.clear()
    for n, (name, body) in enumerate(PACKAGE_FEEDS_PACKUMENTS.items(), start=1):
        registries.npm.raw["/" + name] = body
        registries.npm.rows.append({"seq": n, "id": name, "changes": [{"rev": "1-a"}]})
    sink = Sink()
    await _once(npm_source(base_url), sink, CursorStore.for_registry(tmp_path, "npm"))
    assert sink.triples() == PACKAGE_FEEDS_NPM_EXPECTED


async def test_npm_packument_outage_is_retried_later_not_lost(
    base_url: str, registries: Registries, tmp_path: Path
) -> None:
    now = datetime.now(UTC)
    registries.npm.rows.clear()
    store = CursorStore.for_registry(tmp_path, "npm")
    store.save(CursorState(cursor={"since": 0, "caught_up_at": rfc3339_utc(now - timedelta(minutes=1))}))
    registries.npm.publish("ok-pkg", "1.0.0", now)
    registries.npm.publish("down-pkg", "1.0.0", now)
    registries.down.add("/down-pkg")
    source = npm_source(base_url)
    sink = Sink()
    await run_feed(source, sink, store, once=True)
    assert [v["name"] for v in sink.values] == ["ok-pkg"]
    assert store.load().cursor["pending"]["down-pkg"]["reason"] == "unavailable"
    registries.down.clear()
    await run_feed(source, sink, store, once=True)
    await source.close()
    assert sink.pairs() == Counter({("ok-pkg", "1.0.0"): 1, ("down-pkg", "1.0.0"): 1})


# --- PyPI ---------------------------------------------------------------------------------------
async def test_pypi_fresh_start_sends_the_rss_window_and_starts_the_journal_now(
    base_url: str, registries: Registries, tmp_path: Path
) -> None:
    store = CursorStore.for_registry(tmp_path, "pypi")
    sink = Sink()
    await _once(pypi_source(base_url), sink, store)
    assert sink.triples() == PYPI_EXPECTED
    assert [v["name"] for v in sink.values] == ["numpy", "reqeusts", "flask-login"]  # oldest first
    cursor = store.load().cursor
    assert cursor["serial"] == registries.pypi.last_serial
    assert cursor["rss"]["newest"] == "2026-11-02T14:00:09Z"
    assert registries.pypi.xmlrpc_calls == Counter({"changelog_last_serial": 1})

    # Restart: the journal confirms nothing new, RSS repeats are dropped.
    again = Sink()
    stats = await _once(pypi_source(base_url), again, store)
    assert again.values == [] and stats.duplicates == 3
    assert registries.pypi.xmlrpc_calls["changelog_since_serial"] == 1


async def test_pypi_outage_longer_than_the_rss_window_loses_nothing(
    base_url: str, registries: Registries, tmp_path: Path
) -> None:
    """Defect: RSS holds the newest 100 releases; 250 published while the feed was down were
    partly lost. The journal replays them all, each once, with RSS and journal ids agreeing."""
    store = CursorStore.for_registry(tmp_path, "pypi")
    sink = Sink()
    await _once(pypi_source(base_url), sink, store)
    assert len(sink.values) == 3
    start = int(datetime(2026, 11, 2, 15, 0, tzinfo=UTC).timestamp())
    published = []
    for n in range(250):
        name = f"Outage_Pkg.{n:03d}" if n % 2 else f"outage-pkg-{n:03d}"
        registries.pypi.release(name, "1.0", start + 7 * n)
        published.append((pep503(name), "1.0"))
    registries.pypi.entry("outage-pkg-000", None, start + 2000, "add Owner someone")  # not a release
    await _drain(pypi_source(base_url), sink, store)
    assert len(registries.pypi.updates_xml().split(b"<item>")) - 1 == 100  # the window is 100
    after = sink.pairs()
    assert all(after[p] == 1 for p in published), "every release once"
    assert sum(after.values()) == 3 + 250
    assert store.load().cursor["serial"] == registries.pypi.last_serial


async def test_pypi_same_release_from_rss_and_journal_is_one_event(
    base_url: str, registries: Registries, tmp_path: Path
) -> None:
    """Defect: the RSS event was named by the title (display name), the journal's would not match."""
    store = CursorStore.for_registry(tmp_path, "pypi")
    sink = Sink()
    source = pypi_source(base_url)
    await run_feed(source, sink, store, once=True)
    registries.pypi.release("Django_REST.framework", "3.99.0", "2026-11-02T15:00:00Z")
    # RSS first (the journal is rate limited for this poll), then the journal.
    registries.pypi.rate_limited_calls = 1
    stats = await run_feed(source, sink, store, once=True)
    assert [(v["name"], v["version"]) for v in sink.values][-1] == ("django-rest-framework", "3.99.0")
    assert any("journal failed" in note for note in stats.notes)
    source._not_before = float("-inf")  # the fault said 1 s; do not wait in the test
    await run_feed(source, sink, store, once=True)
    await source.close()
    assert sink.pairs()[("django-rest-framework", "3.99.0")] == 1
    django = next(v for v in sink.values if v["name"] == "django-rest-framework")
    assert event_id(django) not in store.load().cursor.get("rss_unconfirmed", {})  # the journal met it


async def test_pypi_package_feeds_rss_fixture_with_leading_whitespace(
    base_url: str, registries: Registries, tmp_path: Path
) -> None:
    """Defect: a body with whitespace before the XML declaration failed to parse."""
    registries.pypi.rss_override = PACKAGE_FEEDS_UPDATES_XML
    sink = Sink()
    await _once(pypi_source(base_url), sink, CursorStore.for_registry(tmp_path, "pypi"))
    assert sink.triples() == {
        ("foopackage", "0.0.2", "2021-03-19T12:01:04.000Z"),
        ("barpackage", "0.7a2", "2021-03-19T12:00:39.000Z"),
    }


async def test_pypi_journal_pages_are_released_limit_at_a_time_without_refetching(
    base_url: str, registries: Registries, tmp_path: Path
) -> None:
    registries.pypi.page_size = 50  # warehouse: 50,000
    store = CursorStore.for_registry(tmp_path, "pypi")
    store.save(CursorState(cursor={"serial": registries.pypi.last_serial}))
    for n in range(60):  # 60 releases x 3 journal rows = 180 rows = 4 pages
        registries.pypi.release(f"paged-{n:02d}", "0.1", 1_800_000_000 + n)
    registries.pypi.rss_size = 5
    sink = Sink()
    stats = await _drain(pypi_source(base_url, changelog_page=50), sink, store, limit=7)
    assert sink.pairs() == Counter({(f"paged-{n:02d}", "0.1"): 1 for n in range(60)})
    assert registries.pypi.xmlrpc_calls["changelog_since_serial"] == 4  # 50 + 50 + 50 + 30 rows
    assert stats.polls >= 60 // 7 and stats.duplicates == 0


async def test_pypi_rss_only_mode_reports_the_gap(
    base_url: str, registries: Registries, tmp_path: Path
) -> None:
    store = CursorStore.for_registry(tmp_path, "pypi")
    store.save(CursorState(cursor={"rss": {"newest": "2026-11-01T00:00:00Z"}}))
    before = metric("typostream_feed_errors_total", registry="pypi", kind="rss_gap")
    stats = await _once(pypi_source(base_url, changelog=False), Sink(), store)
    assert any("may have been lost" in note for note in stats.notes)
    assert metric("typostream_feed_errors_total", registry="pypi", kind="rss_gap") == before + 1
    assert registries.pypi.xmlrpc_calls == Counter()


async def test_pypi_new_projects_option(base_url: str, registries: Registries, tmp_path: Path) -> None:
    store = CursorStore.for_registry(tmp_path, "pypi")
    sink = Sink()
    await _once(pypi_source(base_url, new_projects=True), sink, store)
    assert ("brand-new", "0.0.1", "2026-11-02T14:00:07.123Z") in sink.triples()


async def test_pypi_unavailable_journal_and_rss_keep_the_cursor(
    base_url: str, registries: Registries, tmp_path: Path
) -> None:
    store = CursorStore.for_registry(tmp_path, "pypi")
    store.save(CursorState(cursor={"serial": PYPI_SEED_SERIAL}))
    registries.down.update({"/rss", "/pypi"})
    with pytest.raises(UpstreamUnavailableError):
        await _once(pypi_source(base_url), Sink(), store)
    assert store.load().cursor == {"serial": PYPI_SEED_SERIAL}
    registries.down.clear()
    sink = Sink()
    await _once(pypi_source(base_url), sink, store)
    assert sink.triples() == PYPI_EXPECTED  # replayed from the journal


# --- HTTP behaviour, loop, metrics --------------------------------------------------------------
async def test_retry_after_is_honoured(base_url: str, registries: Registries, tmp_path: Path) -> None:
    """Defect: 429/503 were retried after the jittered backoff only (10 ms here), not Retry-After."""
    registries.script("/rss/updates.xml", Scripted(429, {"Retry-After": "1"}, b"slow down"))
    http = _http()
    try:
        body = await http.get(base_url + "/rss/updates.xml")
    finally:
        await http.close()
    first, second = registries.logged("/rss/updates.xml")[:2]
    assert first.status == 429 and second.status == 200 and body is not None and b"<rss" in body
    assert second.at - first.at >= 1.0


async def test_long_retry_after_postpones_the_next_poll(
    base_url: str, registries: Registries, tmp_path: Path
) -> None:
    """A Retry-After longer than the client waits inside a poll: give up at once, the loop waits it."""
    registries.script("/rss/updates.xml", Scripted(503, {"Retry-After": "2"}))
    source = pypi_source(base_url, changelog=False, http=FeedHTTP(timeout_s=2, retries=3, max_wait_s=0.5))
    stop = asyncio.Event()
    seen: list[str] = []

    def status(stats: Any) -> None:
        seen.append(stats.last_error)
        if len(seen) == 2:
            stop.set()

    store = CursorStore.for_registry(tmp_path, "pypi")
    await asyncio.wait_for(run_feed(source, Sink(), store, interval_s=0.05, on_status=status, stop=stop), 10)
    await source.close()
    first, second = registries.logged("/rss/updates.xml")[:2]
    assert "retry after 2 s" in seen[0] and seen[1] == ""
    assert second.at - first.at >= 2.0  # not 0.05 s (the interval), not 3 attempts in a row

    with pytest.raises(UpstreamRateLimitedError):
        registries.script("/rss/updates.xml", Scripted(503, {"Retry-After": "120"}))
        http = FeedHTTP(timeout_s=2, retries=3, max_wait_s=1)
        try:
            await http.get(base_url + "/rss/updates.xml")
        finally:
            await http.close()


async def test_feed_metrics_move(base_url: str, registries: Registries, tmp_path: Path) -> None:
    """Defect: the feed process had no metrics."""
    labels = {"registry": "npm"}
    polls = metric("typostream_feed_polls_total", outcome="ok", **labels)
    events = metric("typostream_feed_events_total", **labels)
    delivered = metric("typostream_feed_delivery_seconds_count", **labels)
    registries.npm.rows.clear()
    store = CursorStore.for_registry(tmp_path, "npm")
    store.save(CursorState(cursor={"since": 0, "caught_up_at": rfc3339_utc(datetime.now(UTC))}))
    registries.npm.publish("metered", "1.0.0", datetime.now(UTC) - timedelta(seconds=30))
    await _once(npm_source(base_url), Sink(), store)
    assert metric("typostream_feed_polls_total", outcome="ok", **labels) == polls + 1
    assert metric("typostream_feed_events_total", **labels) == events + 1
    assert metric("typostream_feed_delivery_seconds_count", **labels) == delivered + 1
    assert 29 <= metric("typostream_feed_lag_seconds", **labels) < 120
    assert metric("typostream_feed_last_success_timestamp_seconds", **labels) > time.time() - 60
    assert metric("typostream_feed_backlog", **labels) == 0


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


async def test_continuous_mode_survives_a_proxy_error_page(
    base_url: str, registries: Registries, tmp_path: Path
) -> None:
    registries.script("/rss/updates.xml", Scripted(200, {"Content-Type": "text/html"}, b"<html>oops</html>"))
    source = pypi_source(base_url, changelog=False)
    stop = asyncio.Event()
    sink = Sink()

    def status(stats: Any) -> None:
        if stats.polls >= 1:
            stop.set()

    stats = await asyncio.wait_for(
        run_feed(source, sink, CursorStore.for_registry(tmp_path, "pypi"), 0.05, on_status=status, stop=stop),
        10,
    )
    await source.close()
    assert stats.errors == 1 and sink.triples() == PYPI_EXPECTED


async def test_wrong_base_url_is_an_http_error(base_url: str, tmp_path: Path) -> None:
    source = pypi_source(base_url + "/nope", changelog=False)
    with pytest.raises(UpstreamHTTPError, match="HTTP 404"):
        await run_feed(source, Sink(), CursorStore.for_registry(tmp_path, "pypi"), once=True)
    await source.close()


def test_corrupt_cursor_file_is_reported(tmp_path: Path) -> None:
    store = CursorStore.for_registry(tmp_path, "npm")
    store.path.parent.mkdir(parents=True)
    store.path.write_text("{not json")
    with pytest.raises(CursorFileError, match="delete it"):
        store.load()
