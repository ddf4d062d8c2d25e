"""ClickHouse sink for analysed events and threats.

One class, :class:`ClickHouseSink`, in front of a clickhouse-connect client. The target is
chosen by DSN (see :func:`parse_dsn`):

* ``chdb://`` – embedded chDB at ``settings.chdb_path``; ``chdb:///abs/path`` overrides the
  path; ``chdb://memory`` is an in-memory engine (tests).
* ``http(s)://user:pass@host:8123/db`` – a real ClickHouse server.

chDB facts this module relies on (chDB 4.4 / ClickHouse 26.9, clickhouse-connect 1.12):
the engine is opened by ``clickhouse_connect.get_client(interface="chdb", path=...)``; one
engine path per process (a second path raises while a client is open, but works once every
client is closed) and an exclusive lock on the path across processes.

Idempotence: tables are ``ReplacingMergeTree`` keyed by the id (DDL in
``typostream.schemas/clickhouse``), every count reads ``FINAL``, and each insert batch carries an
``insert_deduplication_token`` derived from the table and the batch's ids, so an exact replay of
a batch is dropped at insert time and any other duplicate collapses on merge.

clickhouse-connect is blocking; call the methods via ``asyncio.to_thread``. A lock serialises
calls on the one client, so concurrent threads are safe (one statement at a time).
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import clickhouse_connect
from clickhouse_connect.driver.client import Client

from typostream.schemas import clickhouse_ddl
from typostream.streams.config import mask_url

__all__ = [
    "ClickHouseConnectError",
    "ClickHouseSink",
    "ClickHouseSinkError",
    "ClickHouseTarget",
    "InvalidDsnError",
    "InvalidRowError",
    "ReadOnlyQueryError",
    "Summary",
    "TargetCount",
    "parse_dsn",
]

EVENTS_TABLE = "events"
THREATS_TABLE = "threats"
DEFAULT_BATCH_SIZE = 2000
_READ_ONLY_KEYWORDS = frozenset({"SELECT", "WITH", "SHOW", "DESCRIBE", "DESC", "EXPLAIN"})
_LEADING_COMMENTS = re.compile(r"^(\s+|--[^\n]*(\n|$)|/\*.*?\*/)*", re.DOTALL)


class ClickHouseSinkError(Exception):
    """Base error of the ClickHouse sink."""


class InvalidDsnError(ClickHouseSinkError, ValueError):
    """The ClickHouse DSN is malformed; use ``chdb://``, ``chdb:///abs/path`` or ``http(s)://...``."""


class ClickHouseConnectError(ClickHouseSinkError):
    """ClickHouse could not be opened/reached; check the DSN, the server, or the chDB path lock."""


class InvalidRowError(ClickHouseSinkError, ValueError):
    """A row handed to the sink lacks a column or holds a value that cannot be converted."""


class ReadOnlyQueryError(ClickHouseSinkError, ValueError):
    """``query()`` only runs one SELECT/WITH/SHOW/DESCRIBE/EXPLAIN statement."""


@dataclass(frozen=True)
class ClickHouseTarget:
    """A parsed DSN. ``repr``/``str`` never show the password."""

    interface: str  # "chdb" | "http" | "https"
    path: str | None = None  # chdb only; None = in memory
    host: str = ""
    port: int = 0
    username: str = "default"
    password: str = field(default="", repr=False)
    database: str = "default"
    dsn_masked: str = ""

    def __str__(self) -> str:
        return self.dsn_masked


def parse_dsn(dsn: str, chdb_path: Path | None = None) -> ClickHouseTarget:
    """Parse ``chdb://``, ``chdb:///abs/path``, ``chdb://memory`` or ``http(s)://user:pass@host:port/db``."""
    masked = _mask(dsn)
    try:
        parts = urlsplit(dsn)
        port = parts.port
    except ValueError as exc:
        raise InvalidDsnError(f"malformed ClickHouse DSN {masked!r}") from exc
    scheme = parts.scheme.lower()
    if scheme == "chdb":
        if parts.netloc in ("memory", ":memory:"):
            return ClickHouseTarget("chdb", None, dsn_masked=masked)
        if parts.netloc:
            raise InvalidDsnError(f"chDB DSN {masked!r}: use chdb:// or chdb:///absolute/path")
        if parts.path and parts.path != "/":
            return ClickHouseTarget("chdb", parts.path, dsn_masked=masked)
        if chdb_path is None:
            raise InvalidDsnError("chdb:// needs a chdb_path (settings.chdb_path)")
        return ClickHouseTarget("chdb", str(Path(chdb_path).absolute()), dsn_masked=masked)
    if scheme in ("http", "https"):
        if not parts.hostname:
            raise InvalidDsnError(f"ClickHouse DSN {masked!r} has no host")
        database = unquote(parts.path.strip("/")) or "default"
        if "/" in database:
            raise InvalidDsnError(f"ClickHouse DSN {masked!r}: path must be a single database name")
        return ClickHouseTarget(
            scheme,
            host=parts.hostname,
            port=port or (8443 if scheme == "https" else 8123),
            username=unquote(parts.username) if parts.username else "default",
            password=unquote(parts.password) if parts.password else "",
            database=database,
            dsn_masked=masked,
        )
    raise InvalidDsnError(f"unsupported ClickHouse DSN scheme in {masked!r}; use chdb:// or http(s)://")


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


class ClickHouseSink:
    """Writes events/threats to ClickHouse in column-oriented, idempotent batches."""

    def __init__(
        self, client: Client, target: ClickHouseTarget, batch_size: int = DEFAULT_BATCH_SIZE
    ) -> None:
        self._client = client
        self.target = target
        self.batch_size = max(1, batch_size)
        self._lock = threading.RLock()
        self._tables: dict[str, _TableInfo] = {}
        self._closed = False

    def __repr__(self) -> str:
        return f"ClickHouseSink({self.target.dsn_masked!r})"

    @classmethod
    def from_dsn(cls, dsn: str, chdb_path: Path, batch_size: int = DEFAULT_BATCH_SIZE) -> ClickHouseSink:
        target = parse_dsn(dsn, chdb_path)
        try:
            if target.interface == "chdb":
                if target.path is not None:
                    Path(target.path).mkdir(parents=True, exist_ok=True)
                    client = clickhouse_connect.get_client(interface="chdb", path=target.path)
                else:
                    client = clickhouse_connect.get_client(interface="chdb")
            else:
                client = clickhouse_connect.get_client(
                    interface=target.interface,
                    host=target.host,
                    port=target.port,
                    username=target.username,
                    password=target.password,
                    database=target.database,
                )
        except Exception as exc:
            raise ClickHouseConnectError(
                f"cannot open ClickHouse at {target.dsn_masked}: {_scrub(str(exc), target)}"
            ) from None
        return cls(client, target, batch_size)

    def __enter__(self) -> ClickHouseSink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- schema --------------------------------------------------------------------------

    def ensure_schema(self) -> None:
        """Create the tables if missing (idempotent) and cache their column layout."""
        with self._lock:
            for _table, ddl in clickhouse_ddl():
                self._run(partial(self._client.command, ddl))
            self._tables.clear()
            for table, _ddl in clickhouse_ddl():
                self._tables[table] = self._describe(table)

    def _describe(self, table: str) -> _TableInfo:
        cols = self._run(
            lambda: (
                self._client.query(
                    "SELECT name, type FROM system.columns"
                    " WHERE database = currentDatabase() AND table = {t:String} ORDER BY position",
                    parameters={"t": table},
                ).result_rows
            )
        )
        key_rows = self._run(
            lambda: (
                self._client.query(
                    "SELECT sorting_key FROM system.tables"
                    " WHERE database = currentDatabase() AND name = {t:String}",
                    parameters={"t": table},
                ).result_rows
            )
        )
        if not cols or not key_rows:
            raise ClickHouseSinkError(f"table {table!r} not found; call ensure_schema() first")
        names = tuple(str(c[0]) for c in cols)
        converters = tuple(_converter(str(c[1])) for c in cols)
        return _TableInfo(names, converters, str(key_rows[0][0]).split(",")[0].strip())

    def _table(self, table: str) -> _TableInfo:
        info = self._tables.get(table)
        if info is None:
            info = self._describe(table)
            self._tables[table] = info
        return info

    # -- writes --------------------------------------------------------------------------

    def insert_events(self, rows: Sequence[Mapping[str, Any]]) -> int:
        """Insert analysed events; returns the number of rows sent."""
        return self._insert(EVENTS_TABLE, rows)

    def insert_threats(self, rows: Sequence[Mapping[str, Any]]) -> int:
        """Insert threats; returns the number of rows sent."""
        return self._insert(THREATS_TABLE, rows)

    def _insert(self, table: str, rows: Sequence[Mapping[str, Any]]) -> int:
        if not rows:
            return 0
        with self._lock:
            info = self._table(table)
            for start in range(0, len(rows), self.batch_size):
                batch = self._unseen(table, info, rows[start : start + self.batch_size])
                if not batch:
                    continue
                data = _columns(info, batch, start)
                token = _dedup_token(table, data[info.columns.index(info.key)])
                self._run(
                    partial(
                        self._client.insert,
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
            unique.setdefault(row.get(info.key), row)
        ids = [key for key in unique if key is not None]
        if ids:
            sql = f"SELECT {info.key} FROM {table} WHERE {info.key} IN %(ids)s"
            result = self._run(partial(self._client.query, sql, parameters={"ids": ids}))
            for (stored,) in result.result_rows:
                unique.pop(stored, None)
        return list(unique.values())

    # -- reads ---------------------------------------------------------------------------

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
        with self._lock:
            # readonly=1 is a second guard behind the keyword check (the engine refuses writes).
            result = self._run(lambda: self._client.query(sql.strip().rstrip(";"), settings={"readonly": 1}))
        return list(result.column_names), [tuple(r) for r in result.result_rows]

    def close(self) -> None:
        with self._lock:
            if not self._closed:
                self._closed = True
                self._client.close()

    # -- helpers -------------------------------------------------------------------------

    def _select(self, sql: str) -> list[Sequence[Any]]:
        with self._lock:
            rows: list[Sequence[Any]] = self._run(lambda: self._client.query(sql).result_rows)
        return rows

    def _scalar(self, sql: str) -> int:
        return int(self._select(sql)[0][0])

    def _pairs(self, sql: str) -> dict[str, int]:
        return {str(k): int(v) for k, v in sorted(self._select(sql), key=lambda r: (-int(r[1]), str(r[0])))}

    def _run(self, call: Callable[[], Any]) -> Any:
        if self._closed:
            raise ClickHouseSinkError("the ClickHouse sink is closed")
        try:
            return call()
        except ClickHouseSinkError:
            raise
        except Exception as exc:
            raise ClickHouseSinkError(
                f"ClickHouse error at {self.target.dsn_masked}: {_scrub(str(exc), self.target)}"
            ) from None


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


def _mask(dsn: str) -> str:
    try:
        return str(mask_url(dsn))
    except ValueError:  # e.g. a port out of range: mask by pattern instead
        return re.sub(r"(//[^/:@]*:)[^@/]*@", r"\1***@", dsn)


def _scrub(message: str, target: ClickHouseTarget) -> str:
    if target.password:
        message = message.replace(target.password, "***")
    return message
