"""Observability pieces one at a time: metric helpers, scrape-time gauges, readiness, the request
middleware on a real aiohttp server, the feed/alerts metrics server, the OpenAPI loader, ClickHouse
timing on real chDB, alert delivery metrics against the local receiver, consumer lag arithmetic."""

from __future__ import annotations

import asyncio
import os
import re
import socket
import urllib.error
import urllib.request
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4

from tests.alert_receiver import Receiver
from typostream.agents.adapters import metrics
from typostream.agents.adapters.alerts import Delivery, TokenBucket, parse_targets
from typostream.agents.adapters.http import LazySession
from typostream.agents.domain.errors import ConfigError, StoreError
from typostream.streams import lag
from typostream.streams.cli.options import mark_ready, serve_metrics
from typostream.streams.web.common import request_metrics
from typostream.streams.web.openapi import OpenApiDocument


def sample(name: str, labels: dict[str, str] | None = None) -> float:
    return REGISTRY.get_sample_value(name, labels or {}) or 0.0


# --- helpers ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-25T10:00:00Z", 1795600800.0),
        ("2026-11-25T10:00:00.123456789Z", 1795600800.123456),  # Go's RFC 3339 nanoseconds
        ("2026-11-25T11:00:00+01:00", 1795600800.0),
        ("2026-11-25T10:00:00", 1795600800.0),  # naive: UTC
        ("yesterday", None),
        ("", None),
        (None, None),
        (12, None),
    ],
)
def test_parse_timestamp(text: object, expected: float | None) -> None:
    got = metrics.parse_timestamp(text)
    assert got == pytest.approx(expected) if expected is not None else got is None


def test_threat_latency_is_observed_from_publish_and_receive_times() -> None:
    count = partial(sample, "typostream_publish_to_threat_seconds_count")
    total = partial(sample, "typostream_publish_to_threat_seconds_sum")
    r_count = partial(sample, "typostream_receive_to_threat_seconds_count")
    r_total = partial(sample, "typostream_receive_to_threat_seconds_sum")
    before = (count(), total(), r_count(), r_total())
    now = metrics.parse_timestamp("2026-11-25T10:01:00Z")
    metrics.observe_threat_latency("2026-11-25T10:00:00Z", "2026-11-25T10:00:59.5Z", now)
    assert count() - before[0] == 1 and total() - before[1] == pytest.approx(60.0)
    assert r_count() - before[2] == 1 and r_total() - before[3] == pytest.approx(0.5)
    # A publish "after" now (clock skew) counts as 0; unusable dates are skipped.
    metrics.observe_threat_latency("2026-11-25T10:05:00Z", "garbage", now)
    assert count() - before[0] == 2 and total() - before[1] == pytest.approx(60.0)
    assert r_count() - before[2] == 1


def threat(target: str, technique: str = "repetition") -> dict[str, Any]:
    return {
        "type": "typosquat",
        "severity": "high",
        "package": {"registry": "npm", "name": f"x-{target}", "version": "1.0.0"},
        "threat": {"technique": technique, "target": target},
    }


def test_observe_threat_counts_technique_and_a_bounded_set_of_targets(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(metrics, "_targets", set())
    monkeypatch.setattr(metrics, "MAX_TARGET_LABELS", 2)
    techniques = {"type": "typosquat", "technique": "obs-unit", "severity": "high"}
    before = sample("typostream_threat_techniques_total", techniques)
    event = {"created_date": "2026-11-25T10:00:00Z", "received_at": "2026-11-25T10:00:01Z"}
    for target in ("obs-a", "obs-b", "obs-c", "obs-a", "obs-d"):
        metrics.observe_threat(threat(target, "obs-unit"), event)
    assert sample("typostream_threat_techniques_total", techniques) - before == 5
    counted = {
        t: sample("typostream_threat_targets_total", {"registry": "npm", "target": t})
        for t in ("obs-a", "obs-b", "obs-c", "obs-d", "_other")
    }
    assert counted["obs-a"] >= 2 and counted["obs-b"] >= 1
    assert counted["obs-c"] == counted["obs-d"] == 0  # over the bound: counted as _other
    assert counted["_other"] >= 2
    metrics.observe_threat({"type": "typosquat"}, {})  # a malformed threat never raises


def test_count_scanned_by_registry() -> None:
    before = sample("typostream_packages_scanned_total", {"registry": "pypi"})
    metrics.count_scanned("pypi")
    metrics.count_scanned("rubygems")  # not pre-bound: still counted
    assert sample("typostream_packages_scanned_total", {"registry": "pypi"}) - before == 1
    assert sample("typostream_packages_scanned_total", {"registry": "rubygems"}) >= 1


def test_cache_hit_ratio_is_computed_at_scrape_time() -> None:
    for _ in range(3):
        metrics.CACHE_REQUESTS.labels("l3", "hit", "obs-unit").inc()
    metrics.CACHE_REQUESTS.labels("l3", "miss", "obs-unit").inc()
    hits = sum(
        sample("typostream_cache_requests_total", {"level": "l3", "result": "hit", "cls": c})
        for c in ("obs-unit", "metadata", "malicious")
    )
    lookups = hits + sum(
        sample("typostream_cache_requests_total", {"level": "l3", "result": "miss", "cls": c})
        for c in ("obs-unit", "metadata", "malicious")
    )
    assert sample("typostream_cache_hit_ratio", {"level": "l3"}) == pytest.approx(hits / lookups)


def test_memory_limit_is_the_cgroup_limit_or_the_machine() -> None:
    limit = metrics.memory_limit_bytes()
    assert limit is not None and limit > 0
    pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    assert limit <= pages * 1.01
    assert sample("typostream_memory_limit_bytes") == pytest.approx(limit)
    # prometheus_client's process collector is registered: memory and CPU of every process.
    assert sample("process_resident_memory_bytes") > 0
    assert sample("process_cpu_seconds_total") > 0


def test_readiness_needs_every_check() -> None:
    ready = metrics.Readiness()
    assert ready.ready() == (False, {})  # nothing registered: not ready
    ready.set("kafka", False)
    assert ready.ready() == (False, {"kafka": False})
    ready.set("kafka", True)
    ready.add_check("boom", lambda: 1 / 0 > 0)
    assert ready.ready() == (False, {"kafka": True, "boom": False})  # a check that raises fails
    ready.add_check("boom", lambda: True)
    assert ready.ready() == (True, {"kafka": True, "boom": True})


# --- the request metrics middleware -------------------------------------------------------------------
async def test_request_metrics_middleware_counts_every_request() -> None:
    gate = asyncio.Event()

    async def ok(request: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    async def boom(request: web.Request) -> web.Response:
        raise RuntimeError("bug")

    async def slow(request: web.Request) -> web.Response:
        await gate.wait()
        return web.Response(text="done")

    async def refuse(request: web.Request) -> web.Response:
        raise web.HTTPUnauthorized()

    app = web.Application(middlewares=[request_metrics()])
    app.router.add_get("/obs/item/{name}", ok)
    app.router.add_get("/obs/boom", boom)
    app.router.add_get("/obs/slow", slow)
    app.router.add_get("/obs/refuse", refuse)
    labels = partial(dict, method="GET")
    before = {
        "item": sample("typostream_http_requests_total", labels(endpoint="/obs/item/{name}", status="200")),
        "boom": sample("typostream_http_requests_total", labels(endpoint="/obs/boom", status="500")),
        "refuse": sample("typostream_http_requests_total", labels(endpoint="/obs/refuse", status="401")),
        "unmatched": sample("typostream_http_requests_total", labels(endpoint="unmatched", status="404")),
        "seconds": sample(
            "typostream_http_request_duration_seconds_count", labels(endpoint="/obs/item/{name}")
        ),
    }
    async with TestClient(TestServer(app)) as client:
        for name in ("a", "b", "c"):  # three paths, one route: one label value
            assert (await client.get(f"/obs/item/{name}")).status == 200
        assert (await client.get("/obs/boom")).status == 500
        assert (await client.get("/obs/refuse")).status == 401
        assert (await client.get("/made/up/path")).status == 404
        pending = asyncio.ensure_future(client.get("/obs/slow"))
        for _ in range(100):
            if sample("typostream_http_requests_in_flight", {"endpoint": "/obs/slow"}) == 1:
                break
            await asyncio.sleep(0.01)
        assert sample("typostream_http_requests_in_flight", {"endpoint": "/obs/slow"}) == 1
        gate.set()
        assert (await pending).status == 200
    assert sample("typostream_http_requests_in_flight", {"endpoint": "/obs/slow"}) == 0
    after = partial(sample, "typostream_http_requests_total")
    assert after(labels(endpoint="/obs/item/{name}", status="200")) - before["item"] == 3
    assert after(labels(endpoint="/obs/boom", status="500")) - before["boom"] == 1
    assert after(labels(endpoint="/obs/refuse", status="401")) - before["refuse"] == 1
    assert after(labels(endpoint="unmatched", status="404")) - before["unmatched"] == 1
    seconds = sample("typostream_http_request_duration_seconds_count", labels(endpoint="/obs/item/{name}"))
    assert seconds - before["seconds"] == 3


# --- the feed/alerts metrics server --------------------------------------------------------------------
def get(url: str, accept: str | None = None) -> tuple[int, str, bytes]:
    request = urllib.request.Request(url, headers={"Accept": accept} if accept else {})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.headers["Content-Type"], response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers["Content-Type"], exc.read()


@pytest.fixture
def metrics_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setattr(metrics, "READINESS", metrics.Readiness())
    server = serve_metrics("127.0.0.1", 0)
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_metrics_server_serves_metrics_health_and_readiness(metrics_server: str) -> None:
    status, content_type, body = get(metrics_server + "/metrics")
    assert status == 200 and content_type == CONTENT_TYPE_PLAIN_0_0_4  # with version=0.0.4
    assert b"# TYPE typostream_feed_polls_total counter" in body
    status, content_type, _ = get(
        metrics_server + "/metrics", "text/plain;version=1.0.0;escaping=underscores"
    )
    assert status == 200 and content_type.startswith(CONTENT_TYPE_LATEST)  # what Prometheus 3 asks for
    status, content_type, _ = get(metrics_server + "/metrics", "application/openmetrics-text;version=1.0.0")
    assert status == 200 and content_type.startswith("application/openmetrics-text; version=1.0.0")

    status, _, body = get(metrics_server + "/healthz")
    assert status == 200 and orjson.loads(body)["status"] == "ok"
    status, _, body = get(metrics_server + "/readyz")  # the Kafka client has not started
    assert (status, orjson.loads(body)) == (503, {"ready": False, "checks": {"kafka": False}})
    assert b'typostream_ready{check="kafka"} 0.0' in get(metrics_server + "/metrics")[2]
    mark_ready("kafka")
    status, _, body = get(metrics_server + "/readyz")
    assert (status, orjson.loads(body)) == (200, {"ready": True, "checks": {"kafka": True}})
    assert b'typostream_ready{check="kafka"} 1.0' in get(metrics_server + "/metrics")[2]
    assert get(metrics_server + "/nope")[0] == 404


def test_metrics_server_on_a_taken_port_is_a_config_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ConfigError, match=f"--metrics-port {port}: cannot listen on 127.0.0.1"):
            serve_metrics("127.0.0.1", port)


# --- OpenAPI document -----------------------------------------------------------------------------------
def test_openapi_document_is_served_as_json_and_reloaded(tmp_path: Path) -> None:
    path = tmp_path / "openapi.yaml"
    document = OpenApiDocument(path)
    assert document.json() is None  # no file yet
    path.write_text("openapi: 3.1.0\ninfo: {title: t, version: '1'}\npaths: {}\n")
    expected = {"openapi": "3.1.0", "info": {"title": "t", "version": "1"}, "paths": {}}
    assert orjson.loads(document.json() or b"") == expected
    path.write_text("openapi: 3.1.0\ninfo: {title: changed, version: '2'}\npaths: {}\n")
    assert orjson.loads(document.json() or b"")["info"]["title"] == "changed"
    path.write_text("- just\n- a list\n")
    with pytest.raises(ConfigError, match="not an OpenAPI document"):
        document.json()
    path.write_text("openapi: [unclosed\n")
    with pytest.raises(ConfigError, match="not readable as YAML"):
        document.json()


# --- ClickHouse timing and connection gauges (real chDB) ------------------------------------------------
def test_clickhouse_statements_are_timed_and_connections_reported(tmp_path: Path) -> None:
    from typostream.agents.adapters.clickhouse import ClickHouseConnection

    ops = ("insert", "query", "command")
    before = {op: sample("typostream_clickhouse_query_duration_seconds_count", {"op": op}) for op in ops}
    errors = sample("typostream_clickhouse_errors_total", {"op": "query"})
    connections = partial(sample, "typostream_db_connections")
    open_before = connections({"db": "clickhouse", "state": "open"})
    connection = ClickHouseConnection.open(f"chdb://{tmp_path / 'ch'}", tmp_path / "ch")
    try:
        assert connections({"db": "clickhouse", "state": "open"}) == open_before + 1
        client = connection.client
        connection.run(partial(client.command, "CREATE TABLE t (x UInt32) ENGINE = MergeTree ORDER BY x"))
        connection.run(partial(client.insert, "t", [[1], [2]], column_names=["x"]))
        assert connection.rows("SELECT count() FROM t") == [(2,)]
        with pytest.raises(StoreError):
            connection.select("SELECT no_such_column FROM t")
        assert connection.in_use == 0
        assert connections({"db": "clickhouse", "state": "in_use"}) == 0
    finally:
        connection.close()
    after = {op: sample("typostream_clickhouse_query_duration_seconds_count", {"op": op}) for op in ops}
    assert after["command"] - before["command"] >= 1
    assert after["insert"] - before["insert"] == 1
    assert after["query"] - before["query"] >= 2
    assert sample("typostream_clickhouse_errors_total", {"op": "query"}) - errors == 1
    assert connection.closed
    assert connections({"db": "clickhouse", "state": "open"}) == open_before


# --- alert delivery metrics against the local receiver --------------------------------------------------
async def test_alert_delivery_metrics_per_target() -> None:
    receiver = Receiver()
    await receiver.start()
    try:
        receiver.answer_path("/gone", 404)
        receiver.answer_path("/busy", 503)
        urls = ",".join(receiver.url(p) for p in ("/ok", "/gone", "/busy"))
        ok, gone, busy = parse_targets(urls, "", "low")
        http = LazySession(5.0, {})

        async def no_sleep(_: float) -> None:
            return None

        delivery = Delivery(max_attempts=2, backoff_s=0.0, timeout_s=5.0, session=http.get, sleep=no_sleep)
        labels = {t.label: t for t in (ok, gone, busy)}
        before = {
            (label, outcome): sample(
                "typostream_alert_deliveries_total", {"target": label, "outcome": outcome}
            )
            for label in labels
            for outcome in ("delivered", "refused", "gave_up")
        }
        attempts_503 = sample(
            "typostream_alert_delivery_attempts_total", {"target": busy.label, "outcome": "503"}
        )
        seconds = sample("typostream_alert_delivery_seconds_count", {"target": ok.label})
        for target in (ok, gone, busy):
            await delivery.post(target, b"{}", "t-1", TokenBucket(100.0, 10))
        await http.close()
    finally:
        await receiver.stop()

    def delta(label: str, outcome: str) -> float:
        now = sample("typostream_alert_deliveries_total", {"target": label, "outcome": outcome})
        return now - before[(label, outcome)]

    assert (delta(ok.label, "delivered"), delta(gone.label, "refused"), delta(busy.label, "gave_up")) == (
        1,
        1,
        1,
    )
    assert delta(ok.label, "refused") == delta(gone.label, "delivered") == 0
    assert (
        sample("typostream_alert_delivery_attempts_total", {"target": busy.label, "outcome": "503"})
        - (attempts_503)
        == 2
    )  # both attempts
    assert sample("typostream_alert_delivery_seconds_count", {"target": ok.label}) - seconds == 1


# --- consumer lag arithmetic ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("highwater", "committed", "read", "expected"),
    [
        (100, 40, 70, 60),  # committed offset wins over the read position
        (100, None, 69, 30),  # before the first commit: the position after the last read
        (100, None, None, None),  # nothing known yet
        (None, 40, 70, None),  # not fetched yet
        (100, 120, 70, 0),  # never negative
    ],
)
def test_partition_lag(
    highwater: int | None, committed: int | None, read: int | None, expected: int | None
) -> None:
    assert lag.partition_lag(highwater, committed, read) == expected


def test_lag_sample_sets_assigned_partitions_and_drops_revoked_ones() -> None:
    """``sample`` against a stand-in for Faust's consumer (the attributes it reads)."""
    from faust.types import TP

    class Consumer:
        def __init__(self, assigned: set[TP], highwaters: dict[TP, int | None]) -> None:
            self.assigned, self.highwaters = assigned, highwaters
            self._committed_offset = {TP("obs-in", 0): 5, TP("obs-in", 1): 7}
            self._read_offset = {TP("obs-in", 1): 9, TP("obs-other", 0): 1}

        def assignment(self) -> set[TP]:
            return self.assigned

        def highwater(self, tp: TP) -> int | None:
            return self.highwaters[tp]

    tps = {TP("obs-in", 0), TP("obs-in", 1), TP("obs-other", 0)}
    reported: set[tuple[str, int]] = set()
    lags = lag.sample(Consumer(tps, dict.fromkeys(tps, 10)), {"obs-in"}, reported)
    assert lags == {("obs-in", 0): 5, ("obs-in", 1): 3}  # obs-other is not a consumed topic
    assert sample("typostream_consumer_lag", {"topic": "obs-in", "partition": "0"}) == 5
    # Rebalanced: partition 0 revoked, 1 not fetched yet.
    lags = lag.sample(Consumer({TP("obs-in", 1)}, {TP("obs-in", 1): None}), {"obs-in"}, reported)
    assert lags == {} and reported == set()
    assert REGISTRY.get_sample_value("typostream_consumer_lag", {"topic": "obs-in", "partition": "0"}) is None


def test_readme_lists_every_metric() -> None:
    """README's "Observability" section names every metric a process declares (typostream_* and process_*)."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme.split("## Observability", 1)[1].split("\n## ", 1)[0]
    listed = set(re.findall(r"`((?:typostream|process)_[a-z0-9_]+)", section))
    declared = set()
    for family in REGISTRY.collect():
        if family.name.startswith(("typostream_", "process_")):
            declared.add(family.name + ("_total" if family.type == "counter" else ""))
    assert declared - listed == set(), "add these to README's Observability section"
    assert listed - declared == set(), "README lists metrics no process declares"
