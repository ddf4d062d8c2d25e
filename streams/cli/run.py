"""Commands: ``worker``, ``topics``, ``produce``, ``demo``, ``config``."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import orjson
import typer

from typostream.streams.cli.app import command, error_line, fail
from typostream.streams.cli.options import (
    ClickHouse,
    DataDir,
    Kafka,
    LogLevel,
    Partitions,
    Redis,
    console,
    load_settings,
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
    processes: Annotated[
        int | None,
        typer.Option(
            "--processes",
            min=1,
            help="Detect processes sharing the input partitions, plus one store process (table, sinks,"
            " API on --web-port); 1 runs everything in this process. [env TYPOSTREAM_WORKER_PROCESSES]",
        ),
    ] = None,
    role: Annotated[str, typer.Option("--role", hidden=True, help="One process of --processes N.")] = "all",
    index: Annotated[int, typer.Option("--index", hidden=True)] = 0,
) -> None:
    """Run a stream-processing worker until Ctrl-C / SIGTERM."""
    from typostream.streams.worker import prepare_worker, run_processes, run_worker

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
        worker_processes=processes,
    )
    if settings.worker_processes < 1:
        raise fail(f"TYPOSTREAM_WORKER_PROCESSES={settings.worker_processes}: must be at least 1")
    if role == "all" and settings.worker_processes > 1:
        run_processes(settings, settings.worker_processes)
    try:
        pipeline = prepare_worker(settings, role, index)
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
    """Publish events from a JSON Lines file to the input topic (lines are sent as-is).

    The file is read as it is sent. If it breaks part-way (a truncated .gz) or Kafka refuses a
    line, the one error line says what happened where and how many lines were sent before.
    """
    from typostream.agents.domain.errors import EventFileError, SendStoppedError
    from typostream.streams.producer import iter_lines, produce_lines

    settings = load_settings(data_dir, kafka)
    target = topic or settings.topic_input
    try:
        with open(file, "rb"):
            pass
    except OSError as exc:
        raise fail(f"cannot read {file}: {exc.strerror or exc}") from exc
    current = 0  # the file line being sent, for the error message

    def lines() -> Iterator[bytes]:
        nonlocal current
        for number, line in iter_lines(file):
            current = number
            yield line

    shown = console if console.is_terminal else None  # no progress bar in logs and pipes
    try:
        sent = asyncio.run(produce_lines(settings, lines(), target, console=shown))
    except SendStoppedError as exc:
        if isinstance(exc.cause, EventFileError):
            problem = str(exc.cause)
        else:
            where = f"stopped at line {current} of {file}"  # the line sent last, or the one refused
            problem = f"cannot produce to {settings.kafka_bootstrap} ({where}): {error_line(exc.cause)}"
        raise fail(f"{problem}; sent {exc.sent} line(s) to {target} before it stopped") from exc
    except Exception as exc:
        raise fail(f"cannot produce to {settings.kafka_bootstrap}: {exc}") from exc
    typer.echo(f"sent {sent} event(s) to {target}")


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


@command("config")
def show_config(data_dir: DataDir = None) -> None:
    """Print the effective configuration (secrets masked)."""
    typer.echo(orjson.dumps(load_settings(data_dir).masked(), option=orjson.OPT_INDENT_2).decode())
