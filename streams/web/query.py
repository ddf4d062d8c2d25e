"""``POST /api/v1/query``: ``{"sql": "SELECT ..."}`` read-only ad hoc analytics (chDB is locked by the
worker process, so analysts query through it).

The body must be ``application/json`` (415 otherwise). The statement goes through
:meth:`ClickHouseAnalytics.query` (ClickHouse formats it, the parser guard judges it, the engine
runs it read-only under ``Settings.query_max_*``). Answers: 200 ``{"columns", "rows"}``; 400
``{"error"}`` for a refused or failing statement (the guard's reason or ClickHouse's message) or
the time/memory limit; 413 when the result is over the row/byte limit; 429 when
:data:`MAX_QUEUED_QUERIES` are already waiting; 503 when the store fails.

Queries run one at a time on their own thread and their own ClickHouse client, so neither a long
query nor a queue of them takes the threads or the lock that ingestion and ``/api/v1/stats`` use.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

import orjson
from faust import web

from typostream.agents.domain.errors import (
    InvalidInputError,
    QueryLimitError,
    StoreError,
)
from typostream.agents.domain.sql_guard import QueryLimits
from typostream.streams.web.common import BadRequest, json_body, require_json

if TYPE_CHECKING:
    from typostream.streams.app import WorkerApp

MAX_QUEUED_QUERIES = 4  # running + waiting; more are refused with 429 instead of piling up
_TOO_LARGE = frozenset({"rows", "bytes"})
log = logging.getLogger(__name__)


def register(worker: WorkerApp) -> None:
    app, analytics, settings = worker.app, worker.analytics, worker.settings
    limits = QueryLimits(settings.query_max_seconds, settings.query_max_rows, settings.query_max_memory_bytes)
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="typostream-query")
    in_flight = 0

    @app.page("/api/v1/query")
    class Query(web.View):
        async def post(self, request: web.Request) -> web.Response:
            nonlocal in_flight
            require_json(request)
            try:
                body = await json_body(request)
                sql = body.get("sql")
                if not isinstance(sql, str) or not sql.strip():
                    raise BadRequest("'sql' must be a non-empty string")
            except BadRequest as exc:
                return self.error(400, str(exc))
            if analytics is None:
                return self.error(404, "no analytics store is configured (TYPOSTREAM_SINKS)")
            if in_flight >= MAX_QUEUED_QUERIES:
                return self.error(429, f"{in_flight} queries are already running or waiting; retry later")
            in_flight += 1
            try:
                loop = asyncio.get_running_loop()
                columns, rows = await loop.run_in_executor(executor, analytics.query, sql, limits)
            except QueryLimitError as exc:
                return self.error(413 if exc.limit in _TOO_LARGE else 400, str(exc), limit=exc.limit)
            except InvalidInputError as exc:  # the guard's refusal, or the engine's (syntax, unknown column)
                return self.error(400, str(exc))
            except StoreError as exc:
                log.warning("query failed in the store: %s", exc)
                return self.error(503, str(exc))
            finally:
                in_flight -= 1
            result = orjson.dumps(
                {"columns": columns, "rows": [list(r) for r in rows]},
                default=str,
                option=orjson.OPT_NON_STR_KEYS,
            )
            return self.bytes(result, content_type="application/json")
