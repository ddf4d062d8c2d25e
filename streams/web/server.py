"""Limits of the worker's HTTP server (Faust's web driver is aiohttp) against slow or big clients.

Faust hands ``web_application_options`` to ``aiohttp.web.Application``; that is the one way in,
so everything here is an Application option (``faust_app`` in ``streams/app.py`` passes
:func:`web_application_options`). With ``web_client_timeout_s`` = *T* (default 10 s):

* **Request head** (request line + headers): must be complete within *T* of connecting, or of the
  previous response on a keep-alive connection; a client trickling headers (slowloris) or sending
  nothing is disconnected then. This is aiohttp's ``keepalive_timeout`` (a server ``handler_args``
  option): aiohttp (>= 3.14.5, the floor in pyproject; earlier releases only armed it after a
  first response) arms it when the connection is made and closes the connection if no complete
  request head is waiting when it fires. Its default is 3630 s, i.e. never in practice.
* **Idle keep-alive**: the same ``keepalive_timeout`` closes a connection idle for *T* after a
  response.
* **Request body**: read by :func:`body_deadline` before the handler runs, within *T*; otherwise
  the answer is ``408 Request Timeout`` and the connection is closed (aiohttp has no body read
  timeout of its own; a handler awaiting ``request.read()`` would wait for ever). Handlers then
  get the body from ``request.read()``/``request.json()``, which return the bytes already read;
  reading ``request.content`` directly would find it drained (no endpoint here does).
* **Body size**: at most :data:`CLIENT_MAX_SIZE` (1 MiB, aiohttp's ``client_max_size``), else 413.
* After an early answer (408, 413, 401 before the body), aiohttp reads and drops what the client
  still sends for at most :data:`LINGERING_S` (``lingering_time``, default 10 s) before closing.
* Head sizes keep aiohttp's defaults: request line and each header at most 8190 bytes, at most
  128 headers (400 beyond).

Not covered: a client that stops *reading* a large response holds its connection until the
kernel's TCP timeouts; responses here are small except ``/api/v1/query`` (bounded by
``query_max_rows``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, Final

from aiohttp import web

from typostream.streams.config import Settings

__all__ = ["CLIENT_MAX_SIZE", "LINGERING_S", "body_deadline", "web_application_options"]

CLIENT_MAX_SIZE: Final = 1024 * 1024
LINGERING_S: Final = 2.0

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def body_deadline(seconds: float) -> Any:
    """Middleware: read the whole request body within ``seconds`` or answer 408 and close."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.body_exists:
            try:
                async with asyncio.timeout(seconds):
                    await request.read()  # cached: the handler's read() gets these bytes
            except TimeoutError:
                response = web.json_response(
                    {"error": f"request body not received within {seconds:g} s"}, status=408
                )
                response.force_close()
                return response
        return await handler(request)

    return middleware


def web_application_options(settings: Settings) -> dict[str, Any]:
    """``faust.App(web_application_options=...)``: the limits above for ``settings``."""
    limit = settings.web_client_timeout_s
    return {
        "client_max_size": CLIENT_MAX_SIZE,
        "middlewares": [body_deadline(limit)],
        "handler_args": {"keepalive_timeout": limit, "lingering_time": min(LINGERING_S, limit)},
    }
