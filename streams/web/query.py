"""``POST /api/v1/query``: ``{"sql": "SELECT ..."}`` read-only ad hoc analytics (chDB is locked by the
worker process, so analysts query through it)."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import orjson
from faust import web

from typostream.streams.web.common import BadRequest, json_body

if TYPE_CHECKING:
    from typostream.streams.app import WorkerApp


def register(worker: WorkerApp) -> None:
    app, analytics = worker.app, worker.analytics

    @app.page("/api/v1/query")
    class Query(web.View):
        async def post(self, request: web.Request) -> web.Response:
            try:
                body = await json_body(request)
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
