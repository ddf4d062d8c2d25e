"""The ad hoc query guard (pure: sqlglot's parser, no engine). Engine-level tests of the same gate
(ClickHouse's formatting first, then this guard, then read-only limits) are in
tests/agents/sinks/test_clickhouse.py; the HTTP ones in tests/integration/test_query_api.py."""

from __future__ import annotations

import pytest

from typostream.agents.domain.errors import ConfigError, ReadOnlyQueryError
from typostream.agents.domain.sql_guard import (
    MAX_SQL_CHARS,
    SAFE_SYSTEM_TABLES,
    SAFE_TABLE_FUNCTIONS,
    QueryLimits,
    check_select,
)

# What analysts write (and what ClickHouse's formatter turns it into): all of it must pass.
ALLOWED = [
    "SELECT 1",
    "SELECT 1;",
    "  -- a comment\nWITH 1 AS x SELECT x",
    "SELECT registry, count() AS n FROM events FINAL GROUP BY registry ORDER BY registry ASC",
    "SELECT registry, target, uniqExact(name) AS squats, count() AS threats FROM threats FINAL"
    " WHERE target != '' GROUP BY registry, target ORDER BY squats DESC, threats DESC, target ASC LIMIT 10",
    "SELECT toStartOfHour(received_at) AS h, countIf(verdict = 'suspicious') FROM events GROUP BY h",
    "SELECT * FROM events AS e LEFT ARRAY JOIN [1, 2] AS a WHERE a GLOBAL IN (1) LIMIT 1 BY registry",
    "WITH (SELECT 1) AS x, y AS (SELECT 2) SELECT x, * FROM y",
    "SELECT number FROM numbers(10) ORDER BY number DESC NULLS FIRST WITH FILL LIMIT 3",
    "SELECT quantile(0.5)(number), arrayMap(x -> (x + 1), [1, 2]) FROM numbers(3)",
    "SELECT CAST(1, 'Nullable(String)'), 1::String, toTypeName(now64())",
    "SELECT sum(number) OVER (PARTITION BY number % 2 ORDER BY number ASC) FROM numbers(3)",
    "SELECT 1 UNION ALL SELECT 2",
    "SELECT 1 UNION DISTINCT (SELECT 2) EXCEPT (SELECT 3)",
    "(SELECT 1)",
    "SELECT * FROM numbers(3) AS a INNER JOIN numbers_mt(3) AS b ON a.number = b.number",
    "SELECT * FROM zeros(3)",
    "SELECT * FROM generate_series(1, 3)",
    "SELECT * FROM generateSeries(1, 3)",
    "SELECT * FROM generateRandom('a UInt8') LIMIT 2",
    "SELECT * FROM system.numbers LIMIT 3",
    "SELECT name, type FROM system.columns WHERE table = 'events'",
    "SELECT system.tables.name FROM system.tables",
    "SELECT `system`.one.dummy FROM `system`.one",
    "SELECT * FROM information_schema.tables",
    "SELECT * FROM INFORMATION_SCHEMA.COLUMNS",
    "SELECT * FROM default.events",
    "SELECT 1 IN (system.one)",
    "SELECT format('{} {}', 'a', 'b'), formatDateTime(now(), '%F')",
    "SELECT 'file(''/etc/passwd'')', 'INTO OUTFILE', 'SETTINGS x = 1'",  # words inside strings
    "SELECT 1 AS `weird name`, 2 AS outfile_count",
    "SELECT URLHierarchy('https://example.com/a'), domain('https://example.com')",
]

REFUSED = [
    # writes files
    ("SELECT 1 INTO OUTFILE '/tmp/x'", "INTO OUTFILE"),
    ("SELECT 1 INTO OUTFILE '/tmp/x' APPEND", "INTO OUTFILE"),
    ("SELECT 1 INTO OUTFILE '/tmp/x' TRUNCATE", "INTO OUTFILE"),
    ("SELECT 1 /* */ INTO /* */ OUTFILE 'x'", "INTO OUTFILE"),
    ("SELECT 1 into\noutfile 'x' AND STDOUT", "INTO OUTFILE"),
    # clauses that lift limits or change the output
    ("SELECT 1 SETTINGS max_execution_time = 0", "SETTINGS"),
    ("SELECT * FROM (SELECT 1 SETTINGS readonly = 0)", "SETTINGS"),
    ("SELECT 1 UNION ALL SELECT 2 SETTINGS max_result_rows = 0", "SETTINGS"),
    ("WITH x AS (SELECT 1 SETTINGS max_memory_usage = 0) SELECT * FROM x", "SETTINGS"),
    ("SELECT 1 FORMAT JSON", "FORMAT"),
    ("SELECT (SELECT 1 FORMAT TSV)", "FORMAT"),
    ("SELECT 1 UNION ALL SELECT 2 FORMAT CSV", "FORMAT"),
    # more than one statement, or not a SELECT
    ("SELECT 1; SELECT 2", "one statement"),
    ("SELECT 1; DROP TABLE events", "one statement"),
    ("SELECT 'a;b'; DROP TABLE events", "one statement"),
    ("/* ; */ SELECT 1 -- ;\n; SELECT 2", "one statement"),
    ("DROP TABLE events", "read-only SELECT"),
    ("drop table threats", "read-only SELECT"),
    ("-- SELECT\nDROP TABLE events", "read-only SELECT"),
    ("/* select */ TRUNCATE TABLE events", "read-only SELECT"),
    ("INSERT INTO events SELECT * FROM events", "read-only SELECT"),
    ("ALTER TABLE events DELETE WHERE 1", "read-only SELECT"),
    ("SHOW TABLES", "read-only SELECT"),
    ("DESCRIBE TABLE events", "read-only SELECT"),
    ("EXPLAIN SELECT 1", "read-only SELECT"),
    ("SET readonly = 0", "read-only SELECT"),
    ("", "empty"),
    ("   ;  ", "one statement"),
    # table functions outside the allow-list, in any position
    ("SELECT * FROM file('/etc/passwd', 'LineAsString')", "'file'"),
    ("SELECT * FROM `file`('/etc/passwd')", "'file'"),
    ("SELECT * FROM \"file\"('/etc/passwd')", "'file'"),
    ("SELECT * FROM url('http://127.0.0.1:1/x', 'CSV', 'a String')", "'url'"),
    ("SELECT * FROM s3('http://x/y')", "'s3'"),
    ("SELECT * FROM remote('h', system.one)", "'remote'"),
    ("SELECT * FROM numbers(1) AS a JOIN remoteSecure('h', 'db', 't') AS b ON 1", "'remoteSecure'"),
    ("SELECT * FROM cluster('c', system.one)", "'cluster'"),
    ("WITH x AS (SELECT * FROM mysql('h', 'd', 't', 'u', 'p')) SELECT * FROM x", "'mysql'"),
    ("SELECT * FROM postgresql('h', 'd', 't', 'u', 'p')", "'postgresql'"),
    ("SELECT (SELECT count() FROM executable('ls', 'TSV', 'a String'))", "'executable'"),
    ("SELECT * FROM hdfs('hdfs://x')", "'hdfs'"),
    ("SELECT * FROM jdbc('x', 'y')", "'jdbc'"),
    ("SELECT * FROM odbc('x', 'y')", "'odbc'"),
    ("SELECT * FROM input('a UInt8')", "'input'"),
    ("SELECT * FROM azureBlobStorage('x')", "'azureBlobStorage'"),
    ("SELECT * FROM icebergS3('x')", "'icebergS3'"),
    ("SELECT * FROM deltaLake('x')", "'deltaLake'"),
    ("SELECT * FROM view(SELECT 1)", "'view'"),
    ("SELECT * FROM merge('system', 'users')", "'merge'"),
    ("SELECT * FROM dictionary('d')", "'dictionary'"),
    ("SELECT * FROM numbers(1) WHERE number IN (SELECT * FROM file('x'))", "'file'"),
    ("SELECT * FROM format(CSV, 'a\n1')", "table function"),
    ("SELECT * FROM Numbers(3)", "table function 'Numbers'"),  # ClickHouse's names are exact
    ("SELECT * FROM someFutureTableFunction('x')", "table function"),
    ("SELECT * FROM values('a UInt8', 1)", "VALUES"),
    # scalar functions that read outside the tables
    ("SELECT file('/etc/passwd')", "'file'"),
    ("SELECT FILE('/etc/passwd')", "'FILE'"),
    ("SELECT 'x' IN file('/etc/hostname', 'LineAsString')", "'file'"),
    ("SELECT length(file('/etc/passwd')) > 0", "'file'"),
    ("SELECT arrayMap(p -> file(p), ['/etc/passwd'])", "'file'"),
    ("SELECT dictGet('d', 'a', 1)", "'dictGet'"),
    ("SELECT dictGetOrDefault('d', 'a', 1, 0)", "'dictGetOrDefault'"),
    ("SELECT joinGet('j', 'a', 1)", "'joinGet'"),
    ("SELECT catboostEvaluate('/m.bin', 1)", "'catboostEvaluate'"),
    ("SELECT addressToLine(1)", "'addressToLine'"),
    ("SELECT __getScalar('x')", "'__getScalar'"),
    # system tables outside the allow-list, however they are named
    ("SELECT * FROM system.processes", "system.processes"),
    ("SELECT query FROM system.query_log", "system.query_log"),
    ("SELECT * FROM system.named_collections", "system.named_collections"),
    ("SELECT * FROM `system`.`users`", "system.users"),
    ('SELECT * FROM "system"."grants"', "system.grants"),
    ("SELECT * FROM SYSTEM.stack_trace", "system.stack_trace"),
    ("SELECT 1 IN system.users", "system.users"),
    ("SELECT 1 IN (system.text_log)", "system.text_log"),
    ("SELECT * FROM numbers(1) AS n JOIN system.server_settings AS s ON 1", "system.server_settings"),
    ("SELECT * FROM (SELECT * FROM (SELECT * FROM system.disks))", "system.disks"),
    ("WITH t AS (SELECT * FROM system.macros) SELECT * FROM t", "system.macros"),
    # odd table names (clickhouse-local reads a path given as a table)
    ("SELECT * FROM '/etc/hostname'", "plain identifier"),
    ("SELECT * FROM `/etc/hostname`", "plain identifier"),
    ("SELECT * FROM a.b.c", "three-part"),
    # query parameters (nothing would bind them)
    ("SELECT {p:UInt8}", "parameters"),
    # parser abuse
    ("SELECT " + "(" * 3000 + "1" + ")" * 3000, "cannot parse"),
    ("SELECT 1 +", "cannot parse"),
    ("SELECT 'unterminated", "cannot parse"),
]


@pytest.mark.parametrize("sql", ALLOWED)
def test_allowed_queries_pass_unchanged(sql: str) -> None:
    assert check_select(sql) == sql.strip().rstrip(";").rstrip()


@pytest.mark.parametrize(("sql", "reason"), REFUSED)
def test_refused_queries_name_the_rule(sql: str, reason: str) -> None:
    with pytest.raises(ReadOnlyQueryError) as info:
        check_select(sql)
    assert reason.lower() in str(info.value).lower()


def test_every_table_function_but_the_allow_list_is_refused() -> None:
    """An allow-list: a table function ClickHouse adds tomorrow is refused until someone adds it."""
    for name in ("numbers", "zeros_mt", "generateRandom"):
        assert name in SAFE_TABLE_FUNCTIONS
        check_select(f"SELECT * FROM {name}(1)")
    for name in ("fuzzJSON", "mergeTreeIndex", "timeSeriesData", "prometheusQuery", "loop", "null"):
        with pytest.raises(ReadOnlyQueryError, match="not allowed"):
            check_select(f"SELECT * FROM {name}('x')")


def test_system_allow_list_is_metadata_and_generators() -> None:
    assert {"tables", "columns", "parts", "numbers", "one"} <= SAFE_SYSTEM_TABLES
    assert not SAFE_SYSTEM_TABLES & {"processes", "query_log", "named_collections", "users", "stack_trace"}


def test_length_limit() -> None:
    check_select("SELECT '" + "x" * (MAX_SQL_CHARS - 20) + "'")
    with pytest.raises(ReadOnlyQueryError, match="longer than"):
        check_select("SELECT '" + "x" * MAX_SQL_CHARS + "'")


def test_unicode_lookalikes_are_not_the_functions_they_imitate() -> None:
    # Cyrillic 'і' / fullwidth letters are other names to ClickHouse (unknown functions there),
    # and the guard must not crash on them; a Kelvin sign lower-cases to 'k' and is refused.
    check_select("SELECT fіle('x')")
    check_select("SELECT ｆｉｌｅ('x')")
    with pytest.raises(ReadOnlyQueryError):
        check_select("SELECT * FROM system.\u212aeywords_nope")  # not a plain identifier


def test_limits_validate() -> None:
    assert QueryLimits() == QueryLimits(10.0, 100_000, 1_000_000_000)
    for bad in ({"max_seconds": 0}, {"max_rows": 0}, {"max_memory_bytes": 0}):
        with pytest.raises(ConfigError):
            QueryLimits(**bad)  # type: ignore[arg-type]
