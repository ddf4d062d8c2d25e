"""Schemas as data: JSON Schemas for the Kafka records and ClickHouse DDL.

The files ship inside the package (``typostream.schemas``) and are read with
:mod:`importlib.resources`, so code and tests load the same definitions and no field
lists are copied into Python.
"""

from __future__ import annotations

import json
import re
from importlib import resources
from typing import Any

__all__ = ["SchemaNotFoundError", "clickhouse_ddl", "load_json_schema"]

_CREATE_TABLE = re.compile(
    r"CREATE\s+TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?(?:`?\w+`?\.)?`?(?P<name>\w+)`?",
    re.IGNORECASE,
)


class SchemaNotFoundError(LookupError):
    """A schema data file is missing from the installed package; reinstall typostream."""


def load_json_schema(name: str) -> dict[str, Any]:
    """Return the JSON Schema ``schemas/<name>.schema.json`` as a dict."""
    resource = resources.files(__name__).joinpath(f"{name}.schema.json")
    if not resource.is_file():
        raise SchemaNotFoundError(f"no JSON schema named {name!r} (expected {name}.schema.json)")
    data: dict[str, Any] = json.loads(resource.read_text(encoding="utf-8"))
    return data


def clickhouse_ddl() -> list[tuple[str, str]]:
    """Return ``(table name, DDL)`` for every ``schemas/clickhouse/*.sql``, sorted by file name.

    Each file holds exactly one ``CREATE TABLE IF NOT EXISTS`` statement (comments allowed);
    the table name is read from the statement and must match the file name.
    """
    folder = resources.files(__name__).joinpath("clickhouse")
    out: list[tuple[str, str]] = []
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".sql"):
            continue
        ddl = entry.read_text(encoding="utf-8").strip().rstrip(";").strip()
        match = _CREATE_TABLE.search(ddl)
        stem = entry.name.removesuffix(".sql")
        if match is None or match.group("name") != stem:
            raise SchemaNotFoundError(f"clickhouse/{entry.name} must hold one CREATE TABLE {stem} statement")
        out.append((stem, ddl))
    if not out:
        raise SchemaNotFoundError("no clickhouse/*.sql DDL files in typostream.schemas")
    return out
