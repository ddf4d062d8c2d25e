"""Prometheus metrics, declared once. Served on the worker's ``/metrics``."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

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
