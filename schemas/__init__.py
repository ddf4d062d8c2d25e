"""Schemas as data: JSON Schemas for the Kafka records and ClickHouse DDL.

The files ship inside the package (``typostream.schemas``) and are read with
:mod:`importlib.resources`, so code and tests load the same definitions and no field
lists are copied into Python.

ClickHouse DDL is a sequence of versioned migrations, ``clickhouse/NNNN_<name>.sql`` (version
``NNNN`` from 0001, no gaps), applied in order by ``agents/adapters/migrations.py``, which records
each applied version and its checksum in the table ``schema_migrations``. A file holds one or more
statements separated by ``;`` (comments allowed). A file whose first line is ``-- migration: rebuild``
holds exactly one ``CREATE TABLE``: the table is rebuilt to that layout when its partition or sorting
key differs (ClickHouse cannot ALTER them). Every statement must be idempotent (``IF NOT EXISTS``,
inserts into aggregate states that a repeat cannot inflate): a migration interrupted by a crash runs
again from its first statement. A migration never changes once released: its checksum is compared at
every start. A change to a table a rebuild migration owns is a new rebuild migration with the whole
DDL: at every start the table is rebuilt to the last one's layout if its keys differ, keeping only the
columns that DDL has.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable
from typing import Any

__all__ = [
    "Migration",
    "SchemaNotFoundError",
    "clickhouse_ddl",
    "clickhouse_migrations",
    "load_json_schema",
    "split_statements",
]

_CREATE_TABLE = re.compile(
    r"^CREATE\s+TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?(?:`?\w+`?\.)?`?(?P<name>\w+)`?",
    re.IGNORECASE,
)
_MATERIALIZED_TO = re.compile(
    r"^CREATE\s+MATERIALIZED\s+VIEW\s+.*?\bTO\s+(?:`?\w+`?\.)?`?(?P<target>\w+)`?", re.IGNORECASE | re.DOTALL
)
_MIGRATION_FILE = re.compile(r"(?P<version>\d{4})_(?P<name>[a-z0-9_]+)\.sql\Z")
REBUILD_DIRECTIVE = "-- migration: rebuild"


class SchemaNotFoundError(LookupError):
    """A schema data file is missing from the installed package or malformed; reinstall typostream."""


@dataclass(frozen=True)
class Migration:
    """One ``clickhouse/NNNN_<name>.sql`` file: its statements without comments, in order."""

    version: int
    name: str
    statements: tuple[str, ...]
    rebuild: bool = False

    @property
    def file(self) -> str:
        return f"{self.version:04d}_{self.name}.sql"

    @property
    def checksum(self) -> str:
        """sha256 of the statements as they run (comments and layout do not count) and the kind."""
        digest = hashlib.sha256(b"rebuild\n" if self.rebuild else b"apply\n")
        for statement in self.statements:
            digest.update(statement.encode())
            digest.update(b"\0")
        return digest.hexdigest()

    @property
    def table(self) -> str | None:
        """The table a rebuild migration lays out (None for other migrations)."""
        if not self.rebuild:
            return None
        match = _CREATE_TABLE.match(self.statements[0])
        return match.group("name") if match else None


def load_json_schema(name: str) -> dict[str, Any]:
    """Return the JSON Schema ``schemas/<name>.schema.json`` as a dict."""
    resource = resources.files(__name__).joinpath(f"{name}.schema.json")
    if not resource.is_file():
        raise SchemaNotFoundError(f"no JSON schema named {name!r} (expected {name}.schema.json)")
    data: dict[str, Any] = json.loads(resource.read_text(encoding="utf-8"))
    return data


def clickhouse_migrations(folder: Traversable | None = None) -> list[Migration]:
    """Every ``schemas/clickhouse/NNNN_<name>.sql`` (or ``folder``'s), in version order (1..N, no gaps)."""
    folder = folder if folder is not None else resources.files(__name__).joinpath("clickhouse")
    out: list[Migration] = []
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".sql"):
            continue
        match = _MIGRATION_FILE.match(entry.name)
        if match is None:
            raise SchemaNotFoundError(f"clickhouse/{entry.name}: migration files are named NNNN_<name>.sql")
        text = entry.read_text(encoding="utf-8")
        try:
            statements = tuple(split_statements(text))
        except ValueError as exc:
            raise SchemaNotFoundError(f"clickhouse/{entry.name}: {exc}") from None
        migration = Migration(
            int(match.group("version")),
            match.group("name"),
            statements,
            rebuild=text.lstrip().startswith(REBUILD_DIRECTIVE),
        )
        if not statements:
            raise SchemaNotFoundError(f"clickhouse/{entry.name} holds no statement")
        if migration.rebuild and (len(statements) != 1 or migration.table is None):
            raise SchemaNotFoundError(f"clickhouse/{entry.name}: a rebuild migration holds one CREATE TABLE")
        out.append(migration)
    if not out:
        raise SchemaNotFoundError("no clickhouse/NNNN_*.sql migrations in typostream.schemas")
    versions = [m.version for m in out]
    if versions != list(range(1, len(out) + 1)):
        raise SchemaNotFoundError(
            f"clickhouse migration versions must run 1..{len(out)} without gaps: {versions}"
        )
    return out


def clickhouse_ddl() -> list[tuple[str, str]]:
    """``(table name, DDL)`` of the tables rows are written to, as the migrations leave them.

    That is each table's last ``CREATE TABLE`` among the migrations, for every table that is not the
    target of a materialized view (those hold aggregates the views write), in order of first creation.
    """
    latest: dict[str, str] = {}
    view_targets: set[str] = set()
    for migration in clickhouse_migrations():
        for statement in migration.statements:
            if created := _CREATE_TABLE.match(statement):
                latest[created.group("name")] = statement
            elif view := _MATERIALIZED_TO.match(statement):
                view_targets.add(view.group("target"))
    return [(table, ddl) for table, ddl in latest.items() if table not in view_targets]


def split_statements(text: str) -> list[str]:
    """The ``;``-separated statements of ``text``, comments removed and blanks collapsed.

    Understands ``--`` and ``#`` line comments, nested ``/* */`` comments, and ``'…'``, ``"…"`` and
    ```…``` quoting (backslash escapes and doubled quotes), so a ``;`` or ``--`` inside a literal or
    an identifier is kept. Raises ValueError for an unterminated literal or comment.
    """
    statements: list[str] = []
    current: list[str] = []
    i, n = 0, len(text)

    def blank() -> None:
        if current and current[-1] != " ":
            current.append(" ")

    while i < n:
        char = text[i]
        if char in "'\"`":
            end = _quoted_end(text, i)
            current.append(text[i:end])
            i = end
        elif text.startswith("--", i) or char == "#":
            newline = text.find("\n", i)
            i = n if newline < 0 else newline + 1
            blank()
        elif text.startswith("/*", i):
            i = _comment_end(text, i)
            blank()
        elif char.isspace():
            blank()
            i += 1
        elif char == ";":
            statements.append("".join(current).strip())
            current = []
            i += 1
        else:
            current.append(char)
            i += 1
    statements.append("".join(current).strip())
    return [s for s in statements if s]


def _quoted_end(text: str, start: int) -> int:
    quote, i = text[start], start + 1
    while i < len(text):
        if text[i] == "\\":
            i += 2
        elif text[i] == quote:
            if text.startswith(quote * 2, i):
                i += 2
            else:
                return i + 1
        else:
            i += 1
    raise ValueError(f"unterminated {quote}-quoted text at offset {start}")


def _comment_end(text: str, start: int) -> int:
    depth, i = 0, start
    while i < len(text):
        if text.startswith("/*", i):
            depth, i = depth + 1, i + 2
        elif text.startswith("*/", i):
            depth, i = depth - 1, i + 2
            if depth == 0:
                return i
        else:
            i += 1
    raise ValueError(f"unterminated /* comment at offset {start}")
