"""A local npm + PyPI registry for tests: serves fixture JSON on 127.0.0.1 with scripted failures.

Routes are matched on the raw request path (percent escapes lowercased), so tests check the exact
URLs the client builds. Both registries share one server: npm paths at the root, PyPI under
``/pypi/``. ``hits`` counts requests per path.

- ``/left-pad/1.3.0``, ``/@acme%2fwidgets/1.0.0``, ``/crossenv/6.1.1``, ``/pypi/requests/2.31.0/json``: 200
- ``/@legacy%2fpkg/<v>``: 401 with the historical ``npm-notice`` header; ``/@legacy%2fpkg``: packument
- ``/does-not-exist/1.0.0``, ``/pypi/nope/1.0/json``: 404 (npm / PyPI error bodies)
- ``/flaky/1.0.0``: 500 on the first request, then 200
- ``/slow/1.0.0``: answers after ``SLOW_SECONDS`` (for client timeouts)
- ``/down/1.0.0``: always 503; ``/forbidden/1.0.0``: 403; ``/garbage/1.0.0``: 200 with an HTML body

:func:`registry_app` is the routing of every fixture registry (the context one,
``tests/agents/domain/context/context_registry.py``, too): a table of 200 documents, npm's 401 for
``@legacy/pkg``'s per-version routes, scripted answers, and each registry's own 404 body.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

from aiohttp import web

FIXTURES = Path(__file__).parent / "fixtures"
SLOW_SECONDS = 2.0
HITS: web.AppKey[Counter[str]] = web.AppKey("hits", Counter)
"""``app[HITS][raw_path]``: requests seen per path."""


def _fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


Scripted = Callable[[int], Awaitable[web.StreamResponse]]
"""A path's answer, given how often the path has been requested (this request included)."""
LEGACY_SCOPED = "/@legacy%2fpkg"
"""A scoped package whose per-version routes npm refuses (401), as it did for scoped names."""


async def garbage(hits: int) -> web.StreamResponse:
    """200 with an HTML body (a proxy's error page where JSON was expected)."""
    return web.Response(status=200, text="<html>proxy error</html>", content_type="text/html")


def registry_app(
    ok: Mapping[str, Any], hits_key: web.AppKey[Counter[str]], scripted: Mapping[str, Scripted] | None = None
) -> web.Application:
    """An npm + PyPI registry app answering every GET by its raw path (``%2F`` lowercased, query
    dropped), first match wins: ``ok`` (200, the JSON document), ``LEGACY_SCOPED/<version>`` (401
    with the historical ``npm-notice`` header), ``scripted``, then 404 with PyPI's body under
    ``/pypi/``, npm's elsewhere. ``app[hits_key][path]`` counts the requests per path."""
    answers = dict(scripted or {})
    assert not ok.keys() & answers.keys(), f"paths both served and scripted: {ok.keys() & answers.keys()}"
    hits: Counter[str] = Counter()

    async def handle(request: web.Request) -> web.StreamResponse:
        path = request.raw_path.split("?")[0].replace("%2F", "%2f")
        hits[path] += 1
        if path in ok:
            return web.json_response(ok[path])
        if path.startswith(LEGACY_SCOPED + "/"):
            return web.json_response(
                {"error": "you cannot fetch versions for scoped packages"},
                status=401,
                headers={"npm-notice": "ERROR: you cannot fetch versions for scoped packages"},
            )
        if path in answers:
            return await answers[path](hits[path])
        if path.startswith("/pypi/"):
            return web.json_response({"message": "Not Found"}, status=404)
        return web.json_response({"error": "Not found"}, status=404)

    app = web.Application()
    app[hits_key] = hits
    app.router.add_route("GET", "/{tail:.*}", handle)
    return app


def make_app() -> web.Application:
    flaky_doc = {**_fixture("npm_left-pad_1.3.0.json"), "name": "flaky", "version": "1.0.0"}
    ok: dict[str, Any] = {
        "/left-pad/1.3.0": _fixture("npm_left-pad_1.3.0.json"),
        "/@acme%2fwidgets/1.0.0": _fixture("npm_scoped_1.0.0.json"),
        "/crossenv/6.1.1": _fixture("npm_evil_1.0.0.json"),
        LEGACY_SCOPED: _fixture("npm_legacy_packument.json"),
        "/pypi/requests/2.31.0/json": _fixture("pypi_requests_2.31.0.json"),
    }

    async def flaky(hits: int) -> web.StreamResponse:
        if hits == 1:
            return web.Response(status=500, text="Internal Server Error")
        return web.json_response(flaky_doc)

    async def slow(hits: int) -> web.StreamResponse:
        await asyncio.sleep(SLOW_SECONDS)
        return web.json_response(flaky_doc)

    async def down(hits: int) -> web.StreamResponse:
        return web.Response(status=503, text="Service Unavailable")

    async def forbidden(hits: int) -> web.StreamResponse:
        return web.json_response({"error": "forbidden"}, status=403)

    scripted = {"/flaky/1.0.0": flaky, "/slow/1.0.0": slow, "/down/1.0.0": down,
                "/forbidden/1.0.0": forbidden, "/garbage/1.0.0": garbage}  # fmt: skip
    return registry_app(ok, HITS, scripted)
