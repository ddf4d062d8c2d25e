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
