"""Command: ``report`` — the analytics report as one self-contained HTML file (inline SVG charts).

Built from ClickHouse directly, like ``typostream query`` (chDB: stop the worker that holds the data
dir first; migrations still pending are applied, as a worker start would, so a data dir from an older
typostream gets its views, backfilled; the row TTL is left alone), or through a running worker's
``GET /report`` with ``--api``. The file is written atomically: a failed report leaves any previous
file as it was.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path
from typing import Annotated

import typer

from typostream.agents.domain.errors import QueryError, StoreUnavailableError
from typostream.agents.domain.report import MAX_HOURS, MAX_TOP, ReportData, render_report
from typostream.streams.cli.app import command, error_line, fail
from typostream.streams.cli.options import ClickHouse, DataDir, console, load_settings
from typostream.streams.config import Settings


@command()
def report(
    output: Annotated[
        str, typer.Option("--output", "-o", help="HTML file to write; '-' writes to stdout.")
    ] = "typostream-report.html",
    hours: Annotated[
        int, typer.Option("--hours", min=1, max=MAX_HOURS, help="Window: the last N hours (default 7 days).")
    ] = 168,
    top: Annotated[
        int, typer.Option("--top", min=1, max=MAX_TOP, help="Rows in the technique and target rankings.")
    ] = 10,
    data_dir: DataDir = None,
    clickhouse: ClickHouse = None,
    api: Annotated[
        str | None,
        typer.Option(
            "--api", help="Build it through a running worker's HTTP API (needed while it holds chDB)."
        ),
    ] = None,
) -> None:
    """Write the threat report (threats over time, by technique, top targets, latency) as HTML."""
    settings = load_settings(data_dir, clickhouse=clickhouse)
    try:
        if api:
            page = _report_api(api, hours, top, settings)
            summary = f"from {api.rstrip('/')}/report"
        else:
            data = _report_data(settings, hours, top)
            page = render_report(data)
            summary = f"{data.threats:,} threats, {data.events:,} events analysed, last {hours} h"
        _write(output, page)
    except Exception as exc:
        raise fail(error_line(exc)) from exc
    if output != "-":
        console.print(f"report written to {output} ({summary})", highlight=False)


def _report_data(settings: Settings, hours: int, top: int) -> ReportData:
    from typostream.agents.adapters.migrations import migrate, pending_migrations
    from typostream.streams import components

    with components.open_clickhouse(settings) as connection:
        if pending_migrations(connection):  # only then: a reporting user may not be allowed to write
            migrate(connection, ttl_days=None)
        return components.build_analytics(connection).report_data(hours, top)


def _report_api(base_url: str, hours: int, top: int, settings: Settings) -> str:
    """GET the page from a worker; its refusal comes back as the server's own error line."""
    import urllib.error
    import urllib.parse
    import urllib.request

    import orjson

    query = urllib.parse.urlencode({"hours": hours, "top": top})
    url = f"{base_url.rstrip('/')}/report?{query}"
    headers = {"accept": "text/html"}
    if settings.api_token:
        headers["authorization"] = f"Bearer {settings.api_token}"
    request = urllib.request.Request(url, headers=headers, method="GET")
    try:
        with urllib.request.urlopen(request, timeout=settings.query_max_seconds * 5 + 10) as response:
            content_type = response.headers.get_content_type()
            body = response.read()
    except urllib.error.HTTPError as exc:
        raw = exc.read()
        try:
            reason = orjson.loads(raw).get("error") or raw.decode(errors="replace")
        except (orjson.JSONDecodeError, AttributeError):
            reason = raw.decode(errors="replace").strip()[:300] or "no body"
        raise QueryError(f"{url} answered HTTP {exc.code}: {reason}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise StoreUnavailableError(
            f"cannot reach the worker API at {url}: {getattr(exc, 'reason', exc)}"
        ) from None
    if content_type != "text/html":
        raise QueryError(f"{url} answered {content_type}, not an HTML report")
    return body.decode("utf-8")


def _write(output: str, page: str) -> None:
    if output == "-":
        sys.stdout.write(page)
        return
    target = Path(output)
    directory = target.parent if str(target.parent) else Path(".")
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(page)
        os.chmod(tmp, 0o644)  # mkstemp makes it 0600; a report is for sharing
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
