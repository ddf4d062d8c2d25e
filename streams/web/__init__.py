"""HTTP endpoints served by the worker (bound to 127.0.0.1 by default), one module per concern.

- ``GET  /metrics``        Prometheus exposition                                   (``metrics``)
- ``GET  /healthz``        the process is alive; ``GET /readyz``: ready (200) or not (503) (``health``)
- ``GET  /openapi.json``   the API's OpenAPI document (``schemas/openapi.yaml``)   (``openapi``)
- ``POST /api/v1/scan``    ``{"registry": "npm", "names": ["expresss"]}`` → results (``scan``)
- ``GET  /api/v1/stats``   pipeline counters and analytics row counts              (``state``)
- ``GET  /api/v1/package?registry=npm&name=x``  the package's table state          (``state``)
- ``POST /api/v1/query``   read-only ad hoc analytics SQL                          (``query``)
- ``GET  /report``          the analytics report page (HTML, inline SVG charts)      (``report``)

Every path but ``/metrics``, ``/healthz``, ``/readyz`` and ``/openapi.json`` (scrapers and probes
send no credentials; none of them carries data) goes through
:func:`common.api_guard`: ``Authorization: Bearer <TYPOSTREAM_API_TOKEN>`` when a token is set, and a
loopback ``Host`` header while the API binds a loopback address. Binding any other address without
a token is refused at startup (:class:`ConfigError`): the API would be open to the network.
Every request, refused ones included, is counted and timed (:func:`common.request_metrics`).
"""

from __future__ import annotations

from collections.abc import Sequence
from types import ModuleType
from typing import TYPE_CHECKING

from faust.web.drivers.aiohttp import Web as AiohttpWeb

from typostream.agents.domain.errors import ConfigError
from typostream.streams.web import health, metrics, openapi, query, report, scan, state
from typostream.streams.web.common import api_guard, is_loopback, request_metrics

if TYPE_CHECKING:
    from typostream.streams.app import WorkerApp

ENDPOINTS = (metrics, health, openapi, scan, state, query, report)
PUBLIC_PATHS = frozenset({"/metrics"}) | health.PUBLIC_PATHS | openapi.PUBLIC_PATHS


def register(worker: WorkerApp, endpoints: Sequence[ModuleType] = ENDPOINTS) -> None:
    settings = worker.settings
    if not settings.api_token and not is_loopback(settings.web_host):
        raise ConfigError(
            f"TYPOSTREAM_WEB_HOST={settings.web_host!r} is not a loopback address: set TYPOSTREAM_API_TOKEN"
            " (clients send 'Authorization: Bearer <token>'), or bind 127.0.0.1"
        )
    driver = worker.app.web
    if not isinstance(driver, AiohttpWeb):  # the guard is an aiohttp middleware: never serve without it
        raise ConfigError(f"the HTTP API needs Faust's aiohttp web driver, not {type(driver).__name__}")
    driver.web_app.middlewares.insert(0, request_metrics())  # outermost: times the limits and the guard
    driver.web_app.middlewares.append(api_guard(settings.api_token, settings.web_host, PUBLIC_PATHS))
    for endpoint in endpoints:
        endpoint.register(worker)
