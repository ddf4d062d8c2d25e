"""Command: ``query`` — ad hoc analytics SQL against ClickHouse, directly or through a worker's API."""

from __future__ import annotations

from typing import Annotated, Any

import orjson
import typer
from rich.console import Console
from rich.table import Table

from typostream.streams.cli.app import command, error_line, fail
from typostream.streams.cli.options import ClickHouse, DataDir, load_settings


@command()
def query(
    sql: Annotated[str, typer.Argument(help="A read-only query (SELECT/WITH/SHOW/DESCRIBE/EXPLAIN).")],
    data_dir: DataDir = None,
    clickhouse: ClickHouse = None,
    api: Annotated[
        str | None,
        typer.Option("--api", help="Query through a running worker's HTTP API (needed while it holds chDB)."),
    ] = None,
    output: Annotated[
        str, typer.Option("--format", help="table (default) or json (one JSON object per row).")
    ] = "table",
) -> None:
    """Run an ad hoc analytics query and print the result as a table."""
    if output not in ("table", "json"):
        raise fail(f"--format must be 'table' or 'json', not {output!r}")
    settings = load_settings(data_dir, clickhouse=clickhouse)
    try:
        if api:
            columns, rows = _query_api(api, sql)
        else:
            from typostream.streams import components

            with components.open_clickhouse(settings) as connection:
                columns, rows = components.build_analytics(connection).query(sql)
    except Exception as exc:
        raise fail(error_line(exc)) from exc
    if output == "json":
        for row in rows:
            typer.echo(orjson.dumps(dict(zip(columns, row, strict=True)), default=str).decode())
        return
    table = Table(*columns)
    for row in rows:
        table.add_row(*(str(v) for v in row))
    Console().print(table)


def _query_api(base_url: str, sql: str) -> tuple[list[str], list[tuple[Any, ...]]]:
    import urllib.error
    import urllib.request

    request = urllib.request.Request(
        base_url.rstrip("/") + "/api/v1/query",
        data=orjson.dumps({"sql": sql}),
        headers={"content-type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            body = orjson.loads(response.read())
    except urllib.error.HTTPError as exc:
        raise ValueError(orjson.loads(exc.read()).get("error", str(exc))) from exc
    return body["columns"], [tuple(row) for row in body["rows"]]
