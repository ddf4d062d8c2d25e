"""Options shared by several commands, and how a command turns them into Settings."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

from typostream.agents.domain.errors import ConfigError
from typostream.streams.config import Settings

if TYPE_CHECKING:
    from wsgiref.simple_server import WSGIServer

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


MetricsPort = Annotated[
    int | None,
    typer.Option(
        "--metrics-port", min=0, max=65535, help="Serve /metrics on this port (0: any free)."
    ),
]
MetricsHost = Annotated[
    str, typer.Option("--metrics-host", help="Address /metrics binds to (default loopback only).")
]


def serve_metrics(host: str, port: int) -> WSGIServer:
    """prometheus_client's /metrics server on ``host:port`` (a daemon thread); prints the address."""
    from prometheus_client import start_http_server

    try:
        server, _ = start_http_server(port, addr=host)
    except OSError as exc:
        raise ConfigError(f"--metrics-port {port}: cannot listen on {host}: {exc.strerror or exc}") from exc
    bound_host, bound_port = server.server_address[:2]
    shown = bound_host.decode() if isinstance(bound_host, bytes) else bound_host
    console.print(f"metrics on http://{shown}:{bound_port}/metrics", highlight=False)
    return server
