"""Command: ``feed`` — poll npm or PyPI and publish package-feeds events to the input topic."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Sequence
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape

from typostream.agents.domain.errors import BrokerUnavailableError, TypostreamError
from typostream.streams.cli.app import command, error_line, fail
from typostream.streams.cli.options import (
    DataDir,
    Kafka,
    MetricsHost,
    MetricsPort,
    load_settings,
    mark_ready,
    serve_metrics,
)
from typostream.streams.components import FEED_FACTORIES, FeedOptions, build_feed

if TYPE_CHECKING:
    from typostream.agents.adapters.feeds import CursorStore, FeedSource, FeedStats

console = Console(stderr=True)


FeedRegistry = StrEnum("FeedRegistry", {name: name for name in FEED_FACTORIES})  # type: ignore[misc]


@command()
def feed(
    registry: Annotated[FeedRegistry, typer.Option("--registry", help="Which registry to watch.")],
    once: Annotated[
        bool, typer.Option("--once", help="Poll once, publish, save the cursor and exit.")
    ] = False,
    interval: Annotated[float, typer.Option("--interval", min=0.1, help="Seconds between polls.")] = 30.0,
    limit: Annotated[
        int,
        typer.Option(
            "--limit", min=1, help="npm: changes per request (npm allows up to 10000); PyPI: events per poll."
        ),
    ] = 500,
    pypi_url: Annotated[
        str | None, typer.Option("--pypi-url", help="PyPI base URL (env TYPOSTREAM_PYPI_URL).")
    ] = None,
    pypi_new_projects: Annotated[
        bool, typer.Option("--pypi-new-projects", help="Also poll /rss/packages.xml (+ JSON API lookups).")
    ] = False,
    npm_replicate_url: Annotated[
        str | None,
        typer.Option(
            "--npm-replicate-url", help="npm replica serving /_changes (env TYPOSTREAM_NPM_REPLICATE_URL)."
        ),
    ] = None,
    npm_registry_url: Annotated[
        str | None,
        typer.Option(
            "--npm-registry-url", help="npm registry, serves packuments (env TYPOSTREAM_NPM_REGISTRY_URL)."
        ),
    ] = None,
    npm_since: Annotated[
        str,
        typer.Option(
            "--npm-since", help="npm start sequence without a saved cursor ('now': the replica's update_seq)."
        ),
    ] = "now",
    metrics_port: MetricsPort = None,
    metrics_host: MetricsHost = "127.0.0.1",
    data_dir: DataDir = None,
    kafka: Kafka = None,
) -> None:
    """Watch a registry and publish each new release to the input topic (Ctrl-C saves and stops)."""
    from typostream.agents.adapters.feeds import CursorStore

    settings = load_settings(
        data_dir,
        kafka,
        pypi_url=pypi_url,
        npm_replicate_url=npm_replicate_url,
        npm_registry_url=npm_registry_url,
    )
    options = FeedOptions(npm_since=npm_since, pypi_new_projects=pypi_new_projects)
    source = build_feed(settings, registry.value, options)
    store = CursorStore.for_registry(settings.data_dir, registry.value)
    server = serve_metrics(metrics_host, metrics_port) if metrics_port is not None else None
    try:
        stats = asyncio.run(
            _run(source, store, settings.kafka_bootstrap, settings.topic_input, interval, once, limit)
        )
    except TypostreamError:
        raise  # one line, exit 2: the CLI's error path (cli/app.py)
    except Exception as exc:
        raise fail(error_line(exc)) from exc
    finally:
        if server is not None:
            server.shutdown()
            server.server_close()
    typer.echo(
        f"{registry.value}: sent {stats.sent} event(s) to {settings.topic_input} in {stats.polls} poll(s); "
        f"cursor saved to {store.path}"
    )


async def _run(
    source: FeedSource,
    store: CursorStore,
    bootstrap: str,
    topic: str,
    interval: float,
    once: bool,
    limit: int,
) -> FeedStats:
    from aiokafka import AIOKafkaProducer

    from typostream.agents.adapters.feeds import run_feed

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5, acks="all")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)

    async def send(values: Sequence[bytes]) -> None:
        futures = [await producer.send(topic, value=value, key=None) for value in values]
        for future in futures:
            await future

    def status(stats: FeedStats) -> None:
        cursor = (
            ", ".join(
                f"{k}=<{len(v)}>" if isinstance(v, dict | list) else f"{k}={v}"
                for k, v in stats.cursor.items()
            )
            or "-"
        )
        backlog = "?" if stats.backlog is None else str(stats.backlog)
        line = (
            f"[bold]{stats.registry}[/] {time.strftime('%H:%M:%S')} polls={stats.polls} sent={stats.sent} "
            f"dup={stats.duplicates} skipped={stats.skipped} errors={stats.errors} lag={stats.lag_s:.0f}s "
            f"backlog={backlog} cursor({escape(cursor)})"
        )
        if stats.last_error:
            line += f" [red]{escape(stats.last_error)}[/]"
        for note in stats.notes:
            line += f" [yellow]{escape(note)}[/]"
        console.print(line, highlight=False, markup=True, soft_wrap=True)

    try:
        try:
            await producer.start()
        except Exception as exc:
            await producer.stop()
            raise BrokerUnavailableError(f"cannot produce to {bootstrap}: {exc}") from exc
        mark_ready("kafka")  # /readyz
        return await run_feed(source, send, store, interval, once, limit, on_status=status, stop=stop)
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        await producer.stop()
        await source.close()
