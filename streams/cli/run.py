"""Commands: ``worker``, ``topics``, ``produce``, ``demo``, ``query``, ``config``."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
from rich.console import Console
from rich.table import Table

from typostream.streams.cli.app import command, error_line, fail
from typostream.streams.config import Settings

console = Console(stderr=True)

DataDir = Annotated[
    Path | None, typer.Option("--data-dir", help="State directory (env TYPOSTREAM_DATA_DIR).")
]
Kafka = Annotated[str | None, typer.Option("--kafka", help="Kafka bootstrap servers host:port[,host:port].")]
Redis = Annotated[str | None, typer.Option("--redis", help="Redis URL.")]
ClickHouse = Annotated[
    str | None, typer.Option("--clickhouse", help="ClickHouse DSN: chdb:// (embedded) or http(s)://...")
]
Partitions = Annotated[int | None, typer.Option("--partitions", min=1, help="Partitions per topic.")]
LogLevel = Annotated[str | None, typer.Option("--log-level", help="DEBUG, INFO, WARNING (default), ERROR.")]


def load_settings(
    data_dir: Path | None = None,
    kafka: str | None = None,
    redis: str | None = None,
    clickhouse: str | None = None,
    partitions: int | None = None,
    log_level: str | None = None,
    **extra: Any,
) -> Settings:
    """Settings from the environment and these flags; a bad value raises ConfigError (one line, exit 2)."""
    return Settings.from_env(
        data_dir=data_dir,
        kafka_bootstrap=kafka,
        redis_url=redis,
        clickhouse_dsn=clickhouse,
        partitions=partitions,
        log_level=log_level,
        **extra,
    )


@command()
def worker(
    data_dir: DataDir = None,
    kafka: Kafka = None,
    redis: Redis = None,
    clickhouse: ClickHouse = None,
    partitions: Partitions = None,
    log_level: LogLevel = None,
    web_port: Annotated[
        int | None, typer.Option("--web-port", help="HTTP port for /metrics and the API.")
    ] = None,
    watchlist: Annotated[Path | None, typer.Option("--watchlist", exists=True, dir_okay=False)] = None,
    allowlist: Annotated[Path | None, typer.Option("--allowlist", exists=True, dir_okay=False)] = None,
) -> None:
    """Run a stream-processing worker until Ctrl-C / SIGTERM."""
    from typostream.streams.worker import prepare_worker, run_worker

    settings = load_settings(
        data_dir,
        kafka,
        redis,
        clickhouse,
        partitions,
        log_level,
        web_port=web_port,
        watchlist_file=watchlist,
        allowlist_file=allowlist,
    )
    try:
        pipeline = prepare_worker(settings)
    except Exception as exc:  # configuration or connectivity: one readable line, exit 2
        raise fail(f"cannot start the worker: {error_line(exc)}") from exc
    run_worker(pipeline)


@command()
def topics(data_dir: DataDir = None, kafka: Kafka = None, partitions: Partitions = None) -> None:
    """Create every typostream topic (idempotent) with the configured partition count."""
    from typostream.streams.topics import ensure_topics

    settings = load_settings(data_dir, kafka, partitions=partitions)
    try:
        created = asyncio.run(ensure_topics(settings))
    except Exception as exc:
        raise fail(f"cannot create topics on {settings.kafka_bootstrap}: {exc}") from exc
    typer.echo(f"created {len(created)} topic(s): {', '.join(created) or '-'}")


@command()
def produce(
    file: Annotated[
        Path, typer.Option("--file", "-f", help="JSON Lines file (.jsonl or .jsonl.gz), one event per line.")
    ],
    data_dir: DataDir = None,
    kafka: Kafka = None,
    topic: Annotated[str | None, typer.Option("--topic", help="Defaults to the input topic.")] = None,
) -> None:
    """Publish events from a JSON Lines file to the input topic (lines are sent as-is)."""
    from typostream.streams.producer import produce_lines, read_lines

    settings = load_settings(data_dir, kafka)
    try:
        lines = read_lines(file)
    except OSError as exc:
        raise fail(f"cannot read {file}: {exc.strerror or exc}") from exc
    try:
        sent = asyncio.run(produce_lines(settings, lines, topic or settings.topic_input, console=console))
    except Exception as exc:
        raise fail(f"cannot produce to {settings.kafka_bootstrap}: {exc}") from exc
    typer.echo(f"sent {sent} event(s) to {topic or settings.topic_input}")


@command()
def demo(
    data_dir: Annotated[
        Path | None, typer.Option("--data-dir", help="Keep the demo's state here (default: a temp dir).")
    ] = None,
    file: Annotated[
        Path | None, typer.Option("--file", help="Events to replay (default: bundled sample).")
    ] = None,
    partitions: Partitions = None,
    timeout: Annotated[float, typer.Option("--timeout", help="Seconds to wait for processing.")] = 300.0,
) -> None:
    """Bring up the embedded stack, run a worker, replay the sample feed, print a summary, tear down."""
    from typostream.streams.demo import run_demo

    code = run_demo(
        data_dir=data_dir, events_file=file, partitions=partitions, timeout_s=timeout, console=console
    )
    raise typer.Exit(code)


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


@command("config")
def show_config(data_dir: DataDir = None) -> None:
    """Print the effective configuration (secrets masked)."""
    typer.echo(orjson.dumps(load_settings(data_dir).masked(), option=orjson.OPT_INDENT_2).decode())
