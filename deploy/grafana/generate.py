"""Generate the provisioned Grafana dashboards in ``deploy/grafana/dashboards/`` (committed JSON).

    python deploy/grafana/generate.py          # rewrite the JSON files
    python deploy/grafana/generate.py --check  # exit 1 if a committed file differs (tests run this)

Every panel queries the Prometheus data source provisioned as uid ``prometheus``
(``provisioning/datasources/prometheus.yml``). Queries use only Grafana's ``$__rate_interval`` and
``$__range``; tests/observability checks that each one parses (promtool) and names only metrics the
worker, the feeds and alert delivery really expose.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
OUT = HERE / "dashboards"
DATASOURCE = {"type": "prometheus", "uid": "prometheus"}
RATE = "$__rate_interval"


@dataclass
class Panel:
    title: str
    queries: list[tuple[str, str]]  # (expr, legend)
    unit: str = "short"
    kind: str = "timeseries"  # timeseries | stat | bargauge | table
    width: int = 12
    height: int = 8
    description: str = ""
    instant: bool = False
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class Row:
    title: str


def quantiles(metric: str, by: str = "", name: str = "") -> list[tuple[str, str]]:
    group = f"{by}, le" if by else "le"
    prefix = f"{{{{{by}}}}} " if by else ""
    return [
        (
            f"histogram_quantile({q}, sum by ({group}) (rate({metric}_bucket[{RATE}])))",
            f"{prefix}{name}p{int(q * 100)}",
        )
        for q in (0.5, 0.95, 0.99)
    ]


def panel_json(panel: Panel, panel_id: int, x: int, y: int) -> dict[str, Any]:
    targets = [
        {
            "refId": chr(ord("A") + i),
            "datasource": DATASOURCE,
            "expr": expr,
            "legendFormat": legend,
            "range": not panel.instant,
            "instant": panel.instant,
        }
        for i, (expr, legend) in enumerate(panel.queries)
    ]
    options: dict[str, Any] = {
        "timeseries": {
            "legend": {"displayMode": "list", "placement": "bottom"},
            "tooltip": {"mode": "multi"},
        },
        "stat": {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False}},
        "bargauge": {
            "displayMode": "basic",
            "orientation": "horizontal",
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
        },
        "table": {"showHeader": True},
    }[panel.kind]
    options.update(panel.options)
    return {
        "id": panel_id,
        "type": panel.kind,
        "title": panel.title,
        "description": panel.description,
        "datasource": DATASOURCE,
        "gridPos": {"h": panel.height, "w": panel.width, "x": x, "y": y},
        "fieldConfig": {"defaults": {"unit": panel.unit}, "overrides": []},
        "options": options,
        "targets": targets,
    }


def dashboard(uid: str, title: str, description: str, items: list[Panel | Row]) -> dict[str, Any]:
    panels: list[dict[str, Any]] = []
    x = y = 0
    row_height = 0
    for item in items:
        if isinstance(item, Row):
            y += row_height
            x, row_height = 0, 0
            panels.append(
                {
                    "id": len(panels) + 1,
                    "type": "row",
                    "title": item.title,
                    "collapsed": False,
                    "gridPos": {"h": 1, "w": 24, "x": 0, "y": y},
                    "panels": [],
                }
            )
            y += 1
            continue
        if x + item.width > 24:
            x, y = 0, y + row_height
            row_height = 0
        panels.append(panel_json(item, len(panels) + 1, x, y))
        x += item.width
        row_height = max(row_height, item.height)
    return {
        "uid": uid,
        "title": title,
        "description": description,
        "tags": ["typostream"],
        "editable": False,
        "schemaVersion": 39,
        "version": 1,
        "time": {"from": "now-6h", "to": "now"},
        "refresh": "30s",
        "timezone": "utc",
        "templating": {"list": []},
        "annotations": {"list": []},
        "links": [
            {
                "title": "typostream dashboards",
                "type": "dashboards",
                "tags": ["typostream"],
                "asDropdown": True,
            }
        ],
        "panels": panels,
    }


def service() -> dict[str, Any]:
    """The seed's KPIs: latency percentiles, throughput, error rate, cache, databases, memory, CPU."""
    return dashboard(
        "typostream-service",
        "typostream — service KPIs",
        "Worker HTTP API, stream throughput, cache, ClickHouse and Redis, memory and CPU of every process",
        [
            Row("HTTP API (worker)"),
            Panel(
                "Request latency p50 / p95 / p99",
                quantiles("typostream_http_request_duration_seconds"),
                "s",
                description="All endpoints; the p95 > 2 s alert leaves /api/v1/query out",
            ),
            Panel(
                "Requests per second by endpoint",
                [
                    (f"sum by (endpoint) (rate(typostream_http_requests_total[{RATE}]))", "{{endpoint}}"),
                ],
                "reqps",
            ),
            Panel(
                "Error rate (5xx share)",
                [
                    (
                        f'sum(rate(typostream_http_requests_total{{status=~"5.."}}[{RATE}]))'
                        f" / sum(rate(typostream_http_requests_total[{RATE}]))",
                        "5xx",
                    ),
                    (
                        f'sum(rate(typostream_http_requests_total{{status=~"4.."}}[{RATE}]))'
                        f" / sum(rate(typostream_http_requests_total[{RATE}]))",
                        "4xx",
                    ),
                ],
                "percentunit",
            ),
            Panel(
                "Requests in flight",
                [
                    ("sum by (endpoint) (typostream_http_requests_in_flight)", "{{endpoint}}"),
                ],
            ),
            Panel(
                "p95 latency by endpoint",
                quantiles("typostream_http_request_duration_seconds", "endpoint")[1:2],
                "s",
            ),
            Row("Stream throughput"),
            Panel(
                "Events per second",
                [
                    (f"sum(rate(typostream_events_validated_total[{RATE}]))", "validated"),
                    (
                        f"sum by (verdict) (rate(typostream_events_analysed_total[{RATE}]))",
                        "analysed {{verdict}}",
                    ),
                    (f"sum(rate(typostream_events_rejected_total[{RATE}]))", "dead-lettered"),
                ],
                "ops",
            ),
            Panel("Detector time per event p50 / p95 / p99", quantiles("typostream_detect_seconds"), "s"),
            Row("Cache"),
            Panel(
                "Hit ratio per level (window)",
                [
                    (
                        f'sum by (level) (rate(typostream_cache_requests_total{{result="hit"}}[{RATE}]))'
                        f" / sum by (level) (rate(typostream_cache_requests_total[{RATE}]))",
                        "{{level}}",
                    ),
                ],
                "percentunit",
            ),
            Panel(
                "Hit ratio per level (since start)",
                [
                    ("max by (level) (typostream_cache_hit_ratio)", "{{level}}"),
                ],
                "percentunit",
                kind="stat",
                width=6,
            ),
            Panel(
                "Cache operations per second",
                [
                    (
                        f"sum by (level, result) (rate(typostream_cache_requests_total[{RATE}]))",
                        "{{level}} {{result}}",
                    ),
                    (
                        f"sum by (op) (rate(typostream_cache_redis_errors_total[{RATE}]))",
                        "redis error {{op}}",
                    ),
                ],
                "ops",
                width=6,
            ),
            Row("Databases"),
            Panel(
                "ClickHouse statement time p95 by operation",
                quantiles("typostream_clickhouse_query_duration_seconds", "op")[1:2],
                "s",
                width=8,
            ),
            Panel(
                "ClickHouse statements and errors per second",
                [
                    (
                        f"sum by (op) (rate(typostream_clickhouse_query_duration_seconds_count[{RATE}]))",
                        "{{op}}",
                    ),
                    (f"sum by (op) (rate(typostream_clickhouse_errors_total[{RATE}]))", "errors {{op}}"),
                ],
                "ops",
                width=8,
            ),
            Panel(
                "Sink rows and failures per second",
                [
                    (
                        f"sum by (table, sink) (rate(typostream_sink_rows_total[{RATE}]))",
                        "rows {{table}} {{sink}}",
                    ),
                    (
                        f"sum by (table, sink) (rate(typostream_sink_failures_total[{RATE}]))",
                        "failures {{table}} {{sink}}",
                    ),
                ],
                "ops",
                width=8,
            ),
            Panel(
                "Sink batch insert time p95",
                quantiles("typostream_sink_batch_seconds", "table")[1:2],
                "s",
                width=8,
            ),
            Panel(
                "Redis command time p95",
                quantiles("typostream_redis_command_duration_seconds", "op")[1:2],
                "s",
                width=8,
            ),
            Panel(
                "Connections in use / pool size",
                [
                    (
                        'sum by (db) (typostream_db_connections{state="in_use"})'
                        " / sum by (db) (typostream_db_connections_max)",
                        "{{db}}",
                    ),
                    ('sum by (db) (typostream_db_connections{state="open"})', "{{db}} open"),
                ],
                "short",
                width=8,
            ),
            Row("Processes"),
            Panel(
                "Resident memory",
                [
                    ("sum by (job, instance) (process_resident_memory_bytes)", "{{job}} {{instance}}"),
                ],
                "bytes",
                width=8,
            ),
            Panel(
                "Memory used of the limit",
                [
                    ("process_resident_memory_bytes / typostream_memory_limit_bytes", "{{job}} {{instance}}"),
                ],
                "percentunit",
                width=8,
                description="Alert: over 80 % for 10 minutes",
            ),
            Panel(
                "CPU (cores)",
                [
                    (
                        f"sum by (job, instance) (rate(process_cpu_seconds_total[{RATE}]))",
                        "{{job}} {{instance}}",
                    ),
                ],
                "short",
                width=8,
            ),
        ],
    )


def threats() -> dict[str, Any]:
    """The business view: what was analysed, what was found, against whom, how fast."""
    return dashboard(
        "typostream-threats",
        "typostream — threats",
        "Packages analysed, threats by technique and severity, most-targeted packages, detection latency",
        [
            Panel(
                "Packages analysed per minute",
                [
                    (
                        f"sum by (registry) (rate(typostream_packages_scanned_total[{RATE}])) * 60",
                        "{{registry}}",
                    ),
                ],
                "short",
            ),
            Panel(
                "Verdicts per minute",
                [
                    (
                        f"sum by (verdict) (rate(typostream_events_analysed_total[{RATE}])) * 60",
                        "{{verdict}}",
                    ),
                ],
                "short",
            ),
            Panel(
                "Threats per minute by severity",
                [
                    (
                        f"sum by (severity) (rate(typostream_threats_emitted_total[{RATE}])) * 60",
                        "{{severity}}",
                    ),
                ],
                "short",
            ),
            Panel(
                "Threats per minute by technique",
                [
                    (
                        f"sum by (technique) (rate(typostream_threat_techniques_total[{RATE}])) * 60",
                        "{{technique}}",
                    ),
                ],
                "short",
            ),
            Panel(
                "Threats in range by technique and severity",
                [
                    (
                        "sum by (technique, severity)"
                        " (increase(typostream_threat_techniques_total[$__range]))",
                        "{{technique}} {{severity}}",
                    ),
                ],
                kind="bargauge",
                instant=True,
            ),
            Panel(
                "Top 10 targets in range",
                [
                    (
                        "topk(10, sum by (registry, target)"
                        " (increase(typostream_threat_targets_total[$__range])))",
                        "{{registry}} {{target}}",
                    ),
                ],
                kind="bargauge",
                instant=True,
                description="The popular packages squats imitate (at most 1000 targets per process;"
                " later ones count as _other)",
            ),
            Panel(
                "Detection latency: publish → threat p50 / p95 / p99",
                quantiles("typostream_publish_to_threat_seconds"),
                "s",
                description="From the registry's publish time (created_date), feed delay included",
            ),
            Panel(
                "Detection latency: worker receive → threat p50 / p95 / p99",
                quantiles("typostream_receive_to_threat_seconds"),
                "s",
            ),
        ],
    )


def stream() -> dict[str, Any]:
    """Running the stream: lag, dead letters, feeds, alert delivery, advisories, readiness."""
    return dashboard(
        "typostream-stream",
        "typostream — stream health",
        "Consumer lag, dead letters, feeds, alert delivery, the advisory index and readiness",
        [
            Row("Worker"),
            Panel(
                "Consumer lag by topic and partition",
                [
                    ("sum by (topic, partition) (typostream_consumer_lag)", "{{topic}}[{{partition}}]"),
                ],
                "short",
            ),
            Panel(
                "Dead letters per minute by reason",
                [
                    (f"sum by (reason) (rate(typostream_events_rejected_total[{RATE}])) * 60", "{{reason}}"),
                ],
                "short",
            ),
            Panel(
                "Ready",
                [("min by (job, instance) (typostream_ready)", "{{job}} {{instance}}")],
                kind="stat",
                width=8,
            ),
            Panel("Scrape targets up", [("up", "{{job}} {{instance}}")], kind="stat", width=8),
            Panel(
                "Advisory index",
                [
                    ("max(typostream_advisory_index_age_seconds)", "age"),
                    ("max(typostream_advisory_index_advisories)", "advisories"),
                ],
                kind="stat",
                width=8,
            ),
            Row("Feeds"),
            Panel(
                "Events sent per minute",
                [
                    (f"sum by (registry) (rate(typostream_feed_events_total[{RATE}])) * 60", "{{registry}}"),
                ],
                "short",
                width=8,
            ),
            Panel(
                "Lag behind the registry",
                [
                    ("max by (registry) (typostream_feed_lag_seconds)", "{{registry}}"),
                ],
                "s",
                width=8,
            ),
            Panel(
                "Since the last successful poll",
                [
                    (
                        "time() - max by (registry) (typostream_feed_last_success_timestamp_seconds)",
                        "{{registry}}",
                    ),
                ],
                "s",
                width=8,
                description="Alert: over 10 minutes",
            ),
            Panel(
                "Polls per minute by outcome",
                [
                    (
                        f"sum by (registry, outcome) (rate(typostream_feed_polls_total[{RATE}])) * 60",
                        "{{registry}} {{outcome}}",
                    ),
                ],
                "short",
                width=8,
            ),
            Panel(
                "Backlog", [("max by (registry) (typostream_feed_backlog)", "{{registry}}")], "short", width=8
            ),
            Panel(
                "Publish → sent p95",
                quantiles("typostream_feed_delivery_seconds", "registry")[1:2],
                "s",
                width=8,
            ),
            Row("Alert delivery"),
            Panel(
                "Alerts per minute by target and outcome",
                [
                    (
                        f"sum by (target, outcome) (rate(typostream_alert_deliveries_total[{RATE}])) * 60",
                        "{{target}} {{outcome}}",
                    ),
                ],
                "short",
                width=8,
            ),
            Panel(
                "Failed attempts share by target",
                [
                    (
                        "sum by (target) (rate(typostream_alert_delivery_attempts_total"
                        f'{{outcome!~"2.."}}[{RATE}]))'
                        f" / sum by (target) (rate(typostream_alert_delivery_attempts_total[{RATE}]))",
                        "{{target}}",
                    ),
                ],
                "percentunit",
                width=8,
            ),
            Panel(
                "Delivery time p95 by target",
                quantiles("typostream_alert_delivery_seconds", "target")[1:2],
                "s",
                width=8,
            ),
        ],
    )


DASHBOARDS = {
    "typostream-service.json": service,
    "typostream-threats.json": threats,
    "typostream-stream.json": stream,
}


def render() -> dict[str, str]:
    return {
        name: json.dumps(build(), indent=2, ensure_ascii=False) + "\n" for name, build in DASHBOARDS.items()
    }


def main(argv: list[str]) -> int:
    rendered = render()
    if "--check" in argv:
        stale = [n for n, text in rendered.items() if not (OUT / n).exists() or (OUT / n).read_text() != text]
        for name in stale:
            print(
                f"deploy/grafana/dashboards/{name} is not what generate.py renders: run it", file=sys.stderr
            )
        return 1 if stale else 0
    OUT.mkdir(exist_ok=True)
    for name, text in rendered.items():
        (OUT / name).write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
