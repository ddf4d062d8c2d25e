"""``GET /api/v1/stats`` (pipeline counters, analytics row counts) and ``GET /api/v1/package``."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from faust import web

from typostream.agents.adapters import metrics
from typostream.agents.domain.events import package_key
from typostream.agents.domain.vocabulary import REGISTRIES

if TYPE_CHECKING:
    from typostream.streams.app import WorkerApp


def _counter_total(counter: Any) -> float:
    return sum(s.value for m in counter.collect() for s in m.samples if s.name.endswith("_total"))


def register(worker: WorkerApp) -> None:
    app, analytics = worker.app, worker.analytics

    @app.page("/api/v1/stats")
    class Stats(web.View):
        async def get(self, request: web.Request) -> web.Response:
            events = threats = None
            if analytics is not None:
                events, threats = await asyncio.to_thread(
                    lambda: (analytics.count_events(), analytics.count_threats())
                )
            return self.json(
                {
                    "validated": _counter_total(metrics.EVENTS_VALIDATED),
                    "rejected": _counter_total(metrics.EVENTS_REJECTED),
                    "analysed": _counter_total(metrics.EVENTS_ANALYSED),
                    "threats_emitted": _counter_total(metrics.THREATS_EMITTED),
                    "clickhouse_events": events,
                    "clickhouse_threats": threats,
                }
            )

    @app.page("/api/v1/package")
    class Package(web.View):
        async def get(self, request: web.Request) -> web.Response:
            registry, name = request.query.get("registry"), request.query.get("name")
            if registry not in REGISTRIES or not name:
                return self.error(
                    400, f"query parameters 'registry' ({'|'.join(REGISTRIES)}) and 'name' are required"
                )
            state = worker.tables.packages.get(package_key(registry, name))
            if state is None:
                return self.error(404, f"{registry} package {name!r} not seen")
            return self.json(state)
