"""Analytics reads: counts, the demo's summary and analysts' ad hoc queries (never writes).

Separate from the sink so a read path can't write and a writer carries no query API. The ad hoc
query path is guarded: one read-only statement only, and the engine runs it with ``readonly=1``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from typostream.agents.adapters.clickhouse import ClickHouseConnection
from typostream.agents.domain.errors import ReadOnlyQueryError

__all__ = ["Analytics", "ClickHouseAnalytics", "Summary", "TargetCount"]

EVENTS_TABLE = "events"
THREATS_TABLE = "threats"
_READ_ONLY_KEYWORDS = frozenset({"SELECT", "WITH", "SHOW", "DESCRIBE", "DESC", "EXPLAIN"})
_LEADING_COMMENTS = re.compile(r"^(\s+|--[^\n]*(\n|$)|/\*.*?\*/)*", re.DOTALL)


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
    def query(self, sql: str) -> tuple[list[str], list[tuple[Any, ...]]]: ...


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

    def query(self, sql: str) -> tuple[list[str], list[tuple[Any, ...]]]:
        """Run one read-only statement; returns (column names, rows)."""
        _check_read_only(sql)
        # readonly=1 is a second guard behind the keyword check (the engine refuses writes).
        result = self.connection.select(sql.strip().rstrip(";"), settings={"readonly": 1})
        return list(result.column_names), [tuple(r) for r in result.result_rows]

    def _select(self, sql: str) -> list[Sequence[Any]]:
        return self.connection.rows(sql)

    def _scalar(self, sql: str) -> int:
        return int(self._select(sql)[0][0])

    def _pairs(self, sql: str) -> dict[str, int]:
        return {str(k): int(v) for k, v in sorted(self._select(sql), key=lambda r: (-int(r[1]), str(r[0])))}


def _check_read_only(sql: str) -> None:
    body = _LEADING_COMMENTS.sub("", sql, count=1).strip().rstrip(";").strip()
    words = body.split(None, 1)
    keyword = words[0].upper().rstrip("(") if words else ""
    if keyword not in _READ_ONLY_KEYWORDS:
        raise ReadOnlyQueryError(
            "only read-only SELECT/WITH/SHOW/DESCRIBE/EXPLAIN queries are allowed,"
            f" got {keyword or 'nothing'!r}"
        )
    if ";" in _strip_literals(body):
        raise ReadOnlyQueryError("only one statement per query() call is allowed")


def _strip_literals(sql: str) -> str:
    return re.sub(r"'(?:[^'\\]|\\.)*'", "''", sql)
