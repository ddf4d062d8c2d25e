"""How the pipeline and replay benchmarks read the store's sink counter (no broker: an exposition
rendered by prometheus_client from the worker's own metric)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

from prometheus_client import CollectorRegistry, Counter, generate_latest

from typostream.agents.adapters import metrics

ROOT = Path(__file__).resolve().parents[2]


def _pipeline() -> ModuleType:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        spec = importlib.util.spec_from_file_location("bench_pipeline", ROOT / "benchmarks" / "pipeline.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module  # its dataclasses look their module up
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))


def test_the_benchmarks_read_the_clickhouse_sinks_event_rows_whatever_the_label_order() -> None:
    # prometheus_client writes labels sorted by name ({sink=...,table=...}), not in declared order:
    # a prefix match on '{table="events",sink="clickhouse"}' never matched and the run waited forever.
    registry = CollectorRegistry()
    rows = Counter(
        "typostream_sink_rows_total",
        "as the worker's",
        list(metrics.SINK_ROWS._labelnames),
        registry=registry,
    )
    rows.labels(table="events", sink="clickhouse").inc(41200)
    rows.labels(table="threats", sink="clickhouse").inc(51257)
    rows.labels(table="threats", sink="alerts").inc(7)
    exposition = generate_latest(registry).decode()
    assert _pipeline().events_rows(exposition) == 41200
    assert _pipeline().events_rows("") == 0
