"""``GET /report``: the analytics report page (``agents/domain/report.py``), built from the views.

Query parameters: ``hours`` (the window, default 168, 1..8784) and ``top`` (rows in the rankings,
default 10, 1..100); anything else is a 400. The page is self-contained (inline SVG, no script) and
is served with a Content-Security-Policy that lets it load nothing. Like every path but ``/metrics``
it is behind the API guard: with ``TYPOSTREAM_API_TOKEN`` set a browser cannot send the token, so
fetch it with ``typostream report --api URL`` (which does). Reads run on the query client (their own
session) in a thread of their own, one report at a time and at most :data:`MAX_QUEUED_REPORTS` waiting
(429 beyond), so neither a slow report nor a burst of requests takes the threads or the lock that
ingestion and ``/api/v1/stats`` use.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from faust import web

from typostream.agents.domain.errors import StoreError
from typostream.agents.domain.report import MAX_HOURS, MAX_TOP, render_report
from typostream.streams.web.common import BadRequest

if TYPE_CHECKING:
    from typostream.streams.app import WorkerApp

CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'"
DEFAULT_HOURS = 168
DEFAULT_TOP = 10
MAX_QUEUED_REPORTS = 2  # running + waiting; more are refused with 429
log = logging.getLogger(__name__)


def register(worker: WorkerApp) -> None:
    app, analytics = worker.app, worker.analytics
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="typostream-report")
    in_flight = 0

    @app.page("/report")
    class Report(web.View):
        async def get(self, request: web.Request) -> web.Response:
            nonlocal in_flight
            try:
                unknown = sorted(set(request.query) - {"hours", "top"})
                if unknown:
                    raise BadRequest(f"unknown query parameter {unknown[0]!r}; expected hours, top")
                hours = _int_param(request, "hours", DEFAULT_HOURS, MAX_HOURS)
                top = _int_param(request, "top", DEFAULT_TOP, MAX_TOP)
            except BadRequest as exc:
                return self.error(400, str(exc))
            if analytics is None:
                return self.error(404, "no analytics store is configured (TYPOSTREAM_SINKS)")
            if in_flight >= MAX_QUEUED_REPORTS:
                return self.error(429, f"{in_flight} reports are already being built; retry later")
            in_flight += 1
            try:
                loop = asyncio.get_running_loop()
                data = await loop.run_in_executor(executor, analytics.report_data, hours, top)
            except StoreError as exc:
                log.warning("report failed in the store: %s", exc)
                return self.error(503, str(exc))
            finally:
                in_flight -= 1
            headers = {
                "Content-Security-Policy": CSP,
                "X-Content-Type-Options": "nosniff",
                "Cache-Control": "no-store",
            }
            return self.html(render_report(data), headers=headers)


def _int_param(request: web.Request, name: str, default: int, maximum: int) -> int:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 6) or not 1 <= int(raw) <= maximum:
        raise BadRequest(f"query parameter {name!r} must be a whole number 1..{maximum}, got {raw[:40]!r}")
    return int(raw)
