"""ClickHouseSink against a real embedded chDB engine in a tmp path.

chDB hosts one engine path per process: while any client is open, opening a different path
raises; once all clients are closed a new path can be opened (see test_chdb_engine.py). So
this module shares ONE module-scoped sink and empties the tables before each test.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from typostream.agents.adapters.analytics import (
    ClickHouseAnalytics,
    QueryLimits,
    TargetCount,
    engine_settings,
)
from typostream.agents.adapters.clickhouse import ClickHouseConnection, parse_dsn
from typostream.agents.adapters.sinks.clickhouse import ClickHouseSink
from typostream.agents.domain.errors import (
    ConfigError,
    InvalidDsnError,
    InvalidRowError,
    QueryError,
    QueryLimitError,
    ReadOnlyQueryError,
    StoreError,
    StoreUnavailableError,
)
from typostream.schemas import SchemaNotFoundError, clickhouse_ddl, load_json_schema

Row = dict[str, Any]
BASE_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z


@pytest.fixture(scope="module")
def shared_sink(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClickHouseSink]:
    path = tmp_path_factory.mktemp("chdb")
    sink = ClickHouseSink(ClickHouseConnection.open("chdb://", path))
    sink.ensure_schema()
    yield sink
    sink.connection.close()


@pytest.fixture
def sink(shared_sink: ClickHouseSink) -> ClickHouseSink:
    for table, _ddl in clickhouse_ddl():
        shared_sink.connection.client.command(f"TRUNCATE TABLE {table}")
    return shared_sink


@pytest.fixture
def analytics(sink: ClickHouseSink) -> ClickHouseAnalytics:
    return ClickHouseAnalytics(sink.connection)


@pytest.fixture
def event_factory() -> Callable[..., Row]:
    def make(i: int, **over: Any) -> Row:
        row: Row = {
            "event_id": f"{i:032x}",
            "registry": "npm" if i % 2 == 0 else "pypi",
            "name": f"pkg-{i}",
            "version": "1.0.0",
            "created_date": "2026-01-01T00:00:00.123Z",
            "artifact_id": "",
            "schema_ver": "1.1.0",
            "received_at": BASE_MS + i,
            "source_partition": i % 2,
            "source_offset": i,
            "verdict": "clean",
            "threat_count": 0,
            "max_severity": "",
        }
        row.update(over)
        return row

    return make


@pytest.fixture
def threat_factory() -> Callable[..., Row]:
    def make(i: int, **over: Any) -> Row:
        row: Row = {
            "threat_id": f"t{i:031x}",
            "event_id": f"{i:032x}",
            "detected_at": datetime(2026, 1, 1, tzinfo=UTC),
            "registry": "npm",
            "name": f"reactt{i}",
            "version": "0.0.1",
            "threat_type": "typosquat",
            "target": "react",
            "technique": "typosquat.repetition",
            "severity": "high",
            "confidence": 0.9,
            "risk_score": 80,
            "evidence": "{}",
        }
        row.update(over)
        return row

    return make


def raw_count(sink: ClickHouseSink, table: str) -> int:
    return int(sink.connection.client.query(f"SELECT count() FROM {table}").result_rows[0][0])


# -- schema data ------------------------------------------------------------------------


def test_ddl_loader_lists_both_tables() -> None:
    tables = dict(clickhouse_ddl())
    assert set(tables) == {"events", "threats"}
    for name, ddl in tables.items():
        assert ddl.lstrip("-\n ").upper().count("CREATE TABLE IF NOT EXISTS") == 1
        assert "ReplacingMergeTree" in ddl
        assert f"ORDER BY {name[:-1]}_id" in ddl


def test_load_json_schema_missing_raises() -> None:
    with pytest.raises(SchemaNotFoundError, match="no_such"):
        load_json_schema("no_such")


def test_load_json_schema_reads_present_files() -> None:
    from importlib import resources

    names = [
        e.name.removesuffix(".schema.json")
        for e in resources.files("typostream.schemas").iterdir()
        if e.name.endswith(".schema.json")
    ]
    if not names:
        pytest.skip("no *.schema.json files yet")
    for name in names:
        assert isinstance(load_json_schema(name), dict)


COLUMNS_OF = "SELECT name, type FROM system.columns WHERE database = currentDatabase() AND table = '{table}'"


def test_ensure_schema_is_idempotent_and_matches_spec(
    analytics: ClickHouseAnalytics, sink: ClickHouseSink
) -> None:
    sink.ensure_schema()
    sink.ensure_schema()
    cols, rows = analytics.query(COLUMNS_OF.format(table="events"))
    types = {r[cols.index("name")]: r[cols.index("type")] for r in rows}
    assert types["event_id"] == "String"
    assert types["registry"] == "LowCardinality(String)"
    assert types["created_date"] == "DateTime64(3, 'UTC')"
    assert types["source_partition"] == "UInt16"
    assert types["source_offset"] == "UInt64"
    assert len(types) == 13
    cols, rows = analytics.query(COLUMNS_OF.format(table="threats"))
    types = {r[cols.index("name")]: r[cols.index("type")] for r in rows}
    assert types["confidence"] == "Float32"
    assert types["risk_score"] == "UInt8"
    assert len(types) == 13


# -- inserts and idempotence --------------------------------------------------------------


def test_insert_10k_events_and_replay(
    analytics: ClickHouseAnalytics, sink: ClickHouseSink, event_factory: Callable[..., Row]
) -> None:
    rows = [event_factory(i) for i in range(10_000)]
    assert sink.insert_events(rows) == 10_000
    assert analytics.count_events() == 10_000
    sink.insert_events(rows)  # replay of the same batches
    assert analytics.count_events() == 10_000
    # Same batches carry the same insert_deduplication_token, so nothing was even written.
    assert raw_count(sink, "events") == 10_000


def test_replay_with_other_batching_writes_no_duplicate_rows(
    analytics: ClickHouseAnalytics, sink: ClickHouseSink, event_factory: Callable[..., Row]
) -> None:
    rows = [event_factory(i) for i in range(5_000)]
    sink.insert_events(rows)
    # a different batch (a replay after a crash): the token differs, the stored-id check catches it
    replay = rows[1_000:3_500] + [event_factory(i) for i in range(5_000, 5_010)] + rows[:2]
    assert sink.insert_events(replay) == len(replay)
    assert raw_count(sink, "events") == 5_010
    assert analytics.count_events() == 5_010


def test_the_stored_id_check_matches_ids_with_quotes_and_non_string_ids(
    sink: ClickHouseSink, event_factory: Callable[..., Row]
) -> None:
    # The ids travel as one server-side Array(String) parameter, compared as they are stored
    # (str() of the value): quotes, backslashes and commas must not break or widen the match.
    odd = [event_factory(i, event_id=eid) for i, eid in enumerate(["a'b", "c\\d", "e,f", 'g"h'])]
    numeric = event_factory(9, event_id=12345)  # stored as '12345'
    sink.insert_events([*odd, numeric])
    sink.insert_events([*reversed(odd), numeric, event_factory(10, event_id="e")])  # another batching
    stored = sink.connection.client.query("SELECT event_id FROM events ORDER BY event_id").result_rows
    assert [r[0] for r in stored] == sorted(["a'b", "c\\d", "e,f", 'g"h', "12345", "e"])


def test_concurrent_writers_duplicates_still_collapse_with_final(
    analytics: ClickHouseAnalytics,
    sink: ClickHouseSink,
    event_factory: Callable[..., Row],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rows = [event_factory(i) for i in range(1_000)]
    sink.insert_events(rows)
    # two writers racing both see the ids as new: ReplacingMergeTree is the backstop
    monkeypatch.setattr(sink, "_unseen", lambda table, info, batch: list(batch))
    sink.insert_events(rows[:400])
    assert raw_count(sink, "events") == 1_400
    assert analytics.count_events() == 1_000


def test_insert_threats_and_replay(
    analytics: ClickHouseAnalytics, sink: ClickHouseSink, threat_factory: Callable[..., Row]
) -> None:
    rows = [threat_factory(i) for i in range(10_000)]
    sink.insert_threats(rows)
    sink.insert_threats(rows)
    assert analytics.count_threats() == 10_000
    assert raw_count(sink, "threats") == 10_000
    sink.insert_threats(rows[::3])
    assert analytics.count_threats() == 10_000


def test_timestamp_forms_convert(
    analytics: ClickHouseAnalytics, sink: ClickHouseSink, event_factory: Callable[..., Row]
) -> None:
    want = datetime(2026, 1, 1, 0, 0, 0, 123000, tzinfo=UTC)
    sink.insert_events(
        [
            event_factory(1, created_date="2026-01-01T00:00:00.123Z"),
            event_factory(2, created_date="2026-01-01T01:00:00.123+01:00"),
            event_factory(3, created_date=BASE_MS + 123),
            event_factory(4, created_date=str(BASE_MS + 123)),
            event_factory(5, created_date=want),
            event_factory(6, created_date=want.replace(tzinfo=None)),
        ]
    )
    _cols, rows = analytics.query("SELECT toUnixTimestamp64Milli(created_date) FROM events FINAL")
    assert {r[0] for r in rows} == {BASE_MS + 123}


def test_bad_rows_are_rejected(
    analytics: ClickHouseAnalytics, sink: ClickHouseSink, event_factory: Callable[..., Row]
) -> None:
    row = event_factory(1)
    del row["verdict"]
    with pytest.raises(InvalidRowError, match="verdict"):
        sink.insert_events([row])
    with pytest.raises(InvalidRowError, match="created_date"):
        sink.insert_events([event_factory(1, created_date="yesterday")])
    assert analytics.count_events() == 0


async def test_concurrent_inserts_via_to_thread(
    analytics: ClickHouseAnalytics, sink: ClickHouseSink, event_factory: Callable[..., Row]
) -> None:
    batches = [[event_factory(b * 1_000 + i) for i in range(1_000)] for b in range(6)]
    await asyncio.gather(*(asyncio.to_thread(sink.insert_events, b) for b in batches))
    assert await asyncio.to_thread(analytics.count_events) == 6_000


# -- reads --------------------------------------------------------------------------------


def test_summary_on_known_dataset(
    analytics: ClickHouseAnalytics,
    sink: ClickHouseSink,
    event_factory: Callable[..., Row],
    threat_factory: Callable[..., Row],
) -> None:
    events = [event_factory(i, registry="npm") for i in range(6)] + [
        event_factory(i, registry="pypi") for i in range(6, 10)
    ]
    events[0].update(verdict="malicious", threat_count=2, max_severity="critical")
    events[1].update(verdict="suspicious", threat_count=1, max_severity="medium")
    events[6].update(verdict="suspicious", threat_count=1, max_severity="high")
    threats = [
        threat_factory(0, name="reactt", target="react", severity="critical"),
        threat_factory(1, event_id=f"{0:032x}", name="reactt", target="react", severity="high"),
        threat_factory(2, name="raect", target="react", severity="medium"),
        threat_factory(3, registry="pypi", name="reqeusts", target="requests", severity="high"),
        threat_factory(4, name="evil", target="", threat_type="malicious_script", severity="low"),
    ]
    sink.insert_events(events)
    sink.insert_events(events)
    sink.insert_threats(threats)
    sink.insert_threats(threats[:2])
    s = analytics.summary(top=5)
    assert s.events_total == 10
    assert s.events_by_registry == {"npm": 6, "pypi": 4}
    assert s.events_by_verdict == {"clean": 7, "suspicious": 2, "malicious": 1}
    assert s.threats_total == 5
    assert s.threats_by_severity == {"high": 2, "critical": 1, "low": 1, "medium": 1}
    assert s.top_targets == [
        TargetCount("npm", "react", squats=2, threats=3),
        TargetCount("pypi", "requests", squats=1, threats=1),
    ]
    assert analytics.summary(top=1).top_targets == s.top_targets[:1]


# -- ad hoc queries: one read-only SELECT, judged by a parser, under hard limits ---------------

TABLES = "SELECT name FROM system.tables WHERE database = currentDatabase()"


def test_query_returns_columns_and_rows(
    analytics: ClickHouseAnalytics, sink: ClickHouseSink, event_factory: Callable[..., Row]
) -> None:
    sink.insert_events([event_factory(i) for i in range(4)])
    cols, rows = analytics.query(
        "SELECT registry, count() AS n FROM events FINAL GROUP BY registry ORDER BY registry;"
    )
    assert cols == ["registry", "n"]
    assert rows == [("npm", 2), ("pypi", 2)]
    assert analytics.query("  -- a comment\nWITH 1 AS x SELECT x")[1] == [(1,)]
    assert ("events",) in analytics.query(TABLES)[1]


@pytest.mark.parametrize(
    "sql",
    [
        "DROP TABLE events",
        "drop table threats",
        "-- SELECT\nDROP TABLE events",
        "/* select */ TRUNCATE TABLE events",
        "INSERT INTO events SELECT * FROM events",
        "SELECT 1; DROP TABLE events",
        "SELECT 'a;b'; DROP TABLE events",
        "ALTER TABLE events DELETE WHERE 1",
        "SHOW TABLES",
        "DESCRIBE TABLE events",
        "SELECT 1 SETTINGS readonly = 0",
        "SELECT count() FROM system.numbers_mt SETTINGS max_execution_time = 0",
        "SELECT 1 FORMAT JSON",
        "SELECT * FROM file('/etc/hostname', 'LineAsString')",
        "SELECT * FROM system.processes",
        "SELECT 1 IN system.users",
        "SELECT * FROM `/etc/hostname`",
        "",
    ],
)
def test_query_rejects_non_read_only(analytics: ClickHouseAnalytics, sink: ClickHouseSink, sql: str) -> None:
    with pytest.raises(ReadOnlyQueryError):
        analytics.query(sql)
    assert ("events",) in analytics.query(TABLES)[1]


def test_query_allows_semicolon_in_literal(analytics: ClickHouseAnalytics, sink: ClickHouseSink) -> None:
    assert analytics.query("SELECT 'a;b'")[1] == [("a;b",)]


def test_literals_and_comments_survive_clickhouse_formatting(analytics: ClickHouseAnalytics) -> None:
    """The text that runs is ClickHouse's own formatting of the query: values must not change."""
    values = ["a;b", "it's", "back\\slash", "é😀", "tab\there", "nl\nx", "/* not a comment */", "-- nor this"]
    literals = ", ".join(
        "'" + v.replace("\\", "\\\\").replace("'", "\\'").replace("\n", "\\n") + "'" for v in values
    )
    sql = f"/* a /* nested */ comment */ SELECT {literals} -- trailing\n"
    assert analytics.query(sql)[1] == [tuple(values)]
    assert analytics.query("#!shebang comment\nSELECT 1 AS `weird name`")[0] == ["weird name"]


def test_into_outfile_writes_nothing(
    analytics: ClickHouseAnalytics, sink: ClickHouseSink, tmp_path: Path
) -> None:
    created, existing = tmp_path / "created.txt", tmp_path / "existing.txt"
    # Why the guard exists: the engine honours INTO OUTFILE even under readonly=1.
    sink.connection.client.query(f"SELECT 1 INTO OUTFILE '{created}'", settings={"readonly": 1})
    assert created.stat().st_size > 0  # the result, in the driver's Native format
    created.unlink()
    existing.write_text("keep\n")
    for sql in (
        f"SELECT 1 INTO OUTFILE '{created}'",
        f"SELECT 'x' INTO OUTFILE '{existing}' APPEND",
        f"SELECT 'x' INTO OUTFILE '{existing}' TRUNCATE",
        f"select 1 /* c */ into -- c\n outfile '{created}' format CSV",
        f"WITH (SELECT 1) AS x SELECT x INTO OUTFILE '{created}'",
    ):
        with pytest.raises(ReadOnlyQueryError, match="INTO OUTFILE"):
            analytics.query(sql)
    assert not created.exists()
    assert existing.read_text() == "keep\n"


def test_file_function_is_refused(
    analytics: ClickHouseAnalytics, sink: ClickHouseSink, tmp_path: Path
) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("hunter2")
    # Why: the scalar file() reads any file the process can, readonly or not.
    rows = sink.connection.client.query(f"SELECT file('{secret}')", settings={"readonly": 1}).result_rows
    assert rows == [("hunter2",)]
    for sql in (f"SELECT file('{secret}')", f"SELECT 'x' IN file('{secret}', 'LineAsString')"):
        with pytest.raises(ReadOnlyQueryError, match="'file' is not allowed"):
            analytics.query(sql)


def test_engine_errors_carry_the_clickhouse_message(analytics: ClickHouseAnalytics) -> None:
    with pytest.raises(QueryError) as info:
        analytics.query("SELECT nosuchcolumn FROM events")
    message = str(info.value)
    assert info.value.code == 47 and "UNKNOWN_IDENTIFIER" in message and "nosuchcolumn" in message
    assert "readonly" not in message and "FORMAT Native" not in message and "version" not in message
    with pytest.raises(QueryError, match="Syntax error") as syntax:
        analytics.query("SELEC 1")
    assert "formatQuerySingleLine" not in str(syntax.value)
    with pytest.raises(ReadOnlyQueryError, match="one statement"):
        analytics.query("SELECT 1; SELECT 2")


def test_time_limit_stops_the_query(analytics: ClickHouseAnalytics) -> None:
    start = time.monotonic()
    with pytest.raises(QueryLimitError, match=r"longer than 1 s \(query_max_seconds\)") as info:
        analytics.query("SELECT count() FROM system.numbers_mt", QueryLimits(max_seconds=1))
    assert info.value.limit == "seconds"
    assert time.monotonic() - start < 2.5


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT number FROM numbers(11)",
        "SELECT number FROM numbers(1000000)",
        # max_result_rows does not cover UNION ALL (measured): the reader's own bound must.
        "SELECT number FROM numbers(1000000) UNION ALL SELECT 1",
        "SELECT number FROM system.numbers UNION ALL SELECT 1",
    ],
)
def test_row_limit_is_enforced_by_engine_and_reader(analytics: ClickHouseAnalytics, sql: str) -> None:
    with pytest.raises(QueryLimitError, match="more than 10 rows") as info:
        analytics.query(sql, QueryLimits(max_rows=10))
    assert info.value.limit == "rows"
    assert len(analytics.query("SELECT number FROM numbers(10)", QueryLimits(max_rows=10))[1]) == 10


def test_reader_never_holds_more_than_the_limit(analytics: ClickHouseAnalytics) -> None:
    """Blocks are capped at max_rows + 1 rows, so an endless UNION stops at the first block."""
    received: list[int] = []
    reader = analytics.connection.query_connection()
    settings = engine_settings(QueryLimits(max_rows=1000))
    with reader.stream("SELECT number FROM system.numbers UNION ALL SELECT 1", settings) as (_, blocks):
        for block in blocks:
            received.append(len(block))
            if sum(received) > 1000:
                break
    assert max(received) <= 1001


def test_memory_limit_stops_the_query(analytics: ClickHouseAnalytics) -> None:
    with pytest.raises(QueryLimitError, match="query_max_memory_bytes") as info:
        analytics.query(
            "SELECT groupArray(number) FROM numbers(10000000)", QueryLimits(max_memory_bytes=50_000_000)
        )
    assert info.value.limit == "memory"


async def test_a_long_query_does_not_block_the_writer(
    analytics: ClickHouseAnalytics, sink: ClickHouseSink, event_factory: Callable[..., Row]
) -> None:
    """Queries run on their own client: inserts and counts go on while one sleeps in the engine."""
    long_query = asyncio.create_task(
        asyncio.to_thread(analytics.query, "SELECT (SELECT sleep(2.9)) + (SELECT sleep(2.8)) AS slept")
    )
    await asyncio.sleep(0.3)
    latencies: list[float] = []
    for batch in range(5):
        before = time.monotonic()
        await asyncio.to_thread(sink.insert_events, [event_factory(batch * 10 + i) for i in range(10)])
        await asyncio.to_thread(analytics.count_events)
        latencies.append(time.monotonic() - before)
    assert not long_query.done(), "the query finished early: the test proves nothing"
    assert max(latencies) < 2.5, latencies  # blocked: 6.2 s (the whole query)
    assert analytics.count_events() == 50
    assert await long_query == (["slept"], [(0,)])


def test_query_client_is_separate_and_read_only(
    analytics: ClickHouseAnalytics, sink: ClickHouseSink, event_factory: Callable[..., Row]
) -> None:
    assert analytics.query("SELECT getSetting('readonly') AS ro")[1] == [(1,)]
    assert analytics.connection.query_connection() is analytics.connection.query_connection()
    assert analytics.connection.query_connection().client is not sink.connection.client
    # The writer's session never saw readonly: it still writes.
    assert sink.connection.client.query("SELECT getSetting('readonly')").result_rows == [(0,)]
    assert sink.insert_events([event_factory(1)]) == 1


def test_query_connection_closes_with_its_connection(shared_sink: ClickHouseSink) -> None:
    path = shared_sink.connection.target.path
    connection = ClickHouseConnection.open(f"chdb://{path}", Path("/ignored"))
    reader = connection.query_connection()
    assert ClickHouseAnalytics(connection).query("SELECT 1 AS one")[1] == [(1,)]
    connection.close()
    with pytest.raises(StoreError, match="closed"):
        reader.select("SELECT 1")
    with pytest.raises(StoreError, match="closed"):
        connection.query_connection()


# -- DSNs (no network) --------------------------------------------------------------------


def test_http_dsn_parsed_and_password_masked() -> None:
    t = parse_dsn("http://alice:s3cr%40t@ch.example:8124/analytics")
    assert (t.interface, t.host, t.port, t.username, t.database) == (
        "http",
        "ch.example",
        8124,
        "alice",
        "analytics",
    )
    assert t.password == "s3cr@t"
    for text in (repr(t), str(t)):
        assert "s3cr" not in text
    assert str(t) == "http://alice:***@ch.example:8124/analytics"


def test_https_defaults() -> None:
    t = parse_dsn("https://ch.example")
    assert (t.interface, t.port, t.username, t.password, t.database) == (
        "https",
        8443,
        "default",
        "",
        "default",
    )
    assert parse_dsn("http://ch.example/").port == 8123


def test_chdb_dsn_paths(tmp_path: Path) -> None:
    assert parse_dsn("chdb://", tmp_path / "ch").path == str(tmp_path / "ch")
    assert parse_dsn("chdb:///srv/ch", tmp_path / "ignored").path == "/srv/ch"
    assert parse_dsn("chdb://memory").path is None
    with pytest.raises(InvalidDsnError):
        parse_dsn("chdb://")


@pytest.mark.parametrize(
    "dsn", ["postgres://u:hunter2@h/db", "http://u:hunter2@/db", "http://u:hunter2@h:99999/db", "chdb://h/x"]
)
def test_bad_dsn_errors_hide_password(dsn: str) -> None:
    with pytest.raises(InvalidDsnError) as info:
        parse_dsn(dsn, Path("/tmp/x"))
    assert "hunter2" not in str(info.value)
    assert "hunter2" not in repr(info.value.__cause__ or "")


def test_unreachable_server_error_hides_password() -> None:
    with pytest.raises(StoreUnavailableError) as info:
        ClickHouseConnection.open("http://default:hunter2@127.0.0.1:9/default", Path("/tmp/unused"))
    assert "hunter2" not in str(info.value)
    assert re.search(r"127\.0\.0\.1:9", str(info.value))
    assert info.value.__cause__ is None


# -- partitions: a backfill batch spans decades of created_date ------------------------------

# The events DDL before partitioning was dropped: one partition per month of created_date, so a
# batch spanning more than 100 months failed with "Too many partitions for single INSERT block".
OLD_EVENTS_DDL = """
CREATE TABLE IF NOT EXISTS events
(
    event_id String, registry LowCardinality(String), name String, version String,
    created_date DateTime64(3, 'UTC'), artifact_id String, schema_ver String,
    received_at DateTime64(3, 'UTC'), source_partition UInt16, source_offset UInt64,
    verdict LowCardinality(String), threat_count UInt16, max_severity LowCardinality(String)
)
ENGINE = ReplacingMergeTree(received_at)
PARTITION BY toYYYYMM(created_date)
ORDER BY event_id
SETTINGS non_replicated_deduplication_window = 1000
"""


def monthly_events(event_factory: Callable[..., Row], months: int, start: int = 0) -> list[Row]:
    """One event per calendar month from 2010-01 on: ``months`` distinct months of created_date."""
    return [
        event_factory(start + i, created_date=f"{2010 + i // 12}-{i % 12 + 1:02d}-15T12:00:00.000Z")
        for i in range(months)
    ]


def table_keys(sink: ClickHouseSink, table: str) -> tuple[str, str]:
    rows = sink.connection.client.query(
        "SELECT partition_key, sorting_key FROM system.tables"
        " WHERE database = currentDatabase() AND name = {t:String}",
        parameters={"t": table},
    ).result_rows
    return str(rows[0][0]), str(rows[0][1])


def table_names(sink: ClickHouseSink) -> set[str]:
    rows = sink.connection.client.query("SELECT name FROM system.tables WHERE database = currentDatabase()")
    return {str(r[0]) for r in rows.result_rows}


def test_a_batch_spanning_150_months_lands(
    analytics: ClickHouseAnalytics, sink: ClickHouseSink, event_factory: Callable[..., Row]
) -> None:
    rows = monthly_events(event_factory, 150)
    assert len({r["created_date"][:7] for r in rows}) == 150
    assert sink.insert_events(rows) == 150
    assert analytics.count_events() == 150
    assert table_keys(sink, "events") == ("", "event_id")


def test_an_events_table_created_by_the_old_ddl_is_migrated_keeping_its_rows(
    analytics: ClickHouseAnalytics, sink: ClickHouseSink, event_factory: Callable[..., Row]
) -> None:
    client = sink.connection.client
    client.command("DROP TABLE events")
    client.command(OLD_EVENTS_DDL)  # an existing chDB dir from before the change
    old_rows = monthly_events(event_factory, 90)  # under the old limit: these landed back then
    sink.insert_events(old_rows)
    sink.insert_events(old_rows[:10])  # a replay: no duplicate rows
    assert table_keys(sink, "events") == ("toYYYYMM(created_date)", "event_id")

    sink.ensure_schema()

    assert table_keys(sink, "events") == ("", "event_id")
    assert table_names(sink) >= {"events", "threats"} and not any("__" in t for t in table_names(sink))
    _cols, stored = analytics.query(
        "SELECT event_id, toYYYYMM(created_date), toUnixTimestamp64Milli(received_at) FROM events FINAL"
    )
    month = {r["event_id"]: int(r["created_date"][:4] + r["created_date"][5:7]) for r in old_rows}
    assert sorted(stored) == sorted((r["event_id"], month[r["event_id"]], r["received_at"]) for r in old_rows)
    assert raw_count(sink, "events") == 90
    # the backfill batch that used to stall the sink now lands, next to the migrated rows
    sink.insert_events(monthly_events(event_factory, 150, start=1_000))
    assert analytics.count_events() == 240
    sink.ensure_schema()  # idempotent: nothing left to migrate
    assert analytics.count_events() == 240 and table_keys(sink, "events") == ("", "event_id")


def test_a_migration_interrupted_before_the_swap_is_redone(
    analytics: ClickHouseAnalytics, sink: ClickHouseSink, event_factory: Callable[..., Row]
) -> None:
    client = sink.connection.client
    client.command("DROP TABLE events")
    client.command(OLD_EVENTS_DDL)
    sink.insert_events(monthly_events(event_factory, 30))
    # the worker died while copying: a half-filled new table is left next to the old one
    client.command(OLD_EVENTS_DDL.replace("EXISTS events", "EXISTS events__migrating"))
    client.command("INSERT INTO events__migrating SELECT * FROM events LIMIT 5")

    sink.ensure_schema()

    assert table_keys(sink, "events") == ("", "event_id")
    assert "events__migrating" not in table_names(sink)
    assert analytics.count_events() == 30 and raw_count(sink, "events") == 30


def test_a_migration_interrupted_after_the_swap_keeps_what_the_old_table_had(
    analytics: ClickHouseAnalytics, sink: ClickHouseSink, event_factory: Callable[..., Row]
) -> None:
    client = sink.connection.client
    sink.ensure_schema()
    sink.insert_events(monthly_events(event_factory, 20))
    # the worker died after EXCHANGE TABLES: the old table (old keys) is left under the staging name,
    # holding two rows a writer added during the copy that were not copied over yet
    client.command(OLD_EVENTS_DDL.replace("EXISTS events", "EXISTS events__migrating"))
    client.command("INSERT INTO events__migrating SELECT * FROM events")
    late = monthly_events(event_factory, 2, start=500)
    client.insert(
        "events__migrating",
        [[r["event_id"], r["registry"], r["name"], r["version"], datetime(2011, 5, 1, tzinfo=UTC), "", "",
          datetime(2026, 1, 1, tzinfo=UTC), 0, 0, "clean", 0, ""] for r in late],
    )  # fmt: skip

    sink.ensure_schema()

    assert "events__migrating" not in table_names(sink)
    assert analytics.count_events() == 22 and raw_count(sink, "events") == 22
    assert table_keys(sink, "events") == ("", "event_id")


# -- the materialized views under replays, the README's example queries, the report's reads ----------

VIEW_TABLES = ("threats_hourly", "threat_targets_daily", "detection_latency")
README = Path(__file__).resolve().parents[3] / "README.md"


@pytest.fixture
def views(sink: ClickHouseSink) -> ClickHouseSink:
    """The sink with its views emptied too (the ``sink`` fixture empties events and threats only)."""
    for table in VIEW_TABLES:
        sink.connection.client.command(f"TRUNCATE TABLE {table}")
    return sink


def readme_queries() -> list[str]:
    text = README.read_text()
    section = text[text.index("### Analytics") : text.index("## Configuration")]
    return re.findall(r"```sql\n(.*?)```", section, re.S)


def test_replays_do_not_inflate_the_views(views: ClickHouseSink, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.agents.test_migrations import analysed_sample, base_truth, normalised, replay, views_snapshot

    connection = views.connection
    first = datetime.now(UTC).replace(minute=5, second=0, microsecond=0) - timedelta(hours=3)
    events, threats = analysed_sample(first)
    replay(views, events, threats)
    truth = normalised(base_truth(connection))
    assert len(truth["hourly"]) > 10 and len(truth["targets"]) > 20 and len(truth["latency"]) > 50
    assert normalised(views_snapshot(connection)) == truth

    # 1. Kafka redelivers the same records (a crash before the commit), batched differently
    replay(views, events, threats, batch=333)
    # 2. a replay upstream of the sink: re-analysed an hour later, same ids, later timestamps
    later_events, later_threats = analysed_sample(first + timedelta(hours=1))
    replay(views, later_events, later_threats)
    assert normalised(views_snapshot(connection)) == truth
    # 3. two writers racing (both see the ids as new) on a redelivery: the views do see the duplicates
    monkeypatch.setattr(views, "_unseen", lambda table, info, batch: list(batch))
    parts_before = raw_count(views, "threats_hourly") + raw_count(views, "detection_latency")
    replay(views, events, threats, batch=40)  # other batches: other dedup tokens
    assert raw_count(views, "threats") == 2 * len(threats)  # duplicates stored until a merge
    assert raw_count(views, "threats_hourly") + raw_count(views, "detection_latency") > parts_before
    assert normalised(views_snapshot(connection)) == truth  # ... and are not counted twice
    # 4. racing writers on the re-analysed records: latency keeps each event's first analysis; a threat
    # re-detected in another hour shows in that hour too, but merged over hours it is one threat
    replay(views, later_events, later_threats, batch=40)
    after = normalised(views_snapshot(connection))
    assert after["latency"] == truth["latency"] and after["targets"] == truth["targets"]
    merged = connection.client.query(
        "SELECT uniqExactMerge(threats), uniqExactMerge(packages) FROM threats_hourly"
    )
    assert merged.result_rows == [
        (len(threats), len({(t["package"]["registry"], t["package"]["name"]) for t in threats}))
    ]


def test_a_block_the_table_drops_by_its_dedup_token_still_reaches_the_views(views: ClickHouseSink) -> None:
    """Why the views hold id sets, not counts (measured in chDB 4.4 / ClickHouse 26.9)."""
    client = views.connection.client
    columns = ["threat_id", "event_id", "detected_at", "registry", "name", "version", "threat_type", "target",
               "technique", "severity", "confidence", "risk_score", "evidence"]  # fmt: skip
    now = datetime.now(UTC)
    block = [[f"t{i:031x}", f"{i:032x}", now, "npm", f"reactt{i}", "1.0.0", "typosquat", "react",
              "repetition", "high", 0.9, 80, ""] for i in range(20)]  # fmt: skip
    for _ in range(2):
        client.insert("threats", block, column_names=columns, settings={"insert_deduplication_token": "same"})
    assert raw_count(views, "threats") == 20  # the second block was dropped ...
    hourly_rows = client.query("SELECT count() FROM threats_hourly").result_rows[0][0]
    assert hourly_rows == 2  # ... but the view got it twice
    merged = client.query("SELECT uniqExactMerge(threats), uniqExactMerge(packages) FROM threats_hourly")
    assert merged.result_rows == [(20, 20)]
    targets = client.query("SELECT uniqExactMerge(squats), uniqExactMerge(threats) FROM threat_targets_daily")
    assert targets.result_rows == [(20, 20)]


def test_the_readme_example_queries_run_on_a_sample_replay(
    views: ClickHouseSink, analytics: ClickHouseAnalytics
) -> None:
    from tests.agents.test_migrations import analysed_sample, replay

    events, threats = analysed_sample()
    replay(views, events, threats)
    queries = readme_queries()
    assert len(queries) >= 8
    results = {}
    for sql in queries:
        columns, rows = analytics.query(sql)  # the ad hoc guard's path: views are queryable through it
        assert rows, f"no rows from:\n{sql}"
        results[sql.splitlines()[0]] = (columns, rows)
    per_hour = results["-- threats per hour and severity, last 24 hours"]
    assert sum(r[2] for r in per_hour[1]) == analytics.count_threats() == len(threats)
    by_technique = dict(
        (r[0], r[1]) for r in results["-- threats and flagged packages by technique, last 7 days"][1]
    )
    _cols, base = analytics.query("SELECT technique, count() FROM threats FINAL GROUP BY technique")
    assert by_technique == dict(base)
    top = results["-- the most-targeted packages, last 30 days"][1]
    _cols, base_top = analytics.query(
        "SELECT registry, target, uniqExact(name) AS squats, count() AS threats, max(risk_score)"
        " FROM threats FINAL WHERE target != '' AND threat_type IN ('typosquat', 'dependency_confusion')"
        " GROUP BY registry, target ORDER BY squats DESC, threats DESC, target LIMIT 10"
    )
    assert top == base_top
    latency = results["-- detection latency quantiles over the last 7 days, per registry"][1]
    assert sum(r[1] for r in latency) == sum(1 for e in events if e["threat_count"])
    assert [r[0] for r in results["-- the schema's migrations"][1]] == list(range(1, 7))


def test_report_data_matches_the_base_tables(views: ClickHouseSink, analytics: ClickHouseAnalytics) -> None:
    from tests.agents.test_migrations import analysed_sample, replay

    now = datetime.now(UTC)
    events, threats = analysed_sample(now - timedelta(hours=2))
    replay(views, events, threats)
    replay(views, *analysed_sample(now - timedelta(hours=1)))  # a replay: changes nothing below
    data = analytics.report_data(hours=24, top=5, now=now)

    def base(sql: str) -> list[tuple[Any, ...]]:
        return analytics.query(sql)[1]

    assert data.since == now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=23)
    assert data.events == len(events)
    assert data.threats == len(threats) == analytics.count_threats()
    assert data.packages == base("SELECT uniqExact(concat(registry, ':', name)) FROM threats FINAL")[0][0]
    assert sum(h.threats for h in data.by_hour) == data.threats
    severity = base("SELECT severity, count() FROM threats FINAL GROUP BY severity")
    assert {b.key: b.threats for b in data.by_severity} == dict(severity)
    technique = base(
        "SELECT technique, count() AS n FROM threats FINAL"
        " GROUP BY technique ORDER BY n DESC, technique LIMIT 5"
    )
    assert [(b.key, b.threats) for b in data.by_technique] == technique
    assert {b.key for b in data.by_registry} == {"npm", "pypi"}
    assert len(data.top_targets) == 5 and data.top_targets[0].squats >= data.top_targets[-1].squats
    flagged = [e for e in events if e["threat_count"]]
    overall = data.latency[0]
    assert overall.registry == "all" and overall.events == len(flagged)
    [(p50, p99)] = base(
        "SELECT quantileExact(0.5)(l), quantileExact(0.99)(l) FROM (SELECT"
        " toUnixTimestamp64Milli(received_at) - toUnixTimestamp64Milli(created_date) AS l"
        " FROM events FINAL WHERE threat_count > 0)"
    )
    assert (overall.p50_ms, overall.p99_ms) == (p50, p99)  # the first analysis, not the replay's
    assert {r.registry for r in data.latency} == {"all", "npm", "pypi"}
    assert sum(r.events for r in data.latency[1:]) == overall.events

    quiet = analytics.report_data(hours=1, now=now + timedelta(days=3))
    assert (quiet.threats, quiet.events, quiet.by_hour, quiet.latency) == (0, 0, (), ())
    [(latest,)] = base("SELECT toStartOfHour(max(detected_at)) FROM threats FINAL")
    assert quiet.latest_threat == latest.replace(tzinfo=UTC)
    for bad in ({"hours": 0}, {"hours": 24 * 367}, {"top": 0}, {"top": 101}):
        with pytest.raises(ConfigError):
            analytics.report_data(**bad)
    with pytest.raises(ConfigError, match="break threats down"):
        analytics.threat_breakdown("name; DROP TABLE threats", data.since)
