"""``GET /metrics``: Prometheus exposition of the default registry.

The format is negotiated like prometheus_client's own server does (``choose_encoder``): the text
format 0.0.4 by default (``text/plain; version=0.0.4; charset=utf-8``), 1.0.0 or OpenMetrics when
the scraper's ``Accept`` asks for them (Prometheus 3 does), always with the version parameter.

Also registers the worker's advisory index with the scrape-time gauges (age, size).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from faust import web
from prometheus_client import REGISTRY
from prometheus_client.exposition import choose_encoder

from typostream.agents.adapters import metrics

if TYPE_CHECKING:
    from typostream.streams.app import WorkerApp


def exposition(accept: str | None) -> tuple[bytes, str]:
    """(body, content type) for a scrape with this ``Accept`` header."""
    encoder, content_type = choose_encoder(accept or "")
    return encoder(REGISTRY), content_type


def register(worker: WorkerApp) -> None:
    app = worker.app
    for source in getattr(worker.assessor.known, "sources", ()):  # the on-disk index (LiveAdvisoryIndex)
        metrics.watch_advisory_index(source)

    @app.page("/metrics")
    class Metrics(web.View):
        async def get(self, request: web.Request) -> web.Response:
            body, content_type = exposition(request.headers.get("Accept"))
            # As a header: aiohttp's content_type argument refuses parameters (version, charset).
            return self.bytes(body, headers={"Content-Type": content_type})
