"""Prometheus metrics, declared once. Served on the worker's ``/metrics``."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

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
SINK_ROWS = Counter("typostream_sink_rows_total", "Rows written to ClickHouse", ["table"])
SINK_FAILURES = Counter(
    "typostream_sink_failures_total", "Failed ClickHouse batch writes (retried)", ["table"]
)
SINK_BATCH_SECONDS = Histogram("typostream_sink_batch_seconds", "ClickHouse batch insert time", ["table"])
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
