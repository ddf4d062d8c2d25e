"""``GET /metrics``: Prometheus exposition of the default registry."""

from __future__ import annotations

from typing import TYPE_CHECKING

from faust import web
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

if TYPE_CHECKING:
    from typostream.streams.app import WorkerApp


def register(worker: WorkerApp) -> None:
    app = worker.app

    @app.page("/metrics")
    class Metrics(web.View):
        async def get(self, request: web.Request) -> web.Response:
            return self.bytes(generate_latest(REGISTRY), content_type=CONTENT_TYPE_LATEST.split(";")[0])
