"""Versioned ClickHouse migrations, applied idempotently at start, and the configured row TTL.

The migrations are the files ``schemas/clickhouse/NNNN_<name>.sql`` (:func:`clickhouse_migrations`).
:func:`migrate` brings a database to the last one:

1. creates ``schema_migrations`` (``version``, ``name``, ``checksum``, ``applied_at``; read with FINAL)
   if missing, and reads which versions it records;
2. refuses (:class:`SchemaMigrationError`) when a recorded version's checksum differs from the
   shipped file's: a released migration was edited, so the database may not have what the file says;
   versions it does not know (a newer typostream migrated it) are logged and left alone;
3. runs every version not recorded, in order, statement by statement, and records it once all its
   statements succeeded. Statements are idempotent, so a migration interrupted by a crash is simply
   run again. A database created before migrations existed (no ``schema_migrations``: the tables of
   0001/0002, ``events`` partitioned or not) goes through the same steps: the ``CREATE TABLE IF NOT
   EXISTS`` of 0001/0002 find their tables, 0003 rebuilds ``events`` if it is still partitioned, the
   view migrations backfill the views from the rows already stored;
4. re-checks the layout of every table a recorded *rebuild* migration owns (the last one per table):
   ClickHouse cannot ALTER a partition or sorting key, so a table with other keys (restored from an
   old backup, or a rebuild that died) is rebuilt: its rows are copied into a table built from the
   DDL, the two are swapped with ``EXCHANGE TABLES`` (atomic) and the old one is dropped. Rows a
   writer adds during the copy are copied over after the swap; leftovers of a rebuild that died are
   taken over or dropped at the next call;
5. sets the row TTL of every table in :data:`TTL_COLUMNS` to ``ttl_days`` (0: no TTL, rows kept
   forever; None: leave the TTLs as they are), altering only tables whose TTL differs.

Run it with other writers stopped (a worker runs it before it starts consuming). Several processes
starting at once against one server are safe for the idempotent statements (a migration recorded
twice is one row of the ReplacingMergeTree); a rebuild should still run in one process.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from types import MappingProxyType
from typing import Any

from typostream.agents.adapters.clickhouse import ClickHouseConnection
from typostream.agents.domain.errors import ConfigError, SchemaMigrationError, StoreError
from typostream.schemas import Migration, clickhouse_migrations

__all__ = [
    "MAX_TTL_DAYS",
    "MIGRATIONS_TABLE",
    "TTL_COLUMNS",
    "AppliedMigration",
    "MigrationReport",
    "applied_migrations",
    "apply_ttl",
    "migrate",
    "pending_migrations",
    "ttl_of",
]

MIGRATIONS_TABLE = "schema_migrations"
MIGRATING_SUFFIX = "__migrating"
"""``<table>__migrating``: the table a rebuild builds; a leftover one is taken over or dropped."""
MAX_TTL_DAYS = 10_000  # ~27 years; further, toDateTime(now) + the TTL nears DateTime's end (2106)
TTL_COLUMNS: Mapping[str, str] = MappingProxyType(
    {
        "events": "received_at",  # when typostream analysed it (created_date can be decades old)
        "threats": "detected_at",
        "threats_hourly": "hour",
        "threat_targets_daily": "day",
        "detection_latency": "analysed_at",
    }
)
"""Every table holding rows, and the time column its TTL counts from (when typostream saw the row)."""

_MIGRATIONS_DDL = f"""
CREATE TABLE IF NOT EXISTS {MIGRATIONS_TABLE}
(
    version    UInt32,
    name       String,
    checksum   String,
    applied_at DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(applied_at)
ORDER BY version
"""
_ANY_PARTITIONS = {"max_partitions_per_insert_block": 0}  # a rebuild's copy may span any number
_TABLE_NAME = re.compile(r"(CREATE\s+TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?)`?\w+`?", re.IGNORECASE)
_TTL_CLAUSE = re.compile(r"\sTTL\s(?P<ttl>.+?)(?=\sSETTINGS\s|$)", re.DOTALL)

log = logging.getLogger("typostream.clickhouse")


@dataclass(frozen=True)
class AppliedMigration:
    version: int
    name: str
    checksum: str
    applied_at: datetime


@dataclass(frozen=True)
class MigrationReport:
    """What one :func:`migrate` call did."""

    applied: tuple[int, ...] = ()  # versions run by this call
    rebuilt: tuple[str, ...] = ()  # tables rebuilt to their layout
    ttl_changed: tuple[str, ...] = ()  # tables whose TTL was altered
    unknown: tuple[int, ...] = ()  # recorded versions this typostream does not ship


def migrate(
    connection: ClickHouseConnection,
    ttl_days: int | None = None,
    migrations: Sequence[Migration] | None = None,
) -> MigrationReport:
    """Apply the pending migrations, repair table layouts and set the TTL (see the module docstring).

    ``migrations`` defaults to the shipped ones. Raises :class:`SchemaMigrationError` when the
    recorded history disagrees with them or a statement fails, :class:`ConfigError` for a bad
    ``ttl_days``.
    """
    if ttl_days is not None:
        _check_ttl_days(ttl_days)
    shipped = list(clickhouse_migrations() if migrations is None else migrations)
    with connection.lock:
        _command(connection, _MIGRATIONS_DDL)
        recorded = applied_migrations(connection)
        _check_history(recorded, shipped)
        applied: list[int] = []
        rebuilt: list[str] = []
        for migration in shipped:
            if migration.version in recorded:
                continue
            log.info("applying ClickHouse migration %s", migration.file)
            if not migration.rebuild:
                _run_statements(connection, migration)
            elif _run_rebuild(connection, migration):
                rebuilt.append(str(migration.table))
            _record(connection, migration)
            applied.append(migration.version)
        for migration in _layout_owners(shipped):
            if migration.version not in applied and _run_rebuild(connection, migration):
                rebuilt.append(str(migration.table))
        ttl_changed = apply_ttl(connection, ttl_days) if ttl_days is not None else []
    known = {m.version for m in shipped}
    unknown = tuple(sorted(v for v in recorded if v not in known))
    if unknown:
        log.warning(
            "ClickHouse records migrations %s that this typostream does not ship (a newer version migrated"
            " the database); leaving them",
            ", ".join(f"{v:04d}" for v in unknown),
        )
    return MigrationReport(tuple(applied), tuple(rebuilt), tuple(ttl_changed), unknown)


def applied_migrations(connection: ClickHouseConnection) -> dict[int, AppliedMigration]:
    """The versions ``schema_migrations`` records (empty when the table does not exist)."""
    with connection.lock:
        if not _exists(connection, MIGRATIONS_TABLE):
            return {}
        rows = _rows(
            connection,
            f"SELECT version, name, checksum, applied_at FROM {MIGRATIONS_TABLE} FINAL ORDER BY version",
        )
    return {int(r[0]): AppliedMigration(int(r[0]), str(r[1]), str(r[2]), _utc(r[3])) for r in rows}


def pending_migrations(
    connection: ClickHouseConnection, migrations: Sequence[Migration] | None = None
) -> list[Migration]:
    """The shipped migrations the database does not record yet (read-only)."""
    recorded = applied_migrations(connection)
    shipped = clickhouse_migrations() if migrations is None else migrations
    return [m for m in shipped if m.version not in recorded]


def apply_ttl(connection: ClickHouseConnection, ttl_days: int) -> list[str]:
    """Set every :data:`TTL_COLUMNS` table's row TTL to ``ttl_days`` (0: none); returns those altered.

    Idempotent: a table whose TTL already is the wanted one is not touched (no mutation). A TTL set
    by hand on these tables is replaced: the setting owns them. Existing rows past a new TTL are
    deleted by the merges ClickHouse schedules (``materialize_ttl_after_modify``).
    """
    _check_ttl_days(ttl_days)
    changed: list[str] = []
    with connection.lock:
        for table, column in TTL_COLUMNS.items():
            engine = _rows(
                connection,
                "SELECT engine_full FROM system.tables"
                " WHERE database = currentDatabase() AND name = {t:String}",
                {"t": table},
            )
            if not engine:
                raise StoreError(f"table {table!r} not found; the migrations create it")
            want = f"toDateTime({column}) + toIntervalDay({ttl_days})" if ttl_days else None
            if ttl_of(str(engine[0][0])) == want:
                continue
            if want is None:
                _command(connection, f"ALTER TABLE {table} REMOVE TTL")
            else:
                _command(connection, f"ALTER TABLE {table} MODIFY TTL {want}")
            log.info("ClickHouse table %s: TTL %s", table, want or "removed")
            changed.append(table)
    return changed


def ttl_of(engine_full: str) -> str | None:
    """The TTL expression of a table from its ``system.tables.engine_full`` (None: no TTL)."""
    match = _TTL_CLAUSE.search(engine_full)
    return match.group("ttl").strip() if match else None


def _check_ttl_days(ttl_days: int) -> None:
    if isinstance(ttl_days, bool) or not isinstance(ttl_days, int) or not 0 <= ttl_days <= MAX_TTL_DAYS:
        raise ConfigError(
            f"TYPOSTREAM_CLICKHOUSE_TTL_DAYS={ttl_days!r}: expected whole days 0..{MAX_TTL_DAYS}"
            " (0 keeps rows forever)"
        )


def _check_history(recorded: Mapping[int, AppliedMigration], shipped: Sequence[Migration]) -> None:
    for migration in shipped:
        seen = recorded.get(migration.version)
        if seen is not None and seen.checksum != migration.checksum:
            raise SchemaMigrationError(
                f"ClickHouse migration {migration.file} was applied on {seen.applied_at:%Y-%m-%d %H:%M} UTC"
                f" with checksum {seen.checksum[:12]}, but the shipped file's is {migration.checksum[:12]}:"
                " a released migration was edited. Restore it and put the change in a new migration."
            )


def _layout_owners(migrations: Sequence[Migration]) -> list[Migration]:
    """The last rebuild migration of each table: its DDL is the layout the table must have."""
    owners: dict[str, Migration] = {}
    for migration in migrations:
        if migration.rebuild and migration.table:
            owners[migration.table] = migration
    return list(owners.values())


def _run_statements(connection: ClickHouseConnection, migration: Migration) -> None:
    for index, statement in enumerate(migration.statements, 1):
        try:
            _command(connection, statement)
        except StoreError as exc:
            raise SchemaMigrationError(
                f"ClickHouse migration {migration.file} failed at statement {index} of"
                f" {len(migration.statements)} ({statement[:60]}…): {exc}"
            ) from None


def _record(connection: ClickHouseConnection, migration: Migration) -> None:
    row = [migration.version, migration.name, migration.checksum, datetime.now(UTC)]
    connection.run(
        partial(
            connection.client.insert,
            MIGRATIONS_TABLE,
            [row],
            column_names=["version", "name", "checksum", "applied_at"],
        )
    )


# --- rebuilds: a table whose partition or sorting key differs from its DDL --------------------------


def _run_rebuild(connection: ClickHouseConnection, migration: Migration) -> bool:
    table, ddl = str(migration.table), migration.statements[0]
    try:
        return _rebuild(connection, table, ddl)
    except StoreError as exc:
        raise SchemaMigrationError(
            f"ClickHouse migration {migration.file} (rebuild {table}): {exc}"
        ) from None


def _rebuild(connection: ClickHouseConnection, table: str, ddl: str) -> bool:
    """Create ``table`` from ``ddl`` if missing, or rebuild it keeping every row if its keys differ.

    Returns whether it was rebuilt. A rebuild that died is recognised by its staging table: before
    the swap that table is a partial copy (dropped, the rebuild starts over); after it, it is the old
    table (the rows it has that the new one lacks are copied over, then it is dropped).
    """
    staging = table + MIGRATING_SUFFIX
    target = _keys_of(connection, ddl, table + "__layout")
    if _exists(connection, staging):
        if (
            _exists(connection, table)
            and _keys(connection, staging) != target
            and _keys(connection, table) == target
        ):
            _copy_missing(connection, staging, table)  # the old table, swapped out: take what it has
        _command(connection, f"DROP TABLE {staging}")
    if not _exists(connection, table):
        _command(connection, ddl)
        return False
    current = _keys(connection, table)
    if current == target:
        return False
    rows = _scalar(connection, f"SELECT count() FROM {table}")
    (log.warning if rows else log.info)(
        "rebuilding ClickHouse table %s: keys %s -> %s, copying its %d rows", table, current, target, rows
    )
    _command(connection, _with_name(ddl, staging))
    columns = _shared_columns(connection, staging, table)
    _command(connection, f"INSERT INTO {staging} ({columns}) SELECT {columns} FROM {table}", _ANY_PARTITIONS)
    copied = _scalar(connection, f"SELECT count() FROM {staging}")
    _command(connection, f"EXCHANGE TABLES {table} AND {staging}")
    if _scalar(connection, f"SELECT count() FROM {staging}") > copied:  # a writer inserted during the copy
        _copy_missing(connection, staging, table)
    _command(connection, f"DROP TABLE {staging}")
    (log.warning if rows else log.info)(
        "rebuilt ClickHouse table %s (%d rows)", table, _scalar(connection, f"SELECT count() FROM {table}")
    )
    return True


def _keys_of(connection: ClickHouseConnection, ddl: str, probe: str) -> tuple[str, str]:
    """The keys a table created by ``ddl`` gets (ClickHouse normalises the expressions)."""
    _command(connection, f"DROP TABLE IF EXISTS {probe}")
    _command(connection, _with_name(ddl, probe))
    try:
        return _keys(connection, probe)
    finally:
        _command(connection, f"DROP TABLE {probe}")


def _copy_missing(connection: ClickHouseConnection, source: str, table: str) -> None:
    """Copy the rows of ``source`` whose key ``table`` lacks."""
    columns = _shared_columns(connection, table, source)
    key = _keys(connection, table)[1].split(",")[0].strip()
    _command(
        connection,
        f"INSERT INTO {table} ({columns}) SELECT {columns} FROM {source}"
        f" WHERE {key} NOT IN (SELECT {key} FROM {table})",
        _ANY_PARTITIONS,
    )


def _exists(connection: ClickHouseConnection, table: str) -> bool:
    return bool(_scalar(connection, f"EXISTS TABLE {table}"))


def _shared_columns(connection: ClickHouseConnection, table: str, other: str) -> str:
    """``table``'s columns that ``other`` has too, comma-separated, in ``table``'s order."""
    theirs = set(_column_names(connection, other))
    return ", ".join(c for c in _column_names(connection, table) if c in theirs)


def _keys(connection: ClickHouseConnection, table: str) -> tuple[str, str]:
    """(partition key, sorting key) as ClickHouse normalises them."""
    rows = _rows(
        connection,
        "SELECT partition_key, sorting_key FROM system.tables"
        " WHERE database = currentDatabase() AND name = {t:String}",
        {"t": table},
    )
    if not rows:
        raise StoreError(f"table {table!r} not found")
    return str(rows[0][0]), str(rows[0][1])


def _column_names(connection: ClickHouseConnection, table: str) -> list[str]:
    rows = _rows(
        connection,
        "SELECT name FROM system.columns WHERE database = currentDatabase() AND table = {t:String}"
        " ORDER BY position",
        {"t": table},
    )
    return [str(r[0]) for r in rows]


def _with_name(ddl: str, name: str) -> str:
    """``ddl``'s CREATE TABLE statement for a table called ``name``."""
    renamed, n = _TABLE_NAME.subn(rf"\g<1>{name}", ddl, count=1)
    if n != 1:
        raise StoreError(f"not a CREATE TABLE statement: {ddl[:80]!r}")
    return renamed


# --- statements -------------------------------------------------------------------------------------


def _command(connection: ClickHouseConnection, sql: str, settings: dict[str, Any] | None = None) -> None:
    connection.run(partial(connection.client.command, sql, settings=settings))


def _rows(connection: ClickHouseConnection, sql: str, parameters: dict[str, Any] | None = None) -> list[Any]:
    rows: list[Any] = connection.run(partial(connection.client.query, sql, parameters=parameters)).result_rows
    return rows


def _scalar(connection: ClickHouseConnection, sql: str) -> int:
    return int(_rows(connection, sql)[0][0])


def _utc(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return datetime.fromtimestamp(0, tz=UTC)
