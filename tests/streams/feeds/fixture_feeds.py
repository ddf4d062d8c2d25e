"""A local npm replica + npm registry + PyPI on 127.0.0.1 for the poller tests.

The bodies are written by hand in the shapes the real services answer (PyPI ``/rss/updates.xml``
items as served by pypi.org; npm ``_changes`` rows and packument ``time``/``versions`` objects as
documented by npm and consumed by OpenSSF package-feeds); they are not recordings. Routes match
the raw request path (``%2F`` lowercased), so tests check the exact URLs the client builds.

- ``/_changes?since=now``: no rows, ``last_seq`` 0; ``since=0``: :data:`CHANGES` (``last_seq``
  :data:`LAST_SEQ`, an opaque string); ``since=<LAST_SEQ>``: no rows
- ``/left-pad`` (1.3.0 new), ``/@acme%2fwidgets`` (1.0.0 + 1.0.1 new), ``/flaky`` (500 once, then
  2.0.0 new), ``/deprecated-only`` (metadata change only), ``/unpub`` (``time.unpublished``):
  packuments; ``/vanished``: 404; ``/gone-pkg`` must never be asked for (deleted in the feed)
- ``/rss/updates.xml``, ``/rss/packages.xml``, ``/pypi/brand-new/json``: PyPI
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from aiohttp import web

HITS: web.AppKey[Counter[str]] = web.AppKey("hits", Counter)
AGENTS: web.AppKey[list[str]] = web.AppKey("agents", list)

LAST_SEQ = "7-g1AAAAB7eJzLYWBgYMpgTmHgz8tPSTV0"
CHANGES: dict[str, Any] = {
    "results": [
        {"seq": 1, "id": "left-pad", "changes": [{"rev": "12-a1"}]},
        {"seq": 2, "id": "@acme/widgets", "changes": [{"rev": "3-b2"}]},
        {"seq": 3, "id": "gone-pkg", "changes": [{"rev": "4-c3"}], "deleted": True},
        {"seq": 4, "id": "vanished", "changes": [{"rev": "2-d4"}]},
        {"seq": 5, "id": "flaky", "changes": [{"rev": "9-e5"}]},
        {"seq": 6, "id": "deprecated-only", "changes": [{"rev": "30-f6"}]},
        {"seq": 7, "id": "unpub", "changes": [{"rev": "5-a7"}]},
    ],
    "last_seq": LAST_SEQ,
}


def packument(name: str, times: dict[str, str], modified: str, **extra: Any) -> dict[str, Any]:
    versions = {v: {"name": name, "version": v} for v in times}
    latest = max(times, key=lambda v: times[v])
    return {
        "_id": name,
        "name": name,
        "dist-tags": {"latest": latest},
        "versions": versions,
        "time": {"created": min(times.values()), "modified": modified, **times},
        **extra,
    }


PACKUMENTS: dict[str, dict[str, Any]] = {
    "/left-pad": packument(
        "left-pad",
        {"1.2.0": "2018-04-09T01:27:35.520Z", "1.3.0": "2026-11-02T14:00:01.100Z"},
        "2026-11-02T14:00:01.400Z",
    ),
    "/@acme%2fwidgets": packument(
        "@acme/widgets",
        {"1.0.0": "2026-11-02T14:00:02.000Z", "1.0.1": "2026-11-02T14:00:03.000Z"},
        "2026-11-02T14:00:03.200Z",
    ),
    "/flaky": packument(
        "flaky",
        {"1.0.0": "2025-01-01T00:00:00.000Z", "2.0.0": "2026-11-02T14:00:04.000Z"},
        "2026-11-02T14:00:04.010Z",
    ),
    "/deprecated-only": packument(
        "deprecated-only", {"0.9.0": "2024-03-01T10:00:00.000Z"}, "2026-11-02T14:00:05.000Z"
    ),
    "/unpub": {
        "_id": "unpub",
        "name": "unpub",
        "time": {
            "created": "2026-11-01T10:00:00.000Z",
            "modified": "2026-11-02T14:00:06.000Z",
            "1.0.0": "2026-11-01T10:00:00.000Z",
            "unpublished": {"time": "2026-11-02T14:00:06.000Z", "versions": ["1.0.0"]},
        },
    },
}

NPM_EXPECTED = {
    ("left-pad", "1.3.0", "2026-11-02T14:00:01.100Z"),
    ("@acme/widgets", "1.0.0", "2026-11-02T14:00:02.000Z"),
    ("@acme/widgets", "1.0.1", "2026-11-02T14:00:03.000Z"),
    ("flaky", "2.0.0", "2026-11-02T14:00:04.000Z"),
}

UPDATES_XML = b"""<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0">
  <channel>
    <title>PyPI recent updates</title>
    <link>https://pypi.org/</link>
    <description>Recent updates to the Python Package Index</description>
    <language>en</language>
    <item>
      <title>Flask-Login 0.7.0</title>
      <link>https://pypi.org/project/flask-login/0.7.0/</link>
      <description>User authentication and session management for Flask.</description>
      <author>max@example.org</author>
      <pubDate>Mon, 02 Nov 2026 14:00:09 GMT</pubDate>
    </item>
    <item>
      <title>reqeusts 2.31.0</title>
      <link>https://pypi.org/project/reqeusts/2.31.0/</link>
      <description>None</description>
      <pubDate>Mon, 02 Nov 2026 14:00:08 GMT</pubDate>
    </item>
    <item>
      <title>no-date 1.0</title>
      <link>https://pypi.org/project/no-date/1.0/</link>
    </item>
    <item>
      <title>numpy 2.3.0rc1</title>
      <link>https://pypi.org/project/numpy/2.3.0rc1/</link>
      <description>Fundamental package for array computing in Python</description>
      <pubDate>Mon, 02 Nov 2026 13:59:58 GMT</pubDate>
    </item>
  </channel>
</rss>
"""

PYPI_EXPECTED = {
    ("Flask-Login", "0.7.0", "2026-11-02T14:00:09.000Z"),
    ("reqeusts", "2.31.0", "2026-11-02T14:00:08.000Z"),
    ("numpy", "2.3.0rc1", "2026-11-02T13:59:58.000Z"),
}

PACKAGES_XML = b"""<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0">
  <channel>
    <title>PyPI newest packages</title>
    <link>https://pypi.org/</link>
    <description>Newest packages registered at the Python Package Index</description>
    <language>en</language>
    <item>
      <title>brand-new added to PyPI</title>
      <link>https://pypi.org/project/brand-new/</link>
      <description>A new project</description>
      <pubDate>Mon, 02 Nov 2026 14:00:07 GMT</pubDate>
    </item>
    <item>
      <title>reqeusts added to PyPI</title>
      <link>https://pypi.org/project/reqeusts/</link>
      <pubDate>Mon, 02 Nov 2026 14:00:08 GMT</pubDate>
    </item>
  </channel>
</rss>
"""

BRAND_NEW_JSON = {
    "info": {"name": "brand-new", "version": "0.0.1", "summary": "A new project"},
    "urls": [{"filename": "brand_new-0.0.1.tar.gz", "upload_time_iso_8601": "2026-11-02T14:00:07.123456Z"}],
}


def make_app() -> web.Application:
    hits: Counter[str] = Counter()
    agents: list[str] = []

    async def handle(request: web.Request) -> web.StreamResponse:
        path = request.raw_path.split("?")[0].replace("%2F", "%2f")
        hits[path] += 1
        agents.append(request.headers.get("User-Agent", ""))
        if path == "/_changes":
            since = request.query.get("since")
            if since == "0":
                return web.json_response(CHANGES)
            return web.json_response({"results": [], "last_seq": LAST_SEQ if since == LAST_SEQ else 0})
        if path == "/flaky" and hits[path] == 1:
            return web.Response(status=500, text="Internal Server Error")
        if path in PACKUMENTS:
            return web.json_response(PACKUMENTS[path])
        if path == "/rss/updates.xml":
            return web.Response(body=UPDATES_XML, content_type="application/rss+xml")
        if path == "/rss/packages.xml":
            return web.Response(body=PACKAGES_XML, content_type="application/rss+xml")
        if path == "/pypi/brand-new/json":
            return web.json_response(BRAND_NEW_JSON)
        return web.json_response({"error": "Not found"}, status=404)

    app = web.Application()
    app[HITS] = hits
    app[AGENTS] = agents
    app.router.add_route("GET", "/{tail:.*}", handle)
    return app
