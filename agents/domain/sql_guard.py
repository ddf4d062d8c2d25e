"""The ad hoc query guard: one read-only ``SELECT``, judged by a SQL parser, never by keywords.

Analysts' SQL reaches the engine through ``POST /api/v1/query`` and ``typostream query``. The
engine runs it with ``readonly=1``, but chDB still honours ``INTO OUTFILE``, reads files through
the scalar ``file()`` function, and ``readonly`` says nothing about cost. So before a statement
runs, :func:`check_select` parses it with sqlglot's ClickHouse dialect and walks the tree:

* exactly one statement, and it is a query (``SELECT``, ``WITH … SELECT``, ``UNION`` / ``EXCEPT`` /
  ``INTERSECT`` of those); anything sqlglot cannot parse is refused (fail closed);
* no ``INTO OUTFILE``, no ``SETTINGS`` clause (it could lift the limits), no ``FORMAT`` clause, no
  query parameters, anywhere — subqueries, ``WITH`` expressions and unions included;
* a table function (``FROM f(...)``, in a join or a subquery too) must be on
  :data:`SAFE_TABLE_FUNCTIONS`: an allow-list, because ClickHouse keeps adding table functions
  that reach files, processes and other hosts (``file``, ``url``, ``s3``, ``remote``, ``mysql``,
  ``executable``, ``iceberg*``, …) and a deny-list would silently let the next one through. The
  allowed ones compute rows from their arguments alone; the limits bound how many;
* ``system.*`` tables must be on :data:`SAFE_SYSTEM_TABLES` (schema metadata and row generators):
  others expose other sessions' queries and logs (``processes``, ``query_log``), credentials
  (``named_collections``), users and grants, server paths, or are expensive (``stack_trace``);
  a column qualified ``system.x`` (``x IN system.users`` reads the table) counts as a table;
* scalar functions that read outside the engine or its metadata — ``file`` (reads any file the
  process can), ``dictGet*``, ``joinGet*``, ``catboostEvaluate``, introspection (chDB enables
  it), internal ``__*`` — are refused by name wherever they are called. Scalar functions are a
  deny-list because there are well over a thousand pure ones and only these few reach outside.

The caller should pass the text the engine will run: the query API first has ClickHouse format
the statement (``formatQuerySingleLine``, the user's text bound as a parameter, never executed),
so comments, quoting and multi-statement tricks are resolved by ClickHouse's own parser, and this
guard judges exactly the text that then runs. Function names are checked on the token stream as
well as the tree, so no sqlglot rewrite of a function into another node can hide one.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass

import sqlglot
from sqlglot import exp
from sqlglot.dialects.clickhouse import ClickHouse
from sqlglot.errors import SqlglotError
from sqlglot.tokens import Token, TokenType

from typostream.agents.domain.errors import ConfigError, ReadOnlyQueryError

__all__ = [
    "MAX_SQL_CHARS",
    "SAFE_SYSTEM_TABLES",
    "SAFE_TABLE_FUNCTIONS",
    "QueryLimits",
    "check_select",
    "check_text",
]

MAX_SQL_CHARS = 100_000  # a longer ad hoc query is a mistake (or an attack on the parser)

# Row generators computed from their arguments alone (exact, case-sensitive ClickHouse names).
SAFE_TABLE_FUNCTIONS = frozenset(
    {"numbers", "numbers_mt", "zeros", "zeros_mt", "generate_series", "generateSeries", "generateRandom"}
)
# Schema metadata and row generators; lower case (compared case-insensitively: refuse more, not less).
SAFE_SYSTEM_TABLES = frozenset(
    {
        "one", "numbers", "numbers_mt", "zeros", "zeros_mt",
        "databases", "tables", "columns", "parts", "parts_columns", "data_skipping_indices",
        "merges", "mutations", "functions", "table_functions", "table_engines",
        "data_type_families", "aggregate_function_combinators", "formats", "time_zones",
        "settings", "merge_tree_settings", "build_options",
    }
)  # fmt: skip
# Views over system.tables/columns/databases: metadata only.
_METADATA_DATABASES = frozenset({"information_schema"})
# Lower case; compared case-insensitively. Table functions are listed too (defence in depth: the
# tree check already refuses them in FROM), so they are refused in any position.
_DENIED_FUNCTIONS = frozenset(
    {
        # read files / models / server state outside the tables
        "file", "filecluster", "catboostevaluate", "modelevaluate", "naivebayesclassifier",
        "showcertificate", "getclienthttpheader", "generateserialid",
        # introspection (enabled in chDB): symbols, debug info, stack traces
        "addresstoline", "addresstolinewithinlines", "addresstosymbol", "demangle",
        # table functions that reach files, processes or other hosts
        "url", "urlcluster", "s3", "s3cluster", "gcs", "oss", "cosn", "hdfs", "hdfscluster",
        "azureblobstorage", "azureblobstoragecluster", "remote", "remotesecure", "cluster",
        "clusterallreplicas", "mysql", "postgresql", "sqlite", "mongodb", "redis", "jdbc", "odbc",
        "executable", "input", "arrowflight", "ytsaurus", "dictionary", "merge", "view",
        "viewifpermitted", "loop", "mergetreeindex", "mergetreeprojection",
    }
)  # fmt: skip
_DENIED_FUNCTION_PREFIXES = (
    "dictget", "dicthas", "dictisin", "joinget", "iceberg", "deltalake", "hudi", "paimon", "__"
)  # fmt: skip
_STATEMENTS = (exp.DDL, exp.DML, exp.Command, exp.Set, exp.Describe, exp.Use, exp.Transaction, exp.Pragma)
_STRING_TOKENS = frozenset(
    {
        TokenType.STRING, TokenType.NATIONAL_STRING, TokenType.RAW_STRING, TokenType.HEX_STRING,
        TokenType.BIT_STRING, TokenType.BYTE_STRING, TokenType.HEREDOC_STRING, TokenType.UNICODE_STRING,
    }
)  # fmt: skip
_PLAIN_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


@dataclass(frozen=True)
class QueryLimits:
    """Hard limits of one ad hoc query (``Settings.query_max_*``), enforced by the engine and by
    the reader (which never holds more than ``max_rows + 1`` rows)."""

    max_seconds: float = 10.0
    max_rows: int = 100_000
    max_memory_bytes: int = 1_000_000_000

    def __post_init__(self) -> None:
        if not self.max_seconds > 0:
            raise ConfigError(f"query_max_seconds must be > 0, got {self.max_seconds}")
        if self.max_rows < 1:
            raise ConfigError(f"query_max_rows must be >= 1, got {self.max_rows}")
        if self.max_memory_bytes < 1:
            raise ConfigError(f"query_max_memory_bytes must be >= 1, got {self.max_memory_bytes}")


def check_select(sql: str) -> str:
    """Return ``sql`` without surrounding blanks/semicolons if it is one allowed read-only SELECT.

    Raises :class:`ReadOnlyQueryError` naming the first rule the statement breaks.
    """
    text = check_text(sql)
    try:
        tokens = ClickHouse().tokenize(text)
    except (SqlglotError, RecursionError) as exc:
        raise ReadOnlyQueryError(f"cannot parse the query: {_first_line(exc)}") from None
    _check_tokens(tokens)
    try:
        statements = [s for s in sqlglot.parse(text, read="clickhouse") if s is not None]
    except (SqlglotError, RecursionError) as exc:
        raise ReadOnlyQueryError(f"cannot parse the query as one SELECT: {_first_line(exc)}") from None
    if len(statements) != 1:
        raise ReadOnlyQueryError(f"exactly one statement is allowed, got {len(statements)}")
    root = statements[0]
    if not isinstance(root, exp.Select | exp.SetOperation | exp.Subquery):
        raise ReadOnlyQueryError(f"only read-only SELECT queries are allowed, got {_kind(root)}")
    for node in root.walk():
        _check_node(node)
    return text.rstrip(";").rstrip()


def check_text(sql: str) -> str:
    """The checks that need no parser (run before the text goes anywhere): not empty, not huge."""
    text = sql.strip()
    if not text:
        raise ReadOnlyQueryError("the query is empty")
    if len(text) > MAX_SQL_CHARS:
        raise ReadOnlyQueryError(f"the query is longer than {MAX_SQL_CHARS} characters")
    return text


def _check_tokens(tokens: list[Token]) -> None:
    for i, token in enumerate(tokens):
        if token.token_type in _STRING_TOKENS:
            continue
        word = token.text.upper()
        if word == "OUTFILE" and i > 0 and tokens[i - 1].text.upper() == "INTO":
            raise ReadOnlyQueryError("INTO OUTFILE is not allowed: ad hoc queries never write files")
        if i + 1 < len(tokens) and tokens[i + 1].token_type == TokenType.L_PAREN:
            _check_function_name(token.text)


def _check_function_name(name: str) -> None:
    lowered = name.lower()
    if lowered in _DENIED_FUNCTIONS or lowered.startswith(_DENIED_FUNCTION_PREFIXES):
        raise ReadOnlyQueryError(
            f"function {name!r} is not allowed in ad hoc queries (it reads outside the analytics tables)"
        )


def _check_node(node: exp.Expr) -> None:
    if isinstance(node, _STATEMENTS):
        raise ReadOnlyQueryError(f"only read-only SELECT queries are allowed, found {_kind(node)}")
    if isinstance(node, exp.Into):
        raise ReadOnlyQueryError("SELECT ... INTO is not allowed: ad hoc queries never write")
    if isinstance(node, exp.Placeholder | exp.Parameter):
        raise ReadOnlyQueryError("query parameters are not supported: write the values into the query")
    if isinstance(node, exp.Values | exp.TableFromRows):
        raise ReadOnlyQueryError("VALUES / table-valued expressions are not supported in ad hoc queries")
    if isinstance(node, exp.Query):
        if node.args.get("settings"):
            raise ReadOnlyQueryError("a SETTINGS clause is not allowed: the server fixes the query limits")
        if node.args.get("format"):
            raise ReadOnlyQueryError("a FORMAT clause is not allowed: results are returned as JSON rows")
    if isinstance(node, exp.Func):
        _check_function_name(_func_name(node))
    if isinstance(node, exp.Table):
        _check_table(node)
    elif isinstance(node, exp.Column):
        _check_qualified_column(node)


def _check_table(table: exp.Table) -> None:
    source = table.this
    if isinstance(source, exp.Func):
        name = _func_name(source)
        if not (isinstance(source, exp.Anonymous | exp.GenerateSeries) and name in SAFE_TABLE_FUNCTIONS):
            raise ReadOnlyQueryError(
                f"table function {name!r} is not allowed; allowed: {', '.join(sorted(SAFE_TABLE_FUNCTIONS))}"
            )
        return
    if not isinstance(source, exp.Identifier):
        raise ReadOnlyQueryError(f"unsupported table expression {source.sql(dialect='clickhouse')[:80]!r}")
    if table.catalog:
        raise ReadOnlyQueryError(f"three-part table name {table.sql(dialect='clickhouse')!r} is not allowed")
    _check_table_name(table.db, table.name)


def _check_qualified_column(column: exp.Column) -> None:
    # ``x IN system.users`` and ``system.users.name`` name a table through a column reference.
    parts = [p.name for p in column.parts]
    for qualifier, name in itertools.pairwise(parts):
        if qualifier.lower() == "system" or qualifier.lower() in _METADATA_DATABASES:
            _check_table_name(qualifier, name)
            return


def _check_table_name(database: str, name: str) -> None:
    for part in (database, name):
        if part and not _PLAIN_NAME.match(part):
            raise ReadOnlyQueryError(f"table name {part!r} is not a plain identifier")
    if database.lower() == "system" and name.lower() not in SAFE_SYSTEM_TABLES:
        allowed = ", ".join(sorted(SAFE_SYSTEM_TABLES))
        raise ReadOnlyQueryError(f"system.{name} is not allowed; allowed system tables: {allowed}")


def _func_name(func: exp.Func) -> str:
    if isinstance(func, exp.Anonymous):
        return func.name
    return func.sql_name() if not isinstance(func, exp.GenerateSeries) else "generate_series"


def _kind(node: exp.Expr) -> str:
    if isinstance(node, exp.Command):
        return str(node.this).upper()
    return node.key.upper()


def _first_line(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return re.sub(r"\x1b\[[0-9;]*m", "", text.splitlines()[0])[:300]
