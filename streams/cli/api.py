"""Command: ``api`` — the scan HTTP API on its own, without Kafka or a worker.

``typostream api [--host 127.0.0.1] [--port 6066]`` serves, on one aiohttp server:

- ``POST /api/v1/scan``: the worker's endpoint (:mod:`typostream.streams.web.scan`, same bodies,
  same answers, same :class:`~typostream.agents.domain.assess.Assessor` built from the same
  settings: popular indexes of every registry, watchlist/allowlist, advisories);
- ``GET /healthz``, ``GET /readyz`` (ready once listening, until it starts stopping) and
  ``GET /metrics`` (the request counters and duration histogram of every request), without token.

The worker's limits (:mod:`typostream.streams.web.server`: head/body/idle timeouts, 1 MiB bodies)
and guard apply: ``Authorization: Bearer <TYPOSTREAM_API_TOKEN>`` when a token is set and a loopback
``Host`` while bound to a loopback address; binding another address without a token is refused.
Host and port default to ``TYPOSTREAM_WEB_HOST``/``TYPOSTREAM_WEB_PORT`` (127.0.0.1:6066); ``--port 0``
takes any free port. Once listening it prints ``scan API on http://HOST:PORT`` on stderr.
SIGTERM or Ctrl-C stops it (in-flight requests are answered first).
"""

from __future__ import annotations

import asyncio
import gc
import signal
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

from typostream.agents.domain.errors import ConfigError
from typostream.streams.cli.app import command
from typostream.streams.cli.options import DataDir, load_settings
from typostream.streams.config import Settings

if TYPE_CHECKING:
    from aiohttp import web

    from typostream.agents.domain.assess import Assessor

__all__ = ["api", "build_api", "check_bind", "serve"]

console = Console(stderr=True)
READY_CHECK = "api"


def check_bind(settings: Settings) -> None:
    """Refuse (ConfigError) an API open to the network: a non-loopback address without a token."""
    from typostream.streams.web.common import is_loopback

    if not settings.api_token and not is_loopback(settings.web_host):
        raise ConfigError(
            f"--host {settings.web_host!r} is not a loopback address: set TYPOSTREAM_API_TOKEN"
            " (clients send 'Authorization: Bearer <token>'), or bind 127.0.0.1"
        )


def build_api(settings: Settings, assessor: Assessor) -> web.Application:
    """The aiohttp application: scan, health, readiness and metrics, with the worker's limits,
    request metrics and API guard (:mod:`typostream.streams.web`)."""
    from aiohttp import web

    from typostream.agents.adapters import metrics
    from typostream.streams.web import PUBLIC_PATHS
    from typostream.streams.web import metrics as metrics_endpoint
    from typostream.streams.web import scan as scan_endpoint
    from typostream.streams.web.common import api_guard, request_metrics
    from typostream.streams.web.health import health_body, readiness_body
    from typostream.streams.web.server import web_application_options

    check_bind(settings)
    options = web_application_options(settings)
    middlewares = [
        request_metrics(),  # outermost: times the limits and the guard, like the worker's
        *options.pop("middlewares"),
        api_guard(settings.api_token, settings.web_host, PUBLIC_PATHS),
    ]
    app = web.Application(middlewares=middlewares, **options)
    for source in getattr(assessor.known, "sources", ()):  # the on-disk index's age and size gauges
        metrics.watch_advisory_index(source)

    async def healthz(request: web.Request) -> web.Response:
        return web.json_response(health_body())

    async def readyz(request: web.Request) -> web.Response:
        status, body = readiness_body()
        return web.json_response(body, status=status)

    async def scrape(request: web.Request) -> web.Response:
        body, content_type = metrics_endpoint.exposition(request.headers.get("Accept"))
        return web.Response(body=body, headers={"Content-Type": content_type})

    app.router.add_post("/api/v1/scan", scan_endpoint.handler(assessor, settings.scan_default_registry))
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", scrape)
    return app


async def serve(app: web.Application, host: str, port: int, stop: asyncio.Event) -> None:
    """Serve ``app`` on ``host:port`` until ``stop`` is set; ready (``/readyz``) while listening."""
    from aiohttp import web

    from typostream.agents.adapters.metrics import READINESS

    READINESS.set(READY_CHECK, False)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        try:
            await site.start()
        except OSError as exc:
            raise ConfigError(f"--port {port}: cannot listen on {host}: {exc.strerror or exc}") from exc
        bound_host, bound_port = runner.addresses[0][:2]
        shown = f"[{bound_host}]" if ":" in bound_host else bound_host
        READINESS.set(READY_CHECK, True)
        console.print(f"scan API on http://{shown}:{bound_port}", highlight=False)
        await stop.wait()
    finally:
        READINESS.set(READY_CHECK, False)
        await runner.cleanup()


def _build_assessor(settings: Settings) -> Assessor:
    """Every registry's index read now (not on the first request), then frozen out of the GC: the
    indexes live as long as the process, and a full collection walking them is a long pause."""
    from typostream.streams.components import build_assessor, build_detector

    assessor = build_assessor(settings, build_detector(settings))
    gc.collect()
    gc.freeze()
    return assessor


async def _main(settings: Settings, assessor: Assessor) -> None:
    app = build_api(settings, assessor)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await serve(app, settings.web_host, settings.web_port, stop)


@command()
def api(
    host: Annotated[
        str | None, typer.Option("--host", help="Address to bind (env TYPOSTREAM_WEB_HOST; 127.0.0.1).")
    ] = None,
    port: Annotated[
        int | None,
        typer.Option("--port", min=0, max=65535, help="Port (env TYPOSTREAM_WEB_PORT; 6066; 0: any free)."),
    ] = None,
    data_dir: DataDir = None,
) -> None:
    """Serve the scan HTTP API (POST /api/v1/scan, /healthz, /readyz, /metrics) without Kafka."""
    flags: dict[str, Any] = {"web_host": host, "web_port": port}
    overrides = {k: v for k, v in flags.items() if v is not None}
    settings = load_settings(data_dir=data_dir, **overrides)
    check_bind(settings)  # before spending seconds on the indexes
    assessor = _build_assessor(settings)
    asyncio.run(_main(settings, assessor))
