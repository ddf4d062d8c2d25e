"""HTTP endpoints served by the worker (bound to 127.0.0.1 by default), one module per concern.

- ``GET  /metrics``        Prometheus exposition                                   (``metrics``)
- ``POST /api/v1/scan``    ``{"registry": "npm", "names": ["expresss"]}`` → results (``scan``)
- ``GET  /api/v1/stats``   pipeline counters and analytics row counts              (``state``)
- ``GET  /api/v1/package?registry=npm&name=x``  the package's table state          (``state``)
- ``POST /api/v1/query``   read-only ad hoc analytics SQL                          (``query``)

Every path but ``/metrics`` (Prometheus scrapes it without credentials) goes through
:func:`common.api_guard`: ``Authorization: Bearer <TYPOSTREAM_API_TOKEN>`` when a token is set, and a
loopback ``Host`` header while the API binds a loopback address. Binding any other address without
a token is refused at startup (:class:`ConfigError`): the API would be open to the network.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from faust.web.drivers.aiohttp import Web as AiohttpWeb

from typostream.agents.domain.errors import ConfigError
from typostream.streams.web import metrics, query, scan, state
from typostream.streams.web.common import api_guard, is_loopback

if TYPE_CHECKING:
    from typostream.streams.app import WorkerApp

ENDPOINTS = (metrics, scan, state, query)
PUBLIC_PATHS = frozenset({"/metrics"})


def register(worker: WorkerApp) -> None:
    settings = worker.settings
    if not settings.api_token and not is_loopback(settings.web_host):
        raise ConfigError(
            f"TYPOSTREAM_WEB_HOST={settings.web_host!r} is not a loopback address: set TYPOSTREAM_API_TOKEN"
            " (clients send 'Authorization: Bearer <token>'), or bind 127.0.0.1"
        )
    driver = worker.app.web
    if not isinstance(driver, AiohttpWeb):  # the guard is an aiohttp middleware: never serve without it
        raise ConfigError(f"the HTTP API needs Faust's aiohttp web driver, not {type(driver).__name__}")
    driver.web_app.middlewares.append(api_guard(settings.api_token, settings.web_host, PUBLIC_PATHS))
    for endpoint in ENDPOINTS:
        endpoint.register(worker)
