"""Analytics reads: counts, the demo's summary and analysts' ad hoc queries (never writes).

Separate from the sink so a read path can't write and a writer carries no query API. An ad hoc
query (:meth:`ClickHouseAnalytics.query`) goes through three gates:

1. ClickHouse formats it (``formatQuerySingleLine``, the text bound as a parameter: parsed by the
   engine's own parser, never run), which resolves comments, quoting and refuses several statements;
2. :func:`~typostream.agents.domain.sql_guard.check_select` judges that formatted text with a SQL
   parser: one SELECT, no ``INTO OUTFILE``/``SETTINGS``/``FORMAT``, allow-listed table functions
   and system tables, no file-reading functions;
3. exactly that text runs on the connection's separate query client (own session and lock: it
   never blocks the writer) with ``readonly=1`` and the :class:`QueryLimits` as engine settings
   (``max_execution_time``, ``max_result_rows``/``max_result_bytes`` + ``result_overflow_mode=
   'throw'``, ``max_memory_usage``), and the reader stops after ``max_rows + 1`` rows and after
   the time limit even if the engine did not (``UNION ALL`` escapes ``max_result_rows`` there).
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from typostream.agents.adapters.clickhouse import ClickHouseConnection
from typostream.agents.domain.errors import (
    ConfigError,
    QueryError,
    QueryLimitError,
    ReadOnlyQueryError,
    StoreError,
)
from typostream.agents.domain.report import (
    MAX_HOURS,
    MAX_TOP,
    Breakdown,
    HourCount,
    LatencyRow,
    ReportData,
    TargetRow,
)
from typostream.agents.domain.sql_guard import QueryLimits, check_select, check_text

__all__ = [
    "Analytics",
    "ClickHouseAnalytics",
    "QueryLimits",
    "Summary",
    "TargetCount",
    "engine_settings",
]

EVENTS_TABLE = "events"
THREATS_TABLE = "threats"
_MAX_BLOCK_ROWS = 65_505  # ClickHouse's default max_block_size
_GRACE_S = 1.0  # the reader's own deadline is the engine's plus this
# ClickHouse's parser formats the user's text, bound as a parameter: parsed, never executed.
_FORMAT_QUERY = "SELECT formatQuerySingleLine({sql:String})"
_FORMAT_SCOPE = re.compile(r"\s*:?\s*In scope SELECT formatQuerySingleLine\('.*'\)\.(?= \(\w+\)$)", re.DOTALL)
# The views of schemas/clickhouse/0004-0006 (materialized views' tables, read with -Merge / FINAL).
THREATS_HOURLY = "threats_hourly"
TARGETS_DAILY = "threat_targets_daily"
DETECTION_LATENCY = "detection_latency"
_BREAKDOWNS = frozenset({"registry", "severity", "technique", "threat_type"})


@dataclass(frozen=True)
class TargetCount:
    registry: str
    target: str
    squats: int  # distinct suspicious package names imitating the target
    threats: int


@dataclass(frozen=True)
class Summary:
    events_total: int
    events_by_registry: dict[str, int]
    events_by_verdict: dict[str, int]
    threats_total: int
    threats_by_severity: dict[str, int]
    top_targets: list[TargetCount]


class Analytics(Protocol):
    """What the API, the CLI and the demo read. Blocking: call through ``asyncio.to_thread``."""

    def count_events(self) -> int: ...
    def count_threats(self) -> int: ...
    def summary(self, top: int = 10) -> Summary: ...
    def report_data(self, hours: int = 168, top: int = 10, now: datetime | None = None) -> ReportData: ...
    def query(
        self, sql: str, limits: QueryLimits | None = None
    ) -> tuple[list[str], list[tuple[Any, ...]]]: ...


class ClickHouseAnalytics:
    """:class:`Analytics` over the ClickHouse tables, read with ``FINAL`` (exact under replays)."""

    def __init__(self, connection: ClickHouseConnection) -> None:
        self.connection = connection

    def count_events(self) -> int:
        return self._scalar(f"SELECT count() FROM {EVENTS_TABLE} FINAL")

    def count_threats(self) -> int:
        return self._scalar(f"SELECT count() FROM {THREATS_TABLE} FINAL")

    def summary(self, top: int = 10) -> Summary:
        """Totals and breakdowns, all read with FINAL (DLQ not included)."""
        by_registry = self._pairs(f"SELECT registry, count() FROM {EVENTS_TABLE} FINAL GROUP BY registry")
        by_verdict = self._pairs(f"SELECT verdict, count() FROM {EVENTS_TABLE} FINAL GROUP BY verdict")
        by_severity = self._pairs(f"SELECT severity, count() FROM {THREATS_TABLE} FINAL GROUP BY severity")
        top_rows = self._select(
            "SELECT registry, target, uniqExact(name) AS squats, count() AS threats"
            f" FROM {THREATS_TABLE} FINAL"
            " WHERE target != '' GROUP BY registry, target"
            f" ORDER BY squats DESC, threats DESC, target ASC LIMIT {int(top)}"
        )
        return Summary(
            events_total=sum(by_registry.values()),
            events_by_registry=by_registry,
            events_by_verdict=by_verdict,
            threats_total=sum(by_severity.values()),
            threats_by_severity=by_severity,
            top_targets=[TargetCount(str(r[0]), str(r[1]), int(r[2]), int(r[3])) for r in top_rows],
        )

    # --- the views: threats per hour, most-targeted packages, detection latency --------------------
    # Read on the connection's query client (its own session and lock), so a report never waits for
    # or holds up ingestion. Counts are uniqExact merges of threat ids: replays do not inflate them.

    def threats_per_hour(self, since: datetime) -> list[HourCount]:
        """Distinct threats per hour (UTC) and severity, from ``since`` (inclusive) on."""
        rows = self._read(
            f"SELECT hour, severity, uniqExactMerge(threats) FROM {THREATS_HOURLY}"
            f" WHERE hour >= {_at(since)} GROUP BY hour, severity ORDER BY hour, severity"
        )
        return [HourCount(_utc(r[0]), str(r[1]), int(r[2])) for r in rows]

    def threat_breakdown(self, dimension: str, since: datetime, top: int = 100) -> list[Breakdown]:
        """Distinct threats and packages by ``dimension`` (registry, severity, technique, threat_type)."""
        if dimension not in _BREAKDOWNS:
            raise ConfigError(f"cannot break threats down by {dimension!r}; use one of {sorted(_BREAKDOWNS)}")
        rows = self._read(
            f"SELECT {dimension}, uniqExactMerge(threats) AS n, uniqExactMerge(packages)"
            f" FROM {THREATS_HOURLY} WHERE hour >= {_at(since)}"
            f" GROUP BY {dimension} ORDER BY n DESC, {dimension} LIMIT {_top(top)}"
        )
        return [Breakdown(str(r[0]), int(r[1]), int(r[2])) for r in rows]

    def threat_totals(self, since: datetime) -> tuple[int, int]:
        """(distinct threats, distinct flagged packages) from ``since`` on."""
        rows = self._read(
            f"SELECT uniqExactMerge(threats), uniqExactMerge(packages) FROM {THREATS_HOURLY}"
            f" WHERE hour >= {_at(since)}"
        )
        return (int(rows[0][0]), int(rows[0][1])) if rows else (0, 0)

    def top_targets_since(self, since: datetime, top: int = 10) -> list[TargetRow]:
        """The most-imitated packages over the days from ``since``'s day on (by distinct squats)."""
        rows = self._read(
            "SELECT registry, target, uniqExactMerge(squats) AS squats, uniqExactMerge(threats) AS threats,"
            f" max(max_risk) FROM {TARGETS_DAILY} WHERE day >= toDate({_at(since)})"
            " GROUP BY registry, target ORDER BY squats DESC, threats DESC, target ASC, registry ASC"
            f" LIMIT {_top(top)}"
        )
        return [TargetRow(str(r[0]), str(r[1]), int(r[2]), int(r[3]), int(r[4])) for r in rows]

    def detection_latency(self, since: datetime) -> list[LatencyRow]:
        """Latency quantiles (ms) of the events flagged from ``since`` on: ``all``, then per registry.

        One row per flagged event (``detection_latency`` FINAL keeps its first analysis), exact quantiles.
        """
        select = (
            "count(), quantilesExact(0.5, 0.9, 0.99)(latency_ms), max(latency_ms)"
            f" FROM {DETECTION_LATENCY} FINAL WHERE analysed_at >= {_at(since)}"
        )
        rows: list[Sequence[Any]] = [("all", *r) for r in self._read(f"SELECT {select}") if int(r[0])]
        rows += self._read(f"SELECT registry, {select} GROUP BY registry ORDER BY registry")
        return [
            LatencyRow(str(r[0]), int(r[1]), int(r[2][0]), int(r[2][1]), int(r[2][2]), int(r[3]))
            for r in rows
        ]

    def events_since(self, since: datetime) -> int:
        """Events analysed from ``since`` on (exact: FINAL)."""
        return int(
            self._read(f"SELECT count() FROM {EVENTS_TABLE} FINAL WHERE received_at >= {_at(since)}")[0][0]
        )

    def latest_threat_hour(self) -> datetime | None:
        rows = self._read(f"SELECT max(hour), count() FROM {THREATS_HOURLY}")
        return _utc(rows[0][0]) if rows and int(rows[0][1]) else None

    def report_data(self, hours: int = 168, top: int = 10, now: datetime | None = None) -> ReportData:
        """What the report page shows: the last ``hours`` hours up to ``now``, the current hour included."""
        if not 1 <= hours <= MAX_HOURS:
            raise ConfigError(f"report hours must be 1..{MAX_HOURS}, got {hours}")
        top = _top(top)
        now = (now or datetime.now(UTC)).astimezone(UTC)
        since = now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=hours - 1)
        threats, packages = self.threat_totals(since)
        return ReportData(
            generated_at=now,
            since=since,
            hours=hours,
            events=self.events_since(since),
            threats=threats,
            packages=packages,
            by_hour=tuple(self.threats_per_hour(since)),
            by_severity=tuple(self.threat_breakdown("severity", since)),
            by_technique=tuple(self.threat_breakdown("technique", since, top)),
            by_registry=tuple(self.threat_breakdown("registry", since)),
            top_targets=tuple(self.top_targets_since(since, top)),
            latency=tuple(self.detection_latency(since)),
            latest_threat=self.latest_threat_hour(),
        )

    def _read(self, sql: str) -> list[Sequence[Any]]:
        reader = self.connection.query_connection()
        rows: list[Sequence[Any]] = reader.select(sql).result_rows
        return rows

    def query(self, sql: str, limits: QueryLimits | None = None) -> tuple[list[str], list[tuple[Any, ...]]]:
        """Run one read-only SELECT under ``limits``; returns (column names, at most max_rows rows).

        Raises ReadOnlyQueryError (the guard), QueryError (the engine refused it, its message),
        QueryLimitError (a limit, named) — all InvalidInputError — or StoreError.
        """
        limits = limits or QueryLimits()
        text = check_text(sql)
        reader = self.connection.query_connection()
        settings = engine_settings(limits)
        try:
            with reader.stream(_FORMAT_QUERY, settings, {"sql": text}) as (_, blocks):
                formatted = [row[0] for block in blocks for row in block]
        except QueryError as exc:  # a syntax error: say so without our wrapper statement
            message = _FORMAT_SCOPE.sub("", str(exc))
            if "Multi-statements are not allowed" in message:
                raise ReadOnlyQueryError(f"exactly one statement is allowed: {message}") from None
            raise QueryError(message, code=exc.code) from None
        if len(formatted) != 1 or not isinstance(formatted[0], str):
            raise StoreError(f"formatQuerySingleLine answered {formatted!r:.200}")
        statement = check_select(formatted[0])
        deadline = time.monotonic() + limits.max_seconds + _GRACE_S
        rows: list[tuple[Any, ...]] = []
        try:
            with reader.stream(statement, settings) as (columns, blocks):
                for block in blocks:
                    if len(block) > limits.max_rows - len(rows):
                        raise QueryLimitError("rows", "")
                    rows.extend(block)
                    if time.monotonic() > deadline:
                        raise QueryLimitError("seconds", "")
        except QueryLimitError as exc:
            raise QueryLimitError(exc.limit, _limit_message(exc, limits)) from None
        return columns, rows

    def _select(self, sql: str) -> list[Sequence[Any]]:
        return self.connection.rows(sql)

    def _scalar(self, sql: str) -> int:
        return int(self._select(sql)[0][0])

    def _pairs(self, sql: str) -> dict[str, int]:
        return {str(k): int(v) for k, v in sorted(self._select(sql), key=lambda r: (-int(r[1]), str(r[0])))}


def _at(moment: datetime) -> str:
    """A UTC second as a ClickHouse DateTime expression (an int we made: no user text reaches the SQL)."""
    return f"toDateTime({int(moment.timestamp())}, 'UTC')"


def _top(top: int) -> int:
    if not 1 <= int(top) <= MAX_TOP:
        raise ConfigError(f"top must be 1..{MAX_TOP}, got {top}")
    return int(top)


def _utc(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    raise StoreError(f"expected a timestamp from ClickHouse, got {value!r:.80}")


def engine_settings(limits: QueryLimits) -> dict[str, Any]:
    """The ClickHouse settings an ad hoc query runs under (one SETTINGS clause per statement)."""
    return {
        "readonly": 1,
        "max_execution_time": limits.max_seconds,
        "timeout_overflow_mode": "throw",
        "max_result_rows": limits.max_rows,
        "max_result_bytes": limits.max_memory_bytes,
        "result_overflow_mode": "throw",
        "max_memory_usage": limits.max_memory_bytes,
        # Blocks no larger than the rows the reader may keep (+1 to see that there are more).
        "max_block_size": min(_MAX_BLOCK_ROWS, limits.max_rows + 1),
    }


def _limit_message(exc: QueryLimitError, limits: QueryLimits) -> str:
    what = {
        "seconds": f"the query ran longer than {limits.max_seconds:g} s (query_max_seconds)",
        "rows": f"the result has more than {limits.max_rows} rows (query_max_rows); add a LIMIT or aggregate",
        "bytes": f"the result is larger than {limits.max_memory_bytes} bytes (query_max_memory_bytes)",
        "memory": f"the query needs more than {limits.max_memory_bytes} bytes (query_max_memory_bytes)",
    }.get(exc.limit, f"a query limit ({exc.limit}) was exceeded")
    detail = str(exc)
    return f"{what}: {detail}" if detail else what
