"""Every metric of every long-running process, present and moving after a replay on the embedded stack.

One scenario for the module (starting a worker takes a while): a real worker (as ``worker_factory``
starts it: ``WorkerProcess`` + ``wait_ready``) with registry-metadata enrichment against a slow local
registry (so the enrichment falls behind and consumer lag builds up, then drains), Redis, chDB and an
advisory index synced from the OSV fixtures; ``typostream feed --registry pypi`` against the fixture
PyPI publishing into the worker's input topic; ``typostream alerts run`` delivering the worker's
threats to ``tests/alert_receiver.py`` (one target answers 404). Each process's ``/metrics`` is
scraped after a first replay (A) and after a second one (B): counters and histograms must have moved.
The dashboards and alert rules are then checked against the metric names these processes expose.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml
from aiohttp import web

from tests.alert_receiver import ThreadedReceiver, threaded_receiver
from tests.integration.conftest import consume_all, produce, serve_in_thread
from tests.streams.feeds.fixture_feeds import Registries, make_app, seeded
from typostream.agents.adapters.advisory_index import sync
from typostream.streams.config import Settings
from typostream.streams.stack import StackState
from typostream.streams.stack.processes import free_port, spawn
from typostream.streams.worker_process import WorkerProcess, settings_env

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
ENRICH_FIXTURES = ROOT / "tests" / "agents" / "enrichment" / "fixtures"
OSV_FIXTURES = ROOT / "tests" / "fixtures" / "osv" / "malicious-packages"
TOKEN = "obs-e2e-token"
SLOW_PACKAGES = 160
SLOW_S = 0.5  # per registry lookup: 160 lookups / 8 concurrent ≈ 10 s behind
PROMTOOL = shutil.which("promtool")


# --- scraping ------------------------------------------------------------------------------------------
@dataclass
class Scrape:
    text: str
    content_type: str

    def samples(self) -> list[tuple[str, dict[str, str], float]]:
        out = []
        for line in self.text.splitlines():
            if not line or line.startswith("#"):
                continue
            match = re.fullmatch(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)", line)
            assert match, line
            labels = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', match.group(2) or ""))
            out.append((match.group(1), labels, float(match.group(3))))
        return out

    def value(self, name: str, **labels: str) -> float | None:
        """Sum of ``name``'s samples whose labels include ``labels``; None when there is none."""
        found = [v for n, lab, v in self.samples() if n == name and labels.items() <= lab.items()]
        return sum(found) if found else None

    def series(self, name: str) -> list[dict[str, str]]:
        return [lab for n, lab, _ in self.samples() if n == name]

    def families(self) -> dict[str, str]:
        return dict(re.findall(r"^# TYPE (\S+) (\S+)$", self.text, flags=re.MULTILINE))

    def exposed_names(self) -> set[str]:
        """Every name a query may use: sample names, plus each declared family's series names (a
        labelled counter that never fired is declared but has no samples yet)."""
        names = {n for n, _, _ in self.samples()}
        suffixes = {
            "counter": ("",),  # prometheus_client declares counters by their _total name
            "histogram": ("_bucket", "_sum", "_count", "_created"),
            "summary": ("_sum", "_count", "_created"),
            "gauge": ("",),
        }
        for family, kind in self.families().items():
            names.update(family + s for s in suffixes.get(kind, ("",)))
        return names


def http(
    url: str, *, token: str | None = None, body: Any = None, accept: str | None = None
) -> tuple[int, dict, bytes]:
    headers = {}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    if accept:
        headers["Accept"] = accept
    data = None
    if body is not None:
        data, headers["Content-Type"] = orjson.dumps(body), "application/json"
    request = urllib.request.Request(url, data=data, headers=headers, method="POST" if data else "GET")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def scrape(base: str, accept: str | None = None) -> Scrape:
    status, headers, body = http(base + "/metrics", accept=accept)
    assert status == 200, body[:300]
    return Scrape(body.decode(), headers["Content-Type"])


def wait_until(
    what: str, done: Callable[[], bool], timeout_s: float = 120.0, alive: Callable[[], None] = lambda: None
) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        alive()
        if done():
            return
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


# --- servers in threads --------------------------------------------------------------------------------
serve = serve_in_thread  # an aiohttp app on 127.0.0.1 in a background thread; yields its base URL


def slow_registry() -> web.Application:
    """npm metadata for crossenv (its preinstall exfiltrates env vars) and left-pad; any other
    package is looked up slowly (``SLOW_S``) and not found."""
    known = {
        "/crossenv/6.1.1": json.loads((ENRICH_FIXTURES / "npm_evil_1.0.0.json").read_text()),
        "/left-pad/1.3.0": json.loads((ENRICH_FIXTURES / "npm_left-pad_1.3.0.json").read_text()),
    }

    async def handle(request: web.Request) -> web.Response:
        path = request.raw_path.split("?")[0]
        if path in known:
            return web.json_response(known[path])
        await asyncio.sleep(SLOW_S)
        return web.json_response({"error": "Not found"}, status=404)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    return app


def publish(name: str, version: str, registry: str) -> bytes:
    now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return orjson.dumps(
        {
            "name": name,
            "version": version,
            "created_date": now,
            "type": registry,
            "artifact_id": "",
            "schema_ver": "1.1.0",
        }
    )


# --- the scenario ---------------------------------------------------------------------------------------
@dataclass
class Process:
    name: str
    base: str
    a: Scrape | None = None
    b: Scrape | None = None


@dataclass
class Observed:
    settings: Settings
    worker: Process
    feed: Process
    alerts: Process
    max_lag: dict[str, float] = field(default_factory=dict)
    """Largest typostream_consumer_lag seen per topic while the first replay was processed."""
    threats: int = 0

    def processes(self) -> list[Process]:
        return [self.worker, self.feed, self.alerts]


class Subprocess:
    def __init__(self, argv: list[str], env: dict[str, str], log: Path) -> None:
        self.log = log
        self.process = spawn(
            [sys.executable, "-m", "typostream.streams.cli", *argv], log, die_with_parent=True, env=env
        )

    def alive(self) -> None:
        assert self.process.poll() is None, f"{self.log.name} exited; log: {self.log.read_text()[-3000:]}"

    def metrics_url(self) -> str:
        found: list[str] = []

        def printed() -> bool:
            found.extend(re.findall(r"metrics on (http://127\.0\.0\.1:\d+)/metrics", self.log.read_text()))
            return bool(found)

        wait_until(f"{self.log.name} to serve /metrics", printed, 60, self.alive)
        return found[0]

    def stop(self) -> int | None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        return self.process.returncode


@pytest.fixture(scope="module")
def observed(embedded_stack: StackState, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Observed]:
    tmp = tmp_path_factory.mktemp("observability")
    suffix = uuid.uuid4().hex[:8]
    registries: Registries = seeded()
    with (
        serve(slow_registry()) as registry_url,
        serve(make_app(registries)) as feed_url,
        threaded_receiver() as receiver,
    ):
        settings = Settings(
            data_dir=tmp / "worker",
            kafka_bootstrap=embedded_stack.kafka_bootstrap,
            redis_url=embedded_stack.redis_url,
            clickhouse_dsn=f"chdb://{tmp / 'clickhouse'}",
            app_id=f"typostream-{suffix}",
            web_port=free_port(),
            sink_batch_seconds=0.2,
            api_token=TOKEN,
            registry_metadata=True,
            npm_registry_url=registry_url,
            pypi_url=registry_url,
            **{f.name: f"{f.default}-{suffix}" for f in fields(Settings) if f.name.startswith("topic_")},
        )
        sync(OSV_FIXTURES, settings.data_dir / "advisories")  # the worker's advisory index
        worker = WorkerProcess(settings).start()  # what worker_factory does
        feed = alerts = None
        try:
            worker.wait_ready(timeout_s=90)
            receiver.answer_path("/gone", 404)
            alert_env = {
                **settings_env(settings),
                "TYPOSTREAM_ALERT_WEBHOOK_URLS": f"{receiver.url('/hook')},{receiver.url('/gone')}",
                "TYPOSTREAM_ALERT_MIN_SEVERITY": "low",
                "TYPOSTREAM_DATA_DIR": str(tmp / "alerts"),
            }
            alerts = Subprocess(["alerts", "run", "--metrics-port", "0"], alert_env, tmp / "alerts.log")
            feed = Subprocess(
                [
                    "feed",
                    "--registry",
                    "pypi",
                    "--interval",
                    "0.3",
                    "--metrics-port",
                    "0",
                    "--pypi-url",
                    feed_url,
                    "--data-dir",
                    str(tmp / "feed"),
                ],
                settings_env(settings),
                tmp / "feed.log",
            )
            run = Observed(
                settings,
                Process("worker", worker.base_url),
                Process("feed", feed.metrics_url()),
                Process("alerts", alerts.metrics_url()),
            )
            replay(run, worker, feed, alerts, receiver, registries)
            yield run
        finally:
            codes = {"feed": feed.stop() if feed else 0, "alerts": alerts.stop() if alerts else 0}
            worker.stop()
            assert codes == {"feed": 0, "alerts": 0}, codes


def replay(
    run: Observed,
    worker: WorkerProcess,
    feed: Subprocess,
    alerts: Subprocess,
    receiver: ThreadedReceiver,
    registries: Registries,
) -> None:
    settings = run.settings
    w = run.worker

    def alive() -> None:
        assert worker.alive(), f"worker died; log: {worker.log_path.read_text()[-3000:]}"
        feed.alive()
        alerts.alive()

    def analysed() -> float:
        return scrape(w.base).value("typostream_events_analysed_total") or 0.0

    def lag_drained() -> bool:
        values = [v for n, _, v in scrape(w.base).samples() if n == "typostream_consumer_lag"]
        return bool(values) and all(v == 0 for v in values)

    def delivered_all() -> bool:
        got = scrape(run.alerts.base).value(
            "typostream_alert_deliveries_total", target="webhook1", outcome="delivered"
        )
        threat_ids = {
            t["id"] for t in asyncio.run(consume_all(settings, settings.topic_threats, timeout_s=2.0))
        }
        run.threats = len(threat_ids)
        return bool(threat_ids) and got == len(threat_ids)

    # Replay A: squats, a known-malicious version, a malicious install script, clean and invalid input,
    # and packages whose metadata lookup is slow (enrichment falls behind the analysed topic).
    batch = [publish(n, "1.0.0", r) for n, r in (("expresss", "npm"), ("lodahs", "npm"), ("djnago", "pypi"))]
    batch += [
        publish("0-dns", "1.0.0", "npm"),
        publish("crossenv", "6.1.1", "npm"),
        publish("left-pad", "1.3.0", "npm"),
        b"not json",
        b"{}",
    ]
    batch += [publish(f"obs-slow-{i}", "1.0.0", "npm") for i in range(SLOW_PACKAGES)]
    asyncio.run(produce(settings, batch))
    expected = 6 + SLOW_PACKAGES + 3  # + the feed's three PyPI releases
    deadline = time.monotonic() + 180
    while True:
        alive()
        for labels, value in (
            (lab, v) for n, lab, v in scrape(w.base).samples() if n == "typostream_consumer_lag"
        ):
            run.max_lag[labels["topic"]] = max(run.max_lag.get(labels["topic"], 0.0), value)
        if analysed() >= expected and lag_drained():
            break
        assert time.monotonic() < deadline, (
            f"replay A: analysed {analysed()} of {expected}, lag {run.max_lag}"
        )
        time.sleep(0.5)
    wait_until("replay A's alerts", delivered_all, 90, alive)
    wait_until(
        "the feed's three releases",
        lambda: scrape(run.feed.base).value("typostream_feed_events_total") == 3,
        60,
        alive,
    )
    for process in run.processes():
        process.a = scrape(process.base)

    # Between the scrapes: the API, its guard, a refused query (ClickHouse's error), unknown paths.
    assert http(w.base + "/api/v1/stats", token=TOKEN)[0] == 200
    assert http(w.base + "/api/v1/stats")[0] == 401
    assert (
        http(w.base + "/api/v1/scan", token=TOKEN, body={"registry": "npm", "names": ["expresss"]})[0] == 200
    )
    assert (
        http(w.base + "/api/v1/query", token=TOKEN, body={"sql": "SELECT no_such_column FROM events"})[0]
        == 400
    )
    assert http(w.base + "/no/such/path", token=TOKEN)[0] == 404
    for path in ("/healthz", "/readyz", "/openapi.json"):
        http(w.base + path)

    # Replay B: more of the same through the worker, one more release through the feed.
    batch = [publish(n, "1.0.0", r) for n, r in (("raect", "npm"), ("numpyy", "pypi"), ("axois", "npm"))]
    batch += [publish("left-pad", "1.3.0", "npm"), b"[]"]
    batch += [publish(f"obs-slow-b-{i}", "1.0.0", "npm") for i in range(8)]
    asyncio.run(produce(settings, batch))
    registries.pypi.release("Obs-Feed-Release", "1.0", int(time.time()))
    expected += 3 + 1 + 8 + 1
    wait_until("replay B", lambda: analysed() >= expected and lag_drained(), 120, alive)
    wait_until("replay B's alerts", delivered_all, 90, alive)
    wait_until(
        "the feed's new release",
        lambda: scrape(run.feed.base).value("typostream_feed_events_total") == 4,
        60,
        alive,
    )
    for process in run.processes():
        process.b = scrape(process.base)


# --- the tests ------------------------------------------------------------------------------------------
MOVING_WORKER = [
    ("typostream_events_validated_total", {}),
    ("typostream_events_analysed_total", {}),
    ("typostream_events_rejected_total", {}),
    ("typostream_packages_scanned_total", {"registry": "npm"}),
    ("typostream_packages_scanned_total", {"registry": "pypi"}),
    ("typostream_threats_emitted_total", {}),
    ("typostream_threat_techniques_total", {}),
    ("typostream_threat_targets_total", {}),
    ("typostream_publish_to_threat_seconds_count", {}),
    ("typostream_receive_to_threat_seconds_count", {}),
    ("typostream_detect_seconds_count", {}),
    ("typostream_sink_rows_total", {"table": "events", "sink": "clickhouse"}),
    ("typostream_sink_rows_total", {"table": "threats", "sink": "clickhouse"}),
    ("typostream_sink_batch_seconds_count", {}),
    ("typostream_clickhouse_query_duration_seconds_count", {"op": "insert"}),
    ("typostream_clickhouse_query_duration_seconds_count", {"op": "query"}),
    ("typostream_http_requests_total", {}),
    ("typostream_http_request_duration_seconds_count", {}),
    ("typostream_cache_requests_total", {}),
    ("typostream_redis_command_duration_seconds_count", {}),
    ("typostream_registry_requests_total", {}),
    ("typostream_registry_fetch_seconds_count", {}),
    ("process_cpu_seconds_total", {}),
]


def moved(process: Process, name: str, labels: dict[str, str]) -> tuple[float | None, float | None]:
    assert process.a is not None and process.b is not None
    return process.a.value(name, **labels), process.b.value(name, **labels)


@pytest.mark.parametrize(
    ("name", "labels"), MOVING_WORKER, ids=[f"{n}{lab or ''}" for n, lab in MOVING_WORKER]
)
def test_worker_counters_and_histograms_move(observed: Observed, name: str, labels: dict[str, str]) -> None:
    a, b = moved(observed.worker, name, labels)
    assert a is not None and a > 0, f"{name}{labels} missing after replay A"
    assert b is not None and b > a, f"{name}{labels} did not move: {a} → {b}"


def test_worker_gauges_describe_the_run(observed: Observed) -> None:
    a, b = observed.worker.a, observed.worker.b
    assert a is not None and b is not None
    settings = observed.settings
    # Consumer lag: per consumed topic and partition; it built up behind the slow enrichment, then drained.
    topics = {lab["topic"] for lab in b.series("typostream_consumer_lag")}
    assert {settings.topic_input, settings.topic_analysed, settings.topic_threats} <= topics
    partitions = {(lab["topic"], lab["partition"]) for lab in b.series("typostream_consumer_lag")}
    assert (settings.topic_input, "0") in partitions and (settings.topic_input, "1") in partitions
    # enrichment reads the validated events (or the analysed ones, where detect runs first)
    behind = max(observed.max_lag.get(t, 0) for t in (settings.topic_events, settings.topic_analysed))
    assert behind > 0, observed.max_lag
    assert b.value("typostream_consumer_lag") == 0
    # Store connections: the ClickHouse writer (and the query client the refused query opened), Redis's pool.
    assert (b.value("typostream_db_connections", db="clickhouse", state="open") or 0) >= 1
    assert (b.value("typostream_db_connections_max", db="clickhouse") or 0) >= 1
    assert (b.value("typostream_db_connections", db="redis", state="open") or 0) >= 1
    assert b.value("typostream_db_connections_max", db="redis") == 100  # redis-py's default pool size
    assert b.value("typostream_db_connections", db="redis", state="in_use") is not None
    # The advisory index synced from the OSV fixtures (5 advisories, one withdrawn upstream later).
    assert b.value("typostream_advisory_index_present") == 1
    assert (b.value("typostream_advisory_index_advisories") or 0) >= 4
    assert (b.value("typostream_advisory_index_records") or 0) >= 4
    assert (b.value("typostream_advisory_index_size_bytes") or 0) > 0
    age_a, age_b = (s.value("typostream_advisory_index_age_seconds") for s in (a, b))
    assert age_a is not None and age_b is not None and 0 <= age_a < age_b < 600
    # Cache: left-pad's metadata came from L1 the second time.
    assert (b.value("typostream_cache_hit_ratio", level="l1") or 0) > (
        a.value("typostream_cache_hit_ratio", level="l1") or 0
    )
    assert b.value("typostream_cache_hit_ratio", level="l2") is not None
    # Process memory and CPU, and the limit the memory alert divides by.
    assert (b.value("process_resident_memory_bytes") or 0) > 50e6
    assert (b.value("typostream_memory_limit_bytes") or 0) > (b.value("process_resident_memory_bytes") or 0)
    assert b.value("typostream_ready", check="faust") == 1 and b.value("typostream_ready", check="sinks") == 1
    assert b.value("typostream_http_requests_in_flight", endpoint="/metrics") == 1  # this scrape
    # The API's requests by endpoint and status: the guard's 401, ClickHouse's refusal, unknown paths.
    assert (b.value("typostream_http_requests_total", endpoint="/api/v1/stats", status="401") or 0) >= 1
    assert (b.value("typostream_http_requests_total", endpoint="/api/v1/query", status="400") or 0) >= 1
    assert (b.value("typostream_http_requests_total", endpoint="unmatched", status="404") or 0) >= 1
    assert (b.value("typostream_clickhouse_errors_total", op="query") or 0) >= 1
    # Threats by technique and severity, top targets: what the replays contained.
    techniques = {lab["technique"] for lab in b.series("typostream_threat_techniques_total")}
    assert {"repetition", "transposition"} <= techniques, techniques
    types = {lab["type"] for lab in b.series("typostream_threat_techniques_total")}
    assert {"typosquat", "malicious_package", "suspicious_pattern"} <= types, types
    targets = {lab["target"] for lab in b.series("typostream_threat_targets_total")}
    assert {"express", "lodash", "django", "react", "numpy", "axios", "requests"} <= targets, targets
    # Declared even while nothing failed: the alert rules and dashboards can name them.
    families = b.families()
    for name in (
        "typostream_sink_failures_total",
        "typostream_cache_redis_errors_total",
        "typostream_enrich_failures_total",
    ):
        assert families.get(name) == "counter", name


def test_feed_metrics_move(observed: Observed) -> None:
    a, b = observed.feed.a, observed.feed.b
    assert a is not None and b is not None
    assert (
        a.value("typostream_feed_events_total", registry="pypi"),
        b.value("typostream_feed_events_total", registry="pypi"),
    ) == (3, 4)
    for name in (
        "typostream_feed_polls_total",
        "typostream_feed_http_requests_total",
        "typostream_feed_delivery_seconds_count",
        "typostream_feed_last_success_timestamp_seconds",
        "process_cpu_seconds_total",
    ):
        before, after = a.value(name), b.value(name)
        assert before is not None and after is not None and after > before, (name, before, after)
    assert b.value("typostream_feed_lag_seconds", registry="pypi") is not None
    assert b.value("typostream_feed_backlog", registry="pypi") is not None
    assert b.value("typostream_ready", check="kafka") == 1
    assert (b.value("process_resident_memory_bytes") or 0) > 0 and b.value("typostream_memory_limit_bytes")


def test_alerts_metrics_move(observed: Observed) -> None:
    a, b = observed.alerts.a, observed.alerts.b
    assert a is not None and b is not None
    delivered = [
        s.value("typostream_alert_deliveries_total", target="webhook1", outcome="delivered") for s in (a, b)
    ]
    refused = [
        s.value("typostream_alert_deliveries_total", target="webhook2", outcome="refused") for s in (a, b)
    ]
    assert delivered[1] == observed.threats and 0 < (delivered[0] or 0) < delivered[1], delivered
    assert 0 < (refused[0] or 0) < (refused[1] or 0), refused  # the target answering 404: refused for good
    attempts = [
        s.value("typostream_alert_delivery_attempts_total", target="webhook1", outcome="200") for s in (a, b)
    ]
    assert attempts[0] and attempts[1] and attempts[1] > attempts[0]
    assert (b.value("typostream_alert_delivery_attempts_total", target="webhook2", outcome="404") or 0) > 0
    seconds = [s.value("typostream_alert_delivery_seconds_count", target="webhook1") for s in (a, b)]
    assert seconds[0] and seconds[1] and seconds[1] > seconds[0]
    assert b.value("typostream_ready", check="kafka") == 1
    assert (b.value("process_cpu_seconds_total") or 0) > (a.value("process_cpu_seconds_total") or 0)


def test_exposition_is_versioned_and_promtool_accepts_it(observed: Observed) -> None:
    """Before, the worker sent ``/metrics`` as bare ``text/plain``; now the version parameter is there,
    and the format follows the scraper's ``Accept`` like prometheus_client's own server (feed, alerts)."""
    for process in observed.processes():
        assert process.b is not None
        assert process.b.content_type == "text/plain; version=0.0.4; charset=utf-8", process.name
        negotiated = scrape(process.base, accept="text/plain;version=1.0.0;escaping=underscores")
        assert negotiated.content_type.startswith("text/plain; version=1.0.0; charset=utf-8"), process.name
        openmetrics = scrape(process.base, accept="application/openmetrics-text;version=1.0.0")
        assert openmetrics.content_type.startswith("application/openmetrics-text; version=1.0.0"), (
            process.name
        )
        assert openmetrics.text.rstrip().endswith("# EOF")
    if PROMTOOL is None:
        pytest.skip("promtool is not installed (Debian: apt-get install prometheus)")
    for process in observed.processes():
        assert process.b is not None
        checked = subprocess.run(
            [PROMTOOL, "check", "metrics"], input=process.b.text, capture_output=True, text=True, timeout=60
        )
        assert checked.returncode == 0, f"{process.name}: {checked.stdout}{checked.stderr}"


def test_health_and_readiness_on_every_process(observed: Observed) -> None:
    for process in observed.processes():
        status, _, body = http(process.base + "/healthz")  # no token: probes send none
        assert status == 200 and orjson.loads(body)["status"] == "ok", process.name
        status, _, body = http(process.base + "/readyz")
        ready = orjson.loads(body)
        assert status == 200 and ready["ready"] is True, (process.name, ready)
        expected = {"faust", "sinks"} if process.name == "worker" else {"kafka"}
        assert set(ready["checks"]) == expected and all(ready["checks"].values()), ready
    # Everything else on the worker still needs the token.
    assert http(observed.worker.base + "/api/v1/stats")[0] == 401


def test_openapi_document_is_served_by_the_worker(observed: Observed) -> None:
    from typostream.streams.web.openapi import document_path

    status, headers, body = http(observed.worker.base + "/openapi.json")  # no token needed
    if not document_path().exists():
        assert status == 404 and "openapi.yaml does not exist" in orjson.loads(body)["error"]
        pytest.skip(f"{document_path()} is not there yet: /openapi.json answers 404")
    assert status == 200 and headers["Content-Type"].startswith("application/json")
    document = orjson.loads(body)
    assert document == orjson.loads(orjson.dumps(yaml.safe_load(document_path().read_text()), default=str))
    paths = set(document.get("paths", {}))
    assert {"/healthz", "/readyz", "/openapi.json", "/metrics"} <= paths, sorted(paths)


# --- dashboards and rules against what the processes expose ---------------------------------------------
PROMQL_WORDS = {
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "and",
    "or",
    "unless",
    "bool",
    "offset",
    "inf",
    "nan",
    "le",
}
GRAFANA = {"$__rate_interval": "1m", "$__range": "1h", "$__interval": "1m"}
PROMETHEUS_OWN = {"up", "scrape_duration_seconds", "scrape_samples_scraped"}


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects (strings, label matchers, durations, grouping
    clauses, functions and keywords left out)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    text = re.sub(r"\{[^}]*\}", "", text)
    text = re.sub(r"\[[^\]]*\]", "", text)
    text = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", text)
    names = set()
    for match in re.finditer(r"[a-zA-Z_:][a-zA-Z0-9_:]*", text):
        following = text[match.end() :].lstrip()
        if following.startswith("(") or match.group(0) in PROMQL_WORDS:
            continue
        names.add(match.group(0))
    return names


def dashboard_queries() -> list[tuple[str, str]]:
    queries = []
    for path in sorted((ROOT / "deploy" / "grafana" / "dashboards").glob("*.json")):
        for panel in json.loads(path.read_text())["panels"]:
            for target in panel.get("targets", []):
                expr = target["expr"]
                for variable, value in GRAFANA.items():
                    expr = expr.replace(variable, value)
                queries.append((f"{path.name}: {panel['title']}", expr))
    return queries


def rule_queries() -> list[tuple[str, str]]:
    queries = []
    for path in sorted((ROOT / "deploy" / "prometheus" / "rules").glob("*.rules.yml")):
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                queries.append((f"{path.name}: {rule.get('alert') or rule.get('record')}", rule["expr"]))
    return queries


def test_metric_name_extraction() -> None:
    assert metric_names(
        'histogram_quantile(0.95, sum by (endpoint, le) (rate(a_bucket{endpoint!="/x",le="+Inf"}[5m]))) > 2'
    ) == {"a_bucket"}
    assert metric_names('x / ignoring(state) y{state="in_use"} and time() - z > 600') == {"x", "y", "z"}
    assert metric_names("topk(10, sum by (registry, target) (increase(t_total[1h])))") == {"t_total"}


def test_dashboards_and_rules_name_only_metrics_the_processes_expose(observed: Observed) -> None:
    exposed = set(PROMETHEUS_OWN)
    for process in observed.processes():
        assert process.b is not None
        exposed |= process.b.exposed_names()
    queries = dashboard_queries() + rule_queries()
    assert len(dashboard_queries()) >= 40 and len(rule_queries()) >= 16
    unknown = {(where, name) for where, expr in queries for name in metric_names(expr) if name not in exposed}
    assert not unknown, sorted(unknown)
    used = {name for _, expr in queries for name in metric_names(expr)}
    # The seed's KPIs and the business ones are on the dashboards.
    dashboards = {name for _, expr in dashboard_queries() for name in metric_names(expr)}
    for name in (
        "typostream_http_request_duration_seconds_bucket",
        "typostream_http_requests_total",
        "typostream_cache_requests_total",
        "typostream_clickhouse_query_duration_seconds_bucket",
        "process_resident_memory_bytes",
        "process_cpu_seconds_total",
        "typostream_packages_scanned_total",
        "typostream_threat_techniques_total",
        "typostream_threat_targets_total",
        "typostream_publish_to_threat_seconds_bucket",
        "typostream_consumer_lag",
    ):
        assert name in dashboards, name
    assert used


def test_dashboard_queries_parse(tmp_path: Path) -> None:
    """Every panel query is valid PromQL: promtool parses them as recording rules."""
    if PROMTOOL is None:
        pytest.skip("promtool is not installed (Debian: apt-get install prometheus)")
    rules = {
        "groups": [
            {
                "name": "panels",
                "rules": [
                    {"record": f"panel:{i}", "expr": expr} for i, (_, expr) in enumerate(dashboard_queries())
                ],
            }
        ]
    }
    path = tmp_path / "panels.yml"
    path.write_text(yaml.safe_dump(rules))
    checked = subprocess.run(
        [PROMTOOL, "check", "rules", str(path)], capture_output=True, text=True, timeout=60
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    path.write_text(
        yaml.safe_dump({"groups": [{"name": "p", "rules": [{"record": "r", "expr": "sum(rate(x[1m])"}]}]})
    )
    assert (
        subprocess.run([PROMTOOL, "check", "rules", str(path)], capture_output=True, timeout=60).returncode
        != 0
    )
