"""Options shared by several commands, and how a command turns them into Settings."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

from typostream.agents.domain.errors import ConfigError
from typostream.agents.domain.vocabulary import SEVERITIES
from typostream.streams.config import Settings
from typostream.streams.reports import REPORTERS

if TYPE_CHECKING:
    from wsgiref.simple_server import WSGIServer
    from wsgiref.types import StartResponse, WSGIEnvironment

console = Console(stderr=True)

# choices of the commands that report findings (scan, guard), from the registries: a new output
# format or severity needs no edit here
OutputFormat = StrEnum("OutputFormat", {fmt: fmt for fmt in REPORTERS})  # type: ignore[misc]
"""``--format``: the ids of :data:`~typostream.streams.reports.REPORTERS`, in their order."""
FailOn = StrEnum("FailOn", {severity: severity for severity in SEVERITIES})  # type: ignore[misc]
"""``--fail-on``: the severities of the vocabulary, lowest first."""

# name lists of the commands that assess packages (scan, guard); they override the settings'
# TYPOSTREAM_WATCHLIST_FILE / TYPOSTREAM_ALLOWLIST_FILE
Watchlist = Annotated[
    Path | None,
    typer.Option(
        "--watchlist",
        help="Own/internal names to protect (one per line). Default: $TYPOSTREAM_WATCHLIST_FILE.",
    ),
]
Allowlist = Annotated[
    Path | None,
    typer.Option(
        "--allowlist", help="Names never to flag (one per line). Default: $TYPOSTREAM_ALLOWLIST_FILE."
    ),
]

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
    typer.Option("--metrics-port", min=0, max=65535, help="Serve /metrics on this port (0: any free)."),
]
MetricsHost = Annotated[
    str, typer.Option("--metrics-host", help="Address /metrics binds to (default loopback only).")
]


def mark_ready(check: str = "kafka") -> None:
    """This process passed ``check`` (``/readyz`` of ``serve_metrics`` answers 200 once every check did)."""
    from typostream.agents.adapters.metrics import READINESS

    READINESS.set(check, True)


def metrics_app() -> Callable[[WSGIEnvironment, StartResponse], Iterable[bytes]]:
    """WSGI app: ``/metrics`` (prometheus_client's, negotiated format with its version parameter),
    ``/healthz`` (alive), ``/readyz`` (200 once every readiness check passed, else 503); 404 else."""
    import orjson
    from prometheus_client import make_wsgi_app

    from typostream.agents.adapters.metrics import READINESS, health_body

    prometheus = make_wsgi_app()

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == "/metrics":
            return prometheus(environ, start_response)
        if path == "/healthz":
            status, body = "200 OK", health_body()
        elif path == "/readyz":
            ready, checks = READINESS.ready()
            status = "200 OK" if ready else "503 Service Unavailable"
            body = {"ready": ready, "checks": checks}
        else:
            status, body = "404 Not Found", {"error": f"no such path {path!r}: /metrics, /healthz, /readyz"}
        payload = orjson.dumps(body)
        start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(payload)))])
        return [payload]

    return app


def serve_metrics(host: str, port: int, checks: Iterable[str] = ("kafka",)) -> WSGIServer:
    """``/metrics``, ``/healthz`` and ``/readyz`` on ``host:port`` (a daemon thread); prints the address.

    ``checks`` start failing (not ready, ``typostream_ready{check}`` 0) until :func:`mark_ready`.
    """
    from typostream.agents.adapters.metrics import READINESS

    known = READINESS.checks()
    for check in checks:
        if check not in known:
            READINESS.set(check, False)
    import socket
    from socketserver import ThreadingMixIn
    from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

    class Server(ThreadingMixIn, WSGIServer):
        daemon_threads = True

    class QuietHandler(WSGIRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # no access log on stderr
            return None

    try:
        info = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        Server.address_family = info[0][0]
        server = make_server(str(info[0][4][0]), port, metrics_app(), Server, handler_class=QuietHandler)
    except OSError as exc:
        raise ConfigError(f"--metrics-port {port}: cannot listen on {host}: {exc.strerror or exc}") from exc
    threading.Thread(target=server.serve_forever, name="metrics-server", daemon=True).start()
    bound_host, bound_port = server.server_address[:2]
    shown = bound_host.decode() if isinstance(bound_host, bytes) else bound_host
    console.print(f"metrics on http://{shown}:{bound_port}/metrics", highlight=False)
    return server
