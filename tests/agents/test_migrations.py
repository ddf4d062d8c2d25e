"""Versioned ClickHouse migrations and the row TTL, on real chDB engines (one data dir per test).

chDB opens one engine path per process at a time, so every test opens its own path and closes it
before the next one (the ``chdb`` fixture). A data dir "created by the previous code" is built with
the DDL that code shipped (copied below: HEAD before migrations, and the first release whose
``events`` was partitioned by month) and filled through the sink's insert path, as that code did.

Also home of :func:`analysed_sample` / :func:`replay`: the bundled sample feed analysed in-process
exactly as the validate and detect agents do, written through the real ClickHouse sink.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import gzip
import logging
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from typostream.agents.adapters.clickhouse import ClickHouseConnection
from typostream.agents.adapters.migrations import (
    MAX_TTL_DAYS,
    MIGRATIONS_TABLE,
    TTL_COLUMNS,
    apply_ttl,
    migrate,
    pending_migrations,
    ttl_of,
)
from typostream.agents.adapters.sinks.clickhouse import ClickHouseSink
from typostream.agents.domain.assess import Assessor, load_known
from typostream.agents.domain.detection import Detector
from typostream.agents.domain.errors import ConfigError, InvalidEventError, SchemaMigrationError
from typostream.agents.domain.events import parse_publish
from typostream.agents.domain.messages import analysed_message, event_message, threat_event
from typostream.data.sample import FEED_FILE
from typostream.schemas import (
    Migration,
    SchemaNotFoundError,
    clickhouse_ddl,
    clickhouse_migrations,
    split_statements,
)

Row = dict[str, Any]
VIEW_TABLES = ("threats_hourly", "threat_targets_daily", "detection_latency")


# --- the sample feed, analysed as the agents do, replayed through the real sink -----------------------


@functools.lru_cache(maxsize=1)
def _assessor() -> Assessor:
    return Assessor(Detector.default(None, None), load_known(""))


@functools.lru_cache(maxsize=1)
def _sample_lines() -> tuple[bytes, ...]:
    from importlib import resources

    raw = resources.files("typostream.data.sample").joinpath(FEED_FILE).read_bytes()
    return tuple(line for line in gzip.decompress(raw).splitlines() if line.strip())


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def analysed_sample(at: datetime | None = None, limit: int | None = None) -> tuple[list[Row], list[Row]]:
    """(analysed event rows, threat messages) of the sample feed, analysed at ``at`` (+1 ms per event).

    The same code path as validate → detect: parse_publish (invalid lines dropped, as to the DLQ),
    event_message, Assessor.assess, threat_event, analysed_message. Analysing again at another time
    gives the same ids with later received_at/detected_at: what a replay upstream of the sink does.
    """
    start = at or datetime.now(UTC)
    events: list[Row] = []
    threats: list[Row] = []
    for offset, line in enumerate(_sample_lines()[:limit]):
        try:
            publish = parse_publish(line, 64 * 1024)
        except InvalidEventError:
            continue
        stamp = _iso(start + timedelta(milliseconds=offset))
        event = event_message(publish, offset % 2, offset, stamp)
        result = _assessor().assess(event["name"], event["registry"], event["version"])
        threats += [threat_event(event, t, stamp) for t in result.threats]
        events.append(analysed_message(event, result.verdict, result.threats))
    return events, threats


def replay(sink: ClickHouseSink, events: list[Row], threats: list[Row], batch: int = 500) -> None:
    """Write through the sink's ``write`` (what the sink agents call), in batches of ``batch``."""

    async def run() -> None:
        for start in range(0, len(events), batch):
            await sink.write("events", events[start : start + batch])
        for start in range(0, len(threats), batch):
            await sink.write("threats", threats[start : start + batch])

    asyncio.run(run())


# --- fixtures and helpers -----------------------------------------------------------------------------


@pytest.fixture
def chdb(tmp_path: Path) -> Iterator[Callable[..., ClickHouseConnection]]:
    """``open()`` a connection on this test's data dir (reopen after ``close()`` = a restart)."""
    opened: list[ClickHouseConnection] = []

    def open_(path: Path | None = None) -> ClickHouseConnection:
        connection = ClickHouseConnection.open(f"chdb://{path or tmp_path / 'ch'}", Path("unused"))
        opened.append(connection)
        return connection

    yield open_
    for connection in opened:
        connection.close()


def rows(connection: ClickHouseConnection, sql: str) -> list[tuple[Any, ...]]:
    return [tuple(r) for r in connection.client.query(sql).result_rows]


def scalar(connection: ClickHouseConnection, sql: str) -> Any:
    return rows(connection, sql)[0][0]


def tables(connection: ClickHouseConnection) -> dict[str, str]:
    return dict(rows(connection, "SELECT name, engine FROM system.tables WHERE database = currentDatabase()"))


def keys(connection: ClickHouseConnection, table: str) -> tuple[str, str]:
    found = rows(
        connection,
        "SELECT partition_key, sorting_key FROM system.tables"
        f" WHERE database = currentDatabase() AND name = '{table}'",
    )
    return found[0]


def views_snapshot(connection: ClickHouseConnection) -> dict[str, Any]:
    """What the views answer, merged (the numbers a reader sees)."""
    return {
        "hourly": rows(
            connection,
            "SELECT hour, registry, severity, technique, threat_type, uniqExactMerge(threats),"
            " uniqExactMerge(packages) FROM threats_hourly"
            " GROUP BY hour, registry, severity, technique, threat_type ORDER BY ALL",
        ),
        "targets": rows(
            connection,
            "SELECT registry, target, uniqExactMerge(squats), uniqExactMerge(threats), max(max_risk)"
            " FROM threat_targets_daily GROUP BY registry, target ORDER BY ALL",
        ),
        "latency": rows(
            connection,
            "SELECT registry, event_id, toUnixTimestamp64Milli(analysed_at), latency_ms"
            " FROM detection_latency FINAL ORDER BY ALL",
        ),
    }


def base_truth(connection: ClickHouseConnection) -> dict[str, Any]:
    """The same numbers computed from the base tables with FINAL: what the views must equal."""
    return {
        "hourly": rows(
            connection,
            "SELECT toStartOfHour(detected_at) AS hour, registry, severity, technique, threat_type, count(),"
            " uniqExact(concat(registry, ':', name)) FROM threats FINAL"
            " GROUP BY hour, registry, severity, technique, threat_type ORDER BY ALL",
        ),
        "targets": rows(
            connection,
            "SELECT registry, target, uniqExact(name), count(), max(risk_score) FROM threats FINAL"
            " WHERE target != '' AND threat_type IN ('typosquat', 'dependency_confusion')"
            " GROUP BY registry, target ORDER BY ALL",
        ),
        "latency": rows(
            connection,
            "SELECT registry, event_id, toUnixTimestamp64Milli(received_at), greatest(toInt64(0),"
            " toUnixTimestamp64Milli(received_at) - toUnixTimestamp64Milli(created_date))"
            " FROM events FINAL WHERE threat_count > 0 ORDER BY ALL",
        ),
    }


def normalised(snapshot: dict[str, Any]) -> dict[str, Any]:
    """Hours as naive UTC datetimes on both sides (DateTime vs DateTime64 come back differently)."""
    out = dict(snapshot)
    out["hourly"] = [
        (r[0].astimezone(UTC).replace(tzinfo=None) if r[0].tzinfo else r[0], *r[1:])
        for r in snapshot["hourly"]
    ]
    return out


# The DDL the code before migrations created (HEAD's schemas/clickhouse/events.sql and threats.sql).
EVENTS_DDL_BEFORE_MIGRATIONS = """
CREATE TABLE IF NOT EXISTS events
(
    event_id String, registry LowCardinality(String), name String, version String,
    created_date DateTime64(3, 'UTC'), artifact_id String, schema_ver String,
    received_at DateTime64(3, 'UTC'), source_partition UInt16, source_offset UInt64,
    verdict LowCardinality(String), threat_count UInt16, max_severity LowCardinality(String)
)
ENGINE = ReplacingMergeTree(received_at)
ORDER BY event_id
SETTINGS non_replicated_deduplication_window = 1000
"""
# The first release's events: partitioned by the month of created_date.
EVENTS_DDL_FIRST_RELEASE = EVENTS_DDL_BEFORE_MIGRATIONS.replace(
    "ORDER BY event_id", "PARTITION BY toYYYYMM(created_date)\nORDER BY event_id"
)
THREATS_DDL_BEFORE_MIGRATIONS = """
CREATE TABLE IF NOT EXISTS threats
(
    threat_id String, event_id String, detected_at DateTime64(3, 'UTC'), registry LowCardinality(String),
    name String, version String, threat_type LowCardinality(String), target String,
    technique LowCardinality(String), severity LowCardinality(String), confidence Float32,
    risk_score UInt8, evidence String
)
ENGINE = ReplacingMergeTree(detected_at)
ORDER BY threat_id
SETTINGS non_replicated_deduplication_window = 1000
"""
ALL_TABLES = {
    "events": "ReplacingMergeTree",
    "threats": "ReplacingMergeTree",
    "schema_migrations": "ReplacingMergeTree",
    "threats_hourly": "AggregatingMergeTree",
    "threats_hourly_mv": "MaterializedView",
    "threat_targets_daily": "AggregatingMergeTree",
    "threat_targets_daily_mv": "MaterializedView",
    "detection_latency": "AggregatingMergeTree",
    "detection_latency_mv": "MaterializedView",
    "detection_latency_hourly": "View",
}


# --- a new database ---------------------------------------------------------------------------------


def test_a_new_database_gets_every_migration_once(chdb: Callable[..., ClickHouseConnection]) -> None:
    connection = chdb()
    shipped = clickhouse_migrations()
    report = migrate(connection)
    assert report.applied == tuple(range(1, len(shipped) + 1))
    assert tables(connection) == ALL_TABLES  # no probe or staging table left behind
    assert keys(connection, "events") == ("", "event_id")  # 0001's monthly partitions rebuilt away by 0003
    recorded = rows(connection, f"SELECT version, name, checksum, applied_at FROM {MIGRATIONS_TABLE} FINAL")
    assert [(v, n, c) for v, n, c, _ in sorted(recorded)] == [
        (m.version, m.name, m.checksum) for m in shipped
    ]

    again = migrate(connection)
    assert again.applied == () and again.rebuilt == () and again.ttl_changed == ()
    assert sorted(rows(connection, f"SELECT * FROM {MIGRATIONS_TABLE} FINAL")) == sorted(recorded)
    assert pending_migrations(connection) == []
    connection.close()
    reopened = chdb()  # a restart: nothing to do either
    assert migrate(reopened).applied == ()
    assert tables(reopened) == ALL_TABLES


@pytest.mark.parametrize(
    "events_ddl",
    [EVENTS_DDL_BEFORE_MIGRATIONS, EVENTS_DDL_FIRST_RELEASE],
    ids=["unpartitioned-events", "monthly-partitioned-events"],
)
def test_a_data_dir_created_by_the_previous_code_migrates_cleanly(
    chdb: Callable[..., ClickHouseConnection], events_ddl: str
) -> None:
    old = chdb()
    old.client.command(events_ddl)
    old.client.command(THREATS_DDL_BEFORE_MIGRATIONS)
    events, threats = analysed_sample(datetime(2026, 11, 30, 12, tzinfo=UTC))
    legacy_sink = ClickHouseSink(old)  # the insert path of that code: no ensure_schema
    replay(legacy_sink, events, threats)
    stored = (scalar(old, "SELECT count() FROM events"), scalar(old, "SELECT count() FROM threats"))
    assert stored == (len(events), len(threats)) and len(threats) > 50
    assert MIGRATIONS_TABLE not in tables(old)
    old.close()

    connection = chdb()  # the new code starts on that dir
    sink = ClickHouseSink(connection)
    sink.ensure_schema()

    assert tables(connection) == ALL_TABLES
    assert keys(connection, "events") == ("", "event_id")
    assert [m.version for m in pending_migrations(connection)] == []
    final = ("SELECT count() FROM events FINAL", "SELECT count() FROM threats FINAL")
    assert tuple(scalar(connection, sql) for sql in final) == stored
    assert normalised(views_snapshot(connection)) == normalised(base_truth(connection))  # backfilled
    assert len(views_snapshot(connection)["latency"]) == sum(1 for e in events if e["threat_count"])

    later_events, later_threats = analysed_sample(datetime(2026, 12, 1, 9, tzinfo=UTC), limit=400)
    fresh = [e for e in later_events if e["event_id"] not in {x["event_id"] for x in events}]
    assert not fresh  # same feed: the sink skips stored ids and the views stay equal
    replay(sink, later_events, later_threats)
    assert normalised(views_snapshot(connection)) == normalised(base_truth(connection))
    assert migrate(connection).applied == ()


def test_an_events_table_restored_from_an_old_backup_is_rebuilt_and_still_feeds_its_view(
    chdb: Callable[..., ClickHouseConnection],
) -> None:
    connection = chdb()
    migrate(connection)
    connection.client.command("DROP TABLE events")
    connection.client.command(EVENTS_DDL_FIRST_RELEASE)
    events, threats = analysed_sample(datetime(2026, 11, 30, 12, tzinfo=UTC), limit=1500)
    sink = ClickHouseSink(connection)
    replay(sink, events, threats)

    report = migrate(connection)

    assert report.applied == () and report.rebuilt == ("events",)
    assert keys(connection, "events") == ("", "event_id")
    assert scalar(connection, "SELECT count() FROM events FINAL") == len(events)
    assert not any("__" in name for name in tables(connection))
    flagged = {r[1] for r in views_snapshot(connection)["latency"]}
    assert flagged == {e["event_id"] for e in events if e["threat_count"]}  # the view follows the swap
    more, _ = analysed_sample(datetime(2026, 11, 30, 13, tzinfo=UTC))
    sink.insert_events(more)  # rows after the rebuild reach the view too
    assert normalised(views_snapshot(connection))["latency"] == normalised(base_truth(connection))["latency"]


# --- history checks ---------------------------------------------------------------------------------


def test_an_edited_migration_stops_the_start(chdb: Callable[..., ClickHouseConnection]) -> None:
    connection = chdb()
    migrate(connection)
    shipped = clickhouse_migrations()
    edited = list(shipped)
    edited[3] = dataclasses.replace(shipped[3], statements=(*shipped[3].statements[:-1], "SELECT 1"))
    with pytest.raises(SchemaMigrationError, match=r"0004_threats_hourly\.sql .*edited"):
        migrate(connection, migrations=edited)
    # comments and layout do not count: the same statements reformatted keep the checksum
    text = "-- a new comment\n" + ";\n\n".join(s.replace(" ", "  ") for s in shipped[3].statements) + ";\n"
    assert Migration(4, "threats_hourly", tuple(split_statements(text))).checksum == shipped[3].checksum


def test_a_failing_migration_is_not_recorded_and_runs_again_from_its_start(
    chdb: Callable[..., ClickHouseConnection],
) -> None:
    connection = chdb()
    shipped = clickhouse_migrations()
    migrate(connection)
    step = "CREATE TABLE IF NOT EXISTS extra (id String) ENGINE = MergeTree ORDER BY id"
    broken = Migration(len(shipped) + 1, "extra", (step, "INSERT INTO extra SELECT no_such_function()"))
    with pytest.raises(SchemaMigrationError, match=r"0007_extra\.sql failed at statement 2 of 2"):
        migrate(connection, migrations=[*shipped, broken])
    assert "extra" in tables(connection)  # statement 1 ran
    assert [m.version for m in pending_migrations(connection, [*shipped, broken])] == [broken.version]

    fixed = dataclasses.replace(broken, statements=(step, "INSERT INTO extra VALUES ('a')"))
    assert migrate(connection, migrations=[*shipped, fixed]).applied == (fixed.version,)
    assert scalar(connection, "SELECT count() FROM extra") == 1
    assert pending_migrations(connection, [*shipped, fixed]) == []


def test_versions_a_newer_typostream_recorded_are_left_alone(
    chdb: Callable[..., ClickHouseConnection], caplog: pytest.LogCaptureFixture
) -> None:
    connection = chdb()
    migrate(connection)
    with caplog.at_level(logging.WARNING, "typostream.clickhouse"):
        report = migrate(connection, migrations=clickhouse_migrations()[:4])
    assert report.unknown == (5, 6) and report.applied == ()
    assert "0005, 0006" in caplog.text
    assert "detection_latency" in tables(connection)


# --- TTL ----------------------------------------------------------------------------------------------


def engine_ttls(connection: ClickHouseConnection) -> dict[str, str | None]:
    found = rows(connection, "SELECT name, engine_full FROM system.tables WHERE database = currentDatabase()")
    return {name: ttl_of(engine) for name, engine in found if name in TTL_COLUMNS}


def test_ttl_is_applied_idempotently_and_expires_old_rows(chdb: Callable[..., ClickHouseConnection]) -> None:
    connection = chdb()
    sink = ClickHouseSink(connection)
    sink.ensure_schema()
    now = datetime.now(UTC)
    old_events, old_threats = analysed_sample(now - timedelta(days=40), limit=1500)
    new_events, new_threats = analysed_sample(now)
    new_events = new_events[1500:]
    new_threats = [
        t for t in new_threats if t["metadata"]["correlation_id"] in {e["event_id"] for e in new_events}
    ]
    replay(sink, old_events, old_threats)
    replay(sink, new_events, new_threats)
    assert engine_ttls(connection) == dict.fromkeys(TTL_COLUMNS)

    ttl_sink = ClickHouseSink(connection, ttl_days=30)
    ttl_sink.ensure_schema()
    want = {t: f"toDateTime({c}) + toIntervalDay(30)" for t, c in TTL_COLUMNS.items()}
    assert engine_ttls(connection) == want
    assert migrate(connection, ttl_days=30).ttl_changed == ()  # idempotent: no ALTER, no mutation
    assert migrate(connection, ttl_days=None).ttl_changed == ()  # None leaves it alone
    assert engine_ttls(connection) == want

    for table in TTL_COLUMNS:
        connection.client.command(f"OPTIMIZE TABLE {table} FINAL")  # run the TTL merges now
    assert scalar(connection, "SELECT count() FROM events") == len(new_events)
    assert scalar(connection, "SELECT count() FROM threats") == len(new_threats)
    assert normalised(views_snapshot(connection)) == normalised(base_truth(connection))
    assert scalar(connection, "SELECT min(hour) FROM threats_hourly") >= (now - timedelta(days=31)).replace(
        tzinfo=None
    )

    assert migrate(connection, ttl_days=0).ttl_changed == tuple(TTL_COLUMNS)
    assert engine_ttls(connection) == dict.fromkeys(TTL_COLUMNS)
    assert apply_ttl(connection, 0) == []


@pytest.mark.parametrize("bad", [-1, MAX_TTL_DAYS + 1, True, "30"])
def test_a_bad_ttl_is_a_config_error_before_anything_runs(
    chdb: Callable[..., ClickHouseConnection], bad: Any
) -> None:
    connection = chdb()
    with pytest.raises(ConfigError, match="TYPOSTREAM_CLICKHOUSE_TTL_DAYS"):
        migrate(connection, ttl_days=bad)
    assert tables(connection) == {}  # nothing was created


def test_every_table_the_migrations_create_has_a_ttl_column(
    chdb: Callable[..., ClickHouseConnection],
) -> None:
    connection = chdb()
    migrate(connection)
    stores = {n for n, e in tables(connection).items() if e.endswith("MergeTree") and n != MIGRATIONS_TABLE}
    assert stores == set(TTL_COLUMNS)
    for table, column in TTL_COLUMNS.items():
        columns = {r[0] for r in rows(connection, f"SELECT name FROM system.columns WHERE table = '{table}'")}
        assert column in columns, (table, column)


# --- the loader (pure) ------------------------------------------------------------------------------


def test_split_statements_respects_quotes_and_comments() -> None:
    text = """
    -- a comment; with a semicolon
    SELECT 'a;b', "c;d", `e;f` /* block ; /* nested ; */ still ; */ ;
    # hash comment ;
    SELECT 'it''s -- not a comment', 'back\\'slash'  ;;
    """
    assert split_statements(text) == [
        "SELECT 'a;b', \"c;d\", `e;f`",
        "SELECT 'it''s -- not a comment', 'back\\'slash'",
    ]
    for bad in ("SELECT 'open", "SELECT 1 /* open", 'SELECT "x'):
        with pytest.raises(ValueError, match="unterminated"):
            split_statements(bad)


def test_clickhouse_ddl_is_the_last_layout_of_the_written_tables() -> None:
    ddl = dict(clickhouse_ddl())
    assert list(ddl) == ["events", "threats"]  # views' target tables are not written by the sink
    assert "PARTITION BY" not in ddl["events"]  # 0003's layout, not 0001's
    migrations = clickhouse_migrations()
    assert [m.version for m in migrations] == list(range(1, len(migrations) + 1))
    assert [m.table for m in migrations if m.rebuild] == ["events"]


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({"0001_a.sql": "SELECT 1", "0003_c.sql": "SELECT 1"}, "without gaps"),
        ({"0001_a.sql": "SELECT 1", "events.sql": "SELECT 1"}, "named NNNN_<name>.sql"),
        ({"0001_a.sql": "-- only a comment\n"}, "holds no statement"),
        (
            {"0001_a.sql": "-- migration: rebuild\nCREATE TABLE a (x UInt8) ENGINE = Log; SELECT 1"},
            "one CREATE",
        ),
        ({"0001_a.sql": "SELECT 'open"}, "unterminated"),
        ({}, "no clickhouse"),
    ],
)
def test_malformed_migration_folders_are_refused(tmp_path: Path, files: dict[str, str], message: str) -> None:
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    with pytest.raises(SchemaNotFoundError, match=message):
        clickhouse_migrations(tmp_path)
