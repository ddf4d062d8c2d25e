"""Prometheus metrics, declared once. Served on the worker's ``/metrics`` and on the
``--metrics-port`` of ``typostream feed`` and ``typostream alerts run``.

Counters and histograms are incremented where the event happens (hot-path helpers here:
:func:`count_scanned`, :func:`observe_threat`); gauges that describe state (cache hit ratio, store
connections, advisory index, memory limit, readiness) are computed when Prometheus scrapes, by
:class:`_ScrapeTimeCollector`, from objects registered with ``watch_*``. Process memory and CPU
(``process_*``) come from prometheus_client's default process collector. README "Observability"
lists every name.
"""

from __future__ import annotations

import os
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, Final

from prometheus_client import REGISTRY, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from typostream.agents.domain.vocabulary import REGISTRIES

EVENTS_VALIDATED = Counter("typostream_events_validated_total", "Publish events that passed validation")
EVENTS_REJECTED = Counter(
    "typostream_events_rejected_total", "Input messages sent to the dead-letter topic", ["reason"]
)
EVENTS_ANALYSED = Counter("typostream_events_analysed_total", "Events run through the detectors", ["verdict"])
THREATS_EMITTED = Counter(
    "typostream_threats_emitted_total", "Threat events sent to the threats topic", ["type", "severity"]
)
DETECT_SECONDS = Histogram(
    "typostream_detect_seconds",
    "Detector time per event",
    buckets=(1e-5, 3e-5, 1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 0.1),
)
# ``table`` is the stream a sink writes (events, threats), ``sink`` the sink's id (clickhouse, alerts):
# both sinks write the threats stream.
SINK_ROWS = Counter(
    "typostream_sink_rows_total", "Rows a sink wrote (ClickHouse rows, alerts)", ["table", "sink"]
)
SINK_FAILURES = Counter(
    "typostream_sink_failures_total", "Failed sink batch writes (retried)", ["table", "sink"]
)
SINK_BATCH_SECONDS = Histogram("typostream_sink_batch_seconds", "Sink batch write time", ["table", "sink"])
ENRICH_FAILURES = Counter(
    "typostream_enrich_failures_total", "Events whose registry metadata could not be fetched", ["error"]
)
CACHE_REQUESTS = Counter(
    "typostream_cache_requests_total",
    "Multi-level cache lookups by level (l1 memory, l2 redis, l3 loader), result and value class; "
    "an l3 miss is a loader that returned None (negative-cached)",
    ["level", "result", "cls"],
)
CACHE_REDIS_ERRORS = Counter(
    "typostream_cache_redis_errors_total",
    "Redis errors the cache degraded around (op=get|set), plus lookups skipped while Redis is backed off",
    ["op"],
)
REGISTRY_REQUESTS = Counter(
    "typostream_registry_requests_total",
    "Registry metadata HTTP attempts by registry and outcome (status code, 'timeout' or 'error')",
    ["registry", "outcome"],
)
REGISTRY_SECONDS = Histogram(
    "typostream_registry_fetch_seconds",
    "Registry metadata fetch time, retries included",
    ["registry"],
    buckets=(0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0),
)

# --- registry feeds (``typostream feed``; served on its own ``--metrics-port``) -------------------
FEED_POLLS = Counter(
    "typostream_feed_polls_total",
    "Feed polls by registry and outcome (ok, unavailable, bad_response, failed)",
    ["registry", "outcome"],
)
FEED_EVENTS = Counter(
    "typostream_feed_events_total", "Publish events the feed sent to the input topic", ["registry"]
)
FEED_DUPLICATES = Counter(
    "typostream_feed_duplicates_total",
    "Publishes fetched again and dropped because their event id was already sent",
    ["registry"],
)
FEED_SKIPPED = Counter(
    "typostream_feed_skipped_total",
    "Registry changes that published nothing (deleted or unpublished packages, metadata-only edits)",
    ["registry"],
)
FEED_ERRORS = Counter(
    "typostream_feed_errors_total",
    "Feed problems by kind: unavailable/bad_response (poll retried), changelog/rss (one PyPI source "
    "failed, the other carried the poll), packument, stale_packument, cursor_reset (a rejected cursor "
    "was re-initialised), rss_gap (the RSS window did not reach back to the cursor)",
    ["registry", "kind"],
)
FEED_HTTP_REQUESTS = Counter(
    "typostream_feed_http_requests_total",
    "Feed HTTP attempts by registry, endpoint and outcome (status code, 'timeout' or 'error'); "
    "304s are conditional requests answered from the feed's cache",
    ["registry", "endpoint", "outcome"],
)
FEED_LAG_SECONDS = Gauge(
    "typostream_feed_lag_seconds",
    "How far the feed is behind the registry: age of the newest release sent by the last poll, "
    "0 when a poll found nothing new",
    ["registry"],
)
FEED_BACKLOG = Gauge(
    "typostream_feed_backlog",
    "Registry changes known to be waiting after the cursor (npm _changes 'pending', PyPI journal "
    "entries fetched but not yet sent); 0 when caught up",
    ["registry"],
)
FEED_DELIVERY_SECONDS = Histogram(
    "typostream_feed_delivery_seconds",
    "Publish time (registry) to sent (broker acknowledged), per event",
    ["registry"],
    buckets=(1, 5, 15, 30, 60, 120, 300, 900, 3600, 21600, 86400),
)
FEED_LAST_SUCCESS = Gauge(
    "typostream_feed_last_success_timestamp_seconds",
    "Unix time of the last successful poll (alert when it stops moving)",
    ["registry"],
)

# --- the worker's HTTP API (middleware in ``streams/web/common.py``) -----------------------------
HTTP_REQUESTS = Counter(
    "typostream_http_requests_total",
    "HTTP requests answered by the worker, by method, endpoint (the route's path pattern; "
    "'unmatched' for paths no route serves) and status code",
    ["method", "endpoint", "status"],
)
HTTP_SECONDS = Histogram(
    "typostream_http_request_duration_seconds",
    "HTTP request time in the worker, from the request head to the response, by method and endpoint",
    ["method", "endpoint"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0),
)
HTTP_IN_FLIGHT = Gauge(
    "typostream_http_requests_in_flight", "HTTP requests being handled by the worker now", ["endpoint"]
)

# --- the stream: what was scanned, what was found, how long it took ---------------------------------
PACKAGES_SCANNED = Counter(
    "typostream_packages_scanned_total", "Package versions the stream ran through detection", ["registry"]
)
THREAT_TECHNIQUES = Counter(
    "typostream_threat_techniques_total",
    "Threats emitted by threat type, detection technique and severity",
    ["type", "technique", "severity"],
)
THREAT_TARGETS = Counter(
    "typostream_threat_targets_total",
    "Threats emitted by registry and target (the package a squat imitates); at most "
    "MAX_TARGET_LABELS targets per process, later ones are counted as target='_other'",
    ["registry", "target"],
)
PUBLISH_TO_THREAT_SECONDS = Histogram(
    "typostream_publish_to_threat_seconds",
    "Registry publish time (the event's created_date) to the threat being emitted",
    buckets=(0.5, 1, 2, 5, 10, 30, 60, 120, 300, 900, 3600, 21600, 86400),
)
RECEIVE_TO_THREAT_SECONDS = Histogram(
    "typostream_receive_to_threat_seconds",
    "Worker receive time (validate) to the threat being emitted: the pipeline's own detection latency",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0),
)
CONSUMER_LAG = Gauge(
    "typostream_consumer_lag",
    "Messages of an assigned partition not committed yet: high watermark - committed offset "
    "(sampled every few seconds by streams/lag.py)",
    ["topic", "partition"],
)

# --- stores: ClickHouse and Redis -------------------------------------------------------------------
CLICKHOUSE_SECONDS = Histogram(
    "typostream_clickhouse_query_duration_seconds",
    "ClickHouse statement time by operation (insert, query, command), errors included",
    ["op"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
CLICKHOUSE_ERRORS = Counter(
    "typostream_clickhouse_errors_total", "ClickHouse statements that failed, by operation", ["op"]
)
REDIS_SECONDS = Histogram(
    "typostream_redis_command_duration_seconds",
    "Redis command time of the cache by command (get, set, ping), errors and timeouts included",
    ["op"],
    buckets=(0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0),
)

# --- alert delivery (``agents/adapters/alerts/delivery.py``; worker or ``alerts run``) -------------
ALERT_DELIVERIES = Counter(
    "typostream_alert_deliveries_total",
    "Alerts POSTed to a target, by target label and outcome: delivered (2xx), refused (a permanent "
    "answer) or gave_up (every attempt failed)",
    ["target", "outcome"],
)
ALERT_ATTEMPTS = Counter(
    "typostream_alert_delivery_attempts_total",
    "HTTP attempts of alert delivery by target label and outcome (status code, 'timeout' or 'error')",
    ["target", "outcome"],
)
ALERT_SECONDS = Histogram(
    "typostream_alert_delivery_seconds",
    "Time to deliver (or give up on) one alert to one target, retries and rate limiting included",
    ["target"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0),
)

MAX_TARGET_LABELS: Final = 1000
_PACKAGES_SCANNED: dict[str, Any] = {registry: PACKAGES_SCANNED.labels(registry) for registry in REGISTRIES}
_targets: set[tuple[str, str]] = set()
_targets_lock = threading.Lock()


def count_scanned(registry: str) -> None:
    """One package version through detection (hot path: the labelled child is bound once)."""
    child = _PACKAGES_SCANNED.get(registry)
    (child if child is not None else PACKAGES_SCANNED.labels(registry)).inc()


_children: dict[tuple[Any, tuple[str, ...]], Any] = {}


def child(metric: Any, *labels: str) -> Any:
    """``metric.labels(*labels)``, bound once per label set: ``labels()`` validates and looks the
    child up under a lock on every call (1.3 µs, the child's ``inc`` 0.3 µs). For label sets of a
    bounded vocabulary (types, severities, techniques, targets up to :data:`MAX_TARGET_LABELS`)."""
    key = (metric, labels)
    found = _children.get(key)
    if found is None:
        found = _children[key] = metric.labels(*labels)
    return found


def count_threat(threat_type: str, severity: str) -> None:
    """One threat event sent to the threats topic (``typostream_threats_emitted_total``)."""
    child(THREATS_EMITTED, threat_type, severity).inc()


def parse_timestamp(value: object) -> float | None:
    """Epoch seconds of an ISO 8601 / RFC 3339 string (``Z`` or an offset; naive = UTC); None if unusable."""
    if not isinstance(value, str) or not value:
        return None
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.timestamp()


def observe_threat_latency(
    created_date: object, received_at: object = None, now: float | None = None
) -> None:
    """Publish → threat (``created_date``) and receive → threat (``received_at``) for one threat.

    A clock skew that puts the publish after ``now`` counts as 0; an unusable date is skipped.
    """
    now = time.time() if now is None else now
    published = parse_timestamp(created_date)
    if published is not None:
        PUBLISH_TO_THREAT_SECONDS.observe(max(0.0, now - published))
    received = parse_timestamp(received_at)
    if received is not None:
        RECEIVE_TO_THREAT_SECONDS.observe(max(0.0, now - received))


def observe_threat(threat: Mapping[str, Any], event: Mapping[str, Any], now: float | None = None) -> None:
    """A threat event (``messages.threat_event``) emitted for ``event``: technique, target, latency.

    Never raises: a threat missing a field is counted as far as it goes.
    """
    try:
        detail, package = threat["threat"], threat["package"]
        child(THREAT_TECHNIQUES, threat["type"], detail["technique"], threat["severity"]).inc()
        key = (str(package["registry"]), str(detail["target"]))
    except (KeyError, TypeError):
        key = None
    if key is not None:
        if key not in _targets:
            with _targets_lock:
                if key not in _targets and len(_targets) >= MAX_TARGET_LABELS:
                    key = (key[0], "_other")
                _targets.add(key)
        child(THREAT_TARGETS, *key).inc()
    observe_threat_latency(event.get("created_date"), event.get("received_at"), now)


# --- collected at scrape time ------------------------------------------------------------------------
_clickhouse: weakref.WeakSet[Any] = weakref.WeakSet()
_redis: weakref.WeakSet[Any] = weakref.WeakSet()
_advisory_indexes: weakref.WeakSet[Any] = weakref.WeakSet()


def watch_clickhouse(connection: Any) -> None:
    """Report a ClickHouse connection (``closed`` and ``in_use`` attributes) in the connection gauges."""
    _clickhouse.add(connection)


def watch_redis(client: Any) -> None:
    """Report a ``redis.asyncio.Redis`` client's connection pool in the connection gauges."""
    _redis.add(client)


def watch_advisory_index(source: Any) -> None:
    """Report an advisory index's age and size: a ``LiveAdvisoryIndex`` (its ``current`` generation)
    or an ``AdvisoryIndex`` (``status()``); anything else is ignored."""
    if hasattr(source, "current") or hasattr(source, "status"):
        _advisory_indexes.add(source)


def _redis_pool(client: Any) -> tuple[int, int, int] | None:
    """(open, in use, max) connections of a redis-py asyncio pool."""
    pool = getattr(client, "connection_pool", None)
    if pool is None:
        return None
    in_use = len(getattr(pool, "_in_use_connections", ()))
    available = len(getattr(pool, "_available_connections", ()))
    return in_use + available, in_use, int(getattr(pool, "max_connections", 0) or 0)


def memory_limit_bytes() -> float | None:
    """The memory this process may use: its cgroup's limit (v2 ``memory.max``, v1
    ``memory.limit_in_bytes``) when one is set, else the machine's ``MemTotal``."""
    total: float | None = None
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemTotal:"):
                    total = float(line.split()[1]) * 1024
                    break
    except OSError:
        pass
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            with open(path) as limit_file:
                text = limit_file.read().strip()
        except OSError:
            continue
        if text.isdigit() and (total is None or int(text) < total):
            return float(text)
    return total


class _ScrapeTimeCollector(Collector):
    """Gauges computed when Prometheus scrapes: cache hit ratio, store connections, advisory index,
    memory limit, readiness. Nothing here costs anything between scrapes."""

    def collect(self) -> Iterable[Metric]:
        yield from self._cache_hit_ratio()
        yield from self._connections()
        yield from self._advisory_index()
        limit = GaugeMetricFamily(
            "typostream_memory_limit_bytes",
            "Memory this process may use: its cgroup limit, else the machine's total memory",
        )
        value = memory_limit_bytes()
        if value is not None:
            limit.add_metric([], value)
        yield limit
        ready = GaugeMetricFamily(
            "typostream_ready", "1 when the readiness check passes (see /readyz), else 0", labels=["check"]
        )
        for name, ok in READINESS.checks().items():
            ready.add_metric([name], 1.0 if ok else 0.0)
        yield ready

    def _cache_hit_ratio(self) -> Iterable[Metric]:
        ratio = GaugeMetricFamily(
            "typostream_cache_hit_ratio",
            "Hits / lookups per cache level since start (l1 memory, l2 redis, l3 loader: found)",
            labels=["level"],
        )
        counts: dict[str, list[float]] = {}
        for family in CACHE_REQUESTS.collect():
            for sample in family.samples:
                if sample.name.endswith("_total"):
                    hits_total = counts.setdefault(sample.labels["level"], [0.0, 0.0])
                    hits_total[1] += sample.value
                    if sample.labels["result"] == "hit":
                        hits_total[0] += sample.value
        for level, (hits, total) in sorted(counts.items()):
            if total:
                ratio.add_metric([level], hits / total)
        yield ratio

    def _connections(self) -> Iterable[Metric]:
        connections = GaugeMetricFamily(
            "typostream_db_connections",
            "Store connections by store (clickhouse, redis) and state (open, in_use)",
            labels=["db", "state"],
        )
        capacity = GaugeMetricFamily(
            "typostream_db_connections_max",
            "Connections a store's pool may hold (redis: the pool's max_connections; clickhouse: its "
            "open clients, each runs one statement at a time)",
            labels=["db"],
        )
        open_ch = [c for c in list(_clickhouse) if not getattr(c, "closed", False)]
        if open_ch or len(_clickhouse):
            in_use = sum(int(getattr(c, "in_use", 0)) for c in open_ch)
            connections.add_metric(["clickhouse", "open"], len(open_ch))
            connections.add_metric(["clickhouse", "in_use"], in_use)
            capacity.add_metric(["clickhouse"], len(open_ch))
        pools = [p for p in (_redis_pool(c) for c in list(_redis)) if p is not None]
        if pools:
            connections.add_metric(["redis", "open"], sum(p[0] for p in pools))
            connections.add_metric(["redis", "in_use"], sum(p[1] for p in pools))
            capacity.add_metric(["redis"], sum(p[2] for p in pools))
        yield connections
        yield capacity

    def _advisory_index(self) -> Iterable[Metric]:
        present = GaugeMetricFamily(
            "typostream_advisory_index_present", "1 when an advisory index is loaded, 0 while there is none"
        )
        age = GaugeMetricFamily(
            "typostream_advisory_index_age_seconds", "Seconds since the loaded advisory index was last synced"
        )
        advisories = GaugeMetricFamily(
            "typostream_advisory_index_advisories", "Advisories in the loaded advisory index"
        )
        records = GaugeMetricFamily(
            "typostream_advisory_index_records", "Package records in the loaded advisory index"
        )
        size = GaugeMetricFamily(
            "typostream_advisory_index_size_bytes", "Size of the loaded advisory index file"
        )
        generation = GaugeMetricFamily(
            "typostream_advisory_index_generation", "Generation (changing syncs) of the loaded advisory index"
        )
        sources = list(_advisory_indexes)
        statuses = []
        for source in sources:
            index = source.current if hasattr(source, "current") else source
            try:
                status = index.status() if index is not None else None
            except Exception:  # a damaged or vanished file: reported as absent, never a failed scrape
                status = None
            if status is not None:
                statuses.append(status)
        if sources:
            present.add_metric([], 1.0 if statuses else 0.0)
        if statuses:
            newest = max(statuses, key=lambda s: s.synced_at)
            age.add_metric([], max(0.0, time.time() - newest.synced_at))
            advisories.add_metric([], newest.advisories)
            records.add_metric([], newest.records)
            size.add_metric([], newest.size_bytes)
            generation.add_metric([], newest.generation)
        yield from (present, age, advisories, records, size, generation)


class Readiness:
    """This process's readiness checks (``/readyz``): named callables or fixed values, all must pass.

    The worker adds ``faust`` and ``sinks`` (``streams/web/health.py``); ``feed`` and ``alerts run``
    set ``kafka`` once their client started. With no check registered the process is not ready.
    """

    def __init__(self) -> None:
        self._checks: dict[str, Callable[[], bool]] = {}
        self._lock = threading.Lock()

    def set(self, name: str, ok: bool) -> None:
        with self._lock:
            self._checks[name] = (lambda: True) if ok else (lambda: False)

    def add_check(self, name: str, check: Callable[[], bool]) -> None:
        with self._lock:
            self._checks[name] = check

    def clear(self) -> None:
        with self._lock:
            self._checks.clear()

    def checks(self) -> dict[str, bool]:
        with self._lock:
            items = list(self._checks.items())
        results: dict[str, bool] = {}
        for name, check in items:
            try:
                results[name] = bool(check())
            except Exception:  # a check that fails to answer is a failed check
                results[name] = False
        return results

    def ready(self) -> tuple[bool, dict[str, bool]]:
        results = self.checks()
        return bool(results) and all(results.values()), results


READINESS = Readiness()
_STARTED_AT = time.time()


def health_body() -> dict[str, Any]:
    """``/healthz``: the process is alive and answering."""
    return {"status": "ok", "pid": os.getpid(), "uptime_s": round(time.time() - _STARTED_AT, 3)}


REGISTRY.register(_ScrapeTimeCollector())
