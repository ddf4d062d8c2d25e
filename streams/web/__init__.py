"""HTTP endpoints served by the worker (bound to 127.0.0.1 by default), one module per concern.

- ``GET  /metrics``        Prometheus exposition                                   (``metrics``)
- ``POST /api/v1/scan``    ``{"registry": "npm", "names": ["expresss"]}`` → results (``scan``)
- ``GET  /api/v1/stats``   pipeline counters and analytics row counts              (``state``)
- ``GET  /api/v1/package?registry=npm&name=x``  the package's table state          (``state``)
- ``POST /api/v1/query``   read-only ad hoc analytics SQL                          (``query``)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from typostream.streams.web import metrics, query, scan, state

if TYPE_CHECKING:
    from typostream.streams.app import WorkerApp

ENDPOINTS = (metrics, scan, state, query)


def register(worker: WorkerApp) -> None:
    for endpoint in ENDPOINTS:
        endpoint.register(worker)
