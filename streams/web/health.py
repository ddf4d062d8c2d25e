"""``GET /healthz`` (the process is alive and serving) and ``GET /readyz`` (ready to work).

Both need no token (probes and load balancers send none), like ``/metrics``. The worker is ready
once Faust is running — table recovery done and the agents started (Faust starts its web server and
app tasks only after that) — and its sinks are open, until it starts stopping. Sinks are opened
(their schema ensured) by ``prepare_worker`` before Faust starts; ``/readyz`` then checks that no
sink's ClickHouse connection has been closed since (shutdown closes them).

``/readyz`` answers 200 ``{"ready": true, "checks": {...}}`` or 503 with the failing checks set to
false; the same checks are the ``typostream_ready{check}`` gauge. ``feed`` and ``alerts run`` serve
the same two paths next to their ``/metrics`` (``streams/cli/options.py``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from faust import web

from typostream.agents.adapters.metrics import READINESS, health_body

if TYPE_CHECKING:
    from typostream.streams.app import WorkerApp

__all__ = ["PUBLIC_PATHS", "health_body", "readiness_body", "register"]

PUBLIC_PATHS = frozenset({"/healthz", "/readyz"})


def readiness_body() -> tuple[int, dict[str, Any]]:
    """(HTTP status, body) of ``/readyz``."""
    ready, checks = READINESS.ready()
    return (200 if ready else 503), {"ready": ready, "checks": checks}


def _sinks_open(worker: WorkerApp) -> bool:
    for sink in worker.sinks:
        connection = getattr(sink, "connection", None)
        if connection is not None and getattr(connection, "closed", False):
            return False
    return True


def register(worker: WorkerApp) -> None:
    app = worker.app
    started = {"faust": False}

    @app.task
    async def mark_started() -> None:  # app tasks start once table recovery has completed
        started["faust"] = True

    def faust_running() -> bool:
        return started["faust"] and not app.should_stop and not app.crashed

    READINESS.add_check("faust", faust_running)
    READINESS.add_check("sinks", lambda: faust_running() and _sinks_open(worker))

    @app.page("/healthz")
    class Health(web.View):
        async def get(self, request: web.Request) -> web.Response:
            return self.json(health_body())

    @app.page("/readyz")
    class Ready(web.View):
        async def get(self, request: web.Request) -> web.Response:
            status, body = readiness_body()
            return self.json(body, status=status)
