"""Command: ``query`` — ad hoc analytics SQL against ClickHouse, directly or through a worker's API.

Both paths run the same guard and limits (``agents/domain/sql_guard.py``, ``Settings.query_max_*``):
directly through :meth:`ClickHouseAnalytics.query`, through the API by the worker doing the same.
"""

from __future__ import annotations

from typing import Annotated, Any

import orjson
import typer
from rich.console import Console
from rich.table import Table

from typostream.agents.domain.errors import QueryError, StoreUnavailableError
from typostream.agents.domain.sql_guard import QueryLimits
from typostream.streams.cli.app import command, error_line, fail
from typostream.streams.cli.options import ClickHouse, DataDir, load_settings


@command()
def query(
    sql: Annotated[str, typer.Argument(help="One read-only SELECT (WITH, UNION and subqueries included).")],
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
            columns, rows = _query_api(api, sql, settings.api_token, settings.query_max_seconds)
        else:
            from typostream.streams import components

            limits = QueryLimits(
                settings.query_max_seconds, settings.query_max_rows, settings.query_max_memory_bytes
            )
            with components.open_clickhouse(settings) as connection:
                columns, rows = components.build_analytics(connection).query(sql, limits)
    except Exception as exc:
        raise fail(error_line(exc)) from exc
    if output == "json":
        for row in rows:
            line = orjson.dumps(
                dict(zip(columns, row, strict=True)), default=str, option=orjson.OPT_NON_STR_KEYS
            )
            typer.echo(line.decode())
        return
    table = Table(*columns)
    for row in rows:
        table.add_row(*(str(v) for v in row))
    Console().print(table)


def _query_api(
    base_url: str, sql: str, token: str, max_seconds: float
) -> tuple[list[str], list[tuple[Any, ...]]]:
    """POST the query to a worker; its refusal comes back as the server's own error line."""
    import urllib.error
    import urllib.request

    url = base_url.rstrip("/") + "/api/v1/query"
    headers = {"content-type": "application/json"}
    if token:
        headers["authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, data=orjson.dumps({"sql": sql}), headers=headers, method="POST")
    try:
        # The server stops a query after its own limit; allow for queueing behind others.
        with urllib.request.urlopen(request, timeout=max_seconds * 5 + 10) as response:
            body = orjson.loads(response.read())
    except urllib.error.HTTPError as exc:
        raise QueryError(f"{url} answered HTTP {exc.code}: {_error_text(exc.read())}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise StoreUnavailableError(f"cannot reach the worker API at {url}: {reason}") from None
    except orjson.JSONDecodeError as exc:
        raise QueryError(f"{url} answered something that is not JSON: {exc}") from None
    return body["columns"], [tuple(row) for row in body["rows"]]


def _error_text(raw: bytes) -> str:
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return raw.decode(errors="replace").strip()[:300] or "no body"
    if isinstance(body, dict) and isinstance(body.get("error"), str):
        return body["error"]
    return raw.decode(errors="replace")[:300]
