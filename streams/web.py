"""HTTP endpoints served by the worker (bound to 127.0.0.1 by default).

- ``GET  /metrics``        Prometheus exposition
- ``POST /api/v1/scan``    ``{"registry": "npm", "names": ["expresss"]}`` → scan results
- ``GET  /api/v1/stats``   pipeline counters and ClickHouse row counts
- ``GET  /api/v1/package?registry=npm&name=x``  the package's state from the ``packages`` table
- ``POST /api/v1/query``   ``{"sql": "SELECT ..."}`` read-only ad hoc ClickHouse query (chDB is
  locked by the worker process, so analysts query through it)
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import orjson
from faust import web
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

from typostream.agents.adapters import metrics
from typostream.agents.domain.events import package_key
from typostream.agents.domain.vocabulary import REGISTRIES

if TYPE_CHECKING:
    from typostream.streams.app import WorkerApp

MAX_SCAN_NAMES = 1000


class BadRequest(ValueError):
    pass


async def _json_body(request: web.Request) -> dict[str, Any]:
    raw = await request.read()
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"request body is not JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise BadRequest("request body must be a JSON object")
    return body


def scan_request(body: dict[str, Any]) -> tuple[str, list[str]]:
    """Validate a scan request body; raises BadRequest with a message for the client."""
    registry = body.get("registry")
    if registry not in REGISTRIES:
        raise BadRequest(f"'registry' must be one of: {', '.join(REGISTRIES)}")
    names = body.get("names", [body["name"]] if "name" in body else None)
    if not isinstance(names, list) or not names or not all(isinstance(n, str) and n for n in names):
        raise BadRequest("'names' must be a non-empty list of package names (or give 'name')")
    if len(names) > MAX_SCAN_NAMES:
        raise BadRequest(f"at most {MAX_SCAN_NAMES} names per request")
    return registry, names


def _counter_total(counter: Any) -> float:
    return sum(s.value for m in counter.collect() for s in m.samples if s.name.endswith("_total"))


def register(worker: WorkerApp) -> None:
    app, assessor, analytics = worker.app, worker.assessor, worker.analytics
    packages = worker.tables.packages

    @app.page("/metrics")
    class Metrics(web.View):
        async def get(self, request: web.Request) -> web.Response:
            return self.bytes(generate_latest(REGISTRY), content_type=CONTENT_TYPE_LATEST.split(";")[0])

    @app.page("/api/v1/scan")
    class Scan(web.View):
        async def post(self, request: web.Request) -> web.Response:
            try:
                registry, names = scan_request(await _json_body(request))
            except BadRequest as exc:
                return self.error(400, str(exc))
            return self.json({"results": [assessor.assess(n, registry).to_dict() for n in names]})

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
            state = packages.get(package_key(registry, name))
            if state is None:
                return self.error(404, f"{registry} package {name!r} not seen")
            return self.json(state)

    @app.page("/api/v1/query")
    class Query(web.View):
        async def post(self, request: web.Request) -> web.Response:
            try:
                body = await _json_body(request)
                sql = body.get("sql")
                if not isinstance(sql, str) or not sql.strip():
                    raise BadRequest("'sql' must be a non-empty string")
                if analytics is None:
                    return self.error(404, "no analytics store is configured (TYPOSTREAM_SINKS)")
                columns, rows = await asyncio.to_thread(analytics.query, sql)
            except (BadRequest, ValueError) as exc:
                return self.error(400, str(exc))
            result = orjson.dumps({"columns": columns, "rows": [list(r) for r in rows]}, default=str)
            return self.bytes(result, content_type="application/json")
