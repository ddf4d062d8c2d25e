"""ClickHouse sink: analysed events and threats, written in column-oriented, idempotent batches.

Idempotence: tables are ``ReplacingMergeTree`` keyed by the id (DDL in
``typostream.schemas/clickhouse``), the sink skips ids already stored, and each insert batch
carries an ``insert_deduplication_token`` derived from the table and the batch's ids, so an exact
replay of a batch is dropped at insert time and any other duplicate collapses on merge.

Schema: :meth:`ClickHouseSink.ensure_schema` applies the versioned migrations
(``agents/adapters/migrations.py``: tables, layout rebuilds such as ``events`` losing its monthly
partitions, the materialized views) and the configured row TTL. Run it with other writers stopped
(a worker runs it before it starts consuming).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any, ClassVar

from typostream.agents.adapters.clickhouse import ClickHouseConnection
from typostream.agents.adapters.migrations import migrate
from typostream.agents.adapters.sinks.base import Sink, StreamName
from typostream.agents.domain.errors import InvalidRowError, StoreError
from typostream.agents.domain.messages import threat_db_rows
from typostream.schemas import clickhouse_ddl

__all__ = ["DEFAULT_BATCH_SIZE", "EVENTS_TABLE", "THREATS_TABLE", "ClickHouseSink"]

EVENTS_TABLE = "events"
THREATS_TABLE = "threats"
DEFAULT_BATCH_SIZE = 2000

log = logging.getLogger("typostream.clickhouse")


Converter = Callable[[Any], Any]


def _to_datetime(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, bool):
        raise TypeError("bool is not a timestamp")
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value / 1000.0, tz=UTC)  # epoch milliseconds
    if isinstance(value, str):
        text = value.strip()
        if text.isdigit():
            return datetime.fromtimestamp(int(text) / 1000.0, tz=UTC)
        parsed = datetime.fromisoformat(text)
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    raise TypeError(f"cannot convert {type(value).__name__} to a timestamp")


def _to_str(value: Any) -> str:
    return "" if value is None else str(value)


def _converter(ch_type: str) -> Converter:
    base = ch_type
    if base.startswith("LowCardinality("):
        base = base.removeprefix("LowCardinality(").removesuffix(")")
    if base.startswith("DateTime"):
        return _to_datetime
    if base.startswith(("UInt", "Int")):
        return int
    if base.startswith("Float"):
        return float
    return _to_str


@dataclass(frozen=True)
class _TableInfo:
    columns: tuple[str, ...]
    converters: tuple[Converter, ...]
    key: str


class ClickHouseSink(Sink):
    """Writes the ``events`` stream to table ``events`` and ``threats`` to ``threats``."""

    id: ClassVar[str] = "clickhouse"
    streams: ClassVar[tuple[StreamName, ...]] = ("events", "threats")

    def __init__(
        self,
        connection: ClickHouseConnection,
        batch_size: int = DEFAULT_BATCH_SIZE,
        ttl_days: int | None = None,
    ) -> None:
        self.connection = connection
        self.batch_size = max(1, batch_size)
        self.ttl_days = ttl_days  # row TTL set by ensure_schema (0: none; None: leave as it is)
        self._tables: dict[str, _TableInfo] = {}

    def __repr__(self) -> str:
        return f"ClickHouseSink({self.connection.target.dsn_masked!r})"

    async def write(self, stream: StreamName, records: Sequence[Mapping[str, Any]]) -> None:
        if stream == "threats":
            await asyncio.to_thread(self.insert_threats, threat_db_rows(records))
        else:
            await asyncio.to_thread(self.insert_events, records)

    def ensure_schema(self) -> None:
        """Apply the pending migrations, repair table layouts, set the row TTL, cache the tables' layout.

        Idempotent; a migration interrupted by a crash is redone on the next call
        (``agents/adapters/migrations.py``).
        """
        with self.connection.lock:
            migrate(self.connection, ttl_days=self.ttl_days)
            self._tables.clear()
            for table, _ddl in clickhouse_ddl():
                self._tables[table] = self._describe(table)

    def _describe(self, table: str) -> _TableInfo:
        cols = self.connection.run(
            lambda: (
                self.connection.client.query(
                    "SELECT name, type FROM system.columns"
                    " WHERE database = currentDatabase() AND table = {t:String} ORDER BY position",
                    parameters={"t": table},
                ).result_rows
            )
        )
        key_rows = self.connection.run(
            lambda: (
                self.connection.client.query(
                    "SELECT sorting_key FROM system.tables"
                    " WHERE database = currentDatabase() AND name = {t:String}",
                    parameters={"t": table},
                ).result_rows
            )
        )
        if not cols or not key_rows:
            raise StoreError(f"table {table!r} not found; call ensure_schema() first")
        names = tuple(str(c[0]) for c in cols)
        converters = tuple(_converter(str(c[1])) for c in cols)
        return _TableInfo(names, converters, str(key_rows[0][0]).split(",")[0].strip())

    def _table(self, table: str) -> _TableInfo:
        info = self._tables.get(table)
        if info is None:
            info = self._describe(table)
            self._tables[table] = info
        return info

    def insert_events(self, rows: Sequence[Mapping[str, Any]]) -> int:
        """Insert analysed events; returns the number of rows sent."""
        return self._insert(EVENTS_TABLE, rows)

    def insert_threats(self, rows: Sequence[Mapping[str, Any]]) -> int:
        """Insert threat rows (:func:`threat_db_row`); returns the number of rows sent."""
        return self._insert(THREATS_TABLE, rows)

    def _insert(self, table: str, rows: Sequence[Mapping[str, Any]]) -> int:
        if not rows:
            return 0
        with self.connection.lock:
            info = self._table(table)
            for start in range(0, len(rows), self.batch_size):
                batch = self._unseen(table, info, rows[start : start + self.batch_size])
                if not batch:
                    continue
                data = _columns(info, batch, start)
                token = _dedup_token(table, data[info.columns.index(info.key)])
                self.connection.run(
                    partial(
                        self.connection.client.insert,
                        table,
                        data,
                        column_names=list(info.columns),
                        column_oriented=True,
                        settings={"insert_deduplication_token": token},
                    )
                )
        return len(rows)

    def _unseen(
        self, table: str, info: _TableInfo, batch: Sequence[Mapping[str, Any]]
    ) -> list[Mapping[str, Any]]:
        """Rows whose id is not stored yet, first occurrence in the batch only.

        A replay after a crash re-sends rows in different batches, which the dedup token cannot
        recognise; without this check they would sit as duplicate parts until a merge (FINAL hides
        them, a plain ``count()`` would not). ReplacingMergeTree stays the backstop for races
        between concurrent writers.
        """
        unique: dict[Any, Mapping[str, Any]] = {}
        for row in batch:
            key = row.get(info.key)
            unique.setdefault(None if key is None else str(key), row)  # as stored: _to_str
        ids = [key for key in unique if key is not None]
        if ids:
            # A server-side parameter: binding 2,000 ids into the SQL text client-side took ~4 ms of
            # Python (holding the GIL the event loop needs) per batch, and the engine then parsed them.
            sql = f"SELECT {info.key} FROM {table} WHERE {info.key} IN {{ids:Array(String)}}"
            result = self.connection.run(partial(self.connection.client.query, sql, parameters={"ids": ids}))
            for (stored,) in result.result_rows:
                unique.pop(stored, None)
        return list(unique.values())


def _columns(info: _TableInfo, batch: Sequence[Mapping[str, Any]], offset: int) -> list[list[Any]]:
    data: list[list[Any]] = [[] for _ in info.columns]
    for i, row in enumerate(batch):
        for col, convert, out in zip(info.columns, info.converters, data, strict=True):
            try:
                value = row[col]
            except KeyError:
                raise InvalidRowError(f"row {offset + i} has no column {col!r}") from None
            try:
                out.append(convert(value))
            except (TypeError, ValueError) as exc:
                raise InvalidRowError(f"row {offset + i} column {col!r}: {value!r} ({exc})") from None
    return data


def _dedup_token(table: str, ids: Sequence[Any]) -> str:
    digest = hashlib.sha256(table.encode())
    for value in ids:
        digest.update(b"\0")
        digest.update(str(value).encode())
    return f"{table}-{len(ids)}-{digest.hexdigest()[:32]}"
