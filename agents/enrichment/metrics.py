"""Prometheus metrics of the enrichment library (default registry, served on the worker's ``/metrics``)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

__all__ = ["CACHE_REDIS_ERRORS", "CACHE_REQUESTS", "REGISTRY_REQUESTS", "REGISTRY_SECONDS"]

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
