"""Local npm replica + npm registry + PyPI on 127.0.0.1, answering in the shapes the real services do.

The bodies are built the way the services build them, not recorded: npm's post-2025 replication API
(``GET /`` database info with ``update_seq``; ``/_changes?since=<int>&limit=<n>`` rows of integer
``seq``, ``id``, ``changes[].rev``; no ``since=now``; a malformed ``since`` is CouchDB's 400
``bad_request``), packuments as the registry serves them (``_rev``, ``time``, ``versions``, ETag and
304 for ``If-None-Match``), PyPI's ``/rss/updates.xml`` rendered like warehouse's template (newest
100 releases, link with the normalised name) with an ETag, and PyPI's XML-RPC journal
(``changelog_last_serial``, ``changelog_since_serial``, at most :attr:`PypiState.page_size` rows, the
rate-limit fault). package-feeds' own test fixtures are included verbatim where they exist
(:data:`PACKAGE_FEEDS_UPDATES_XML`, :data:`PACKAGE_FEEDS_CHANGELOG`, :data:`PACKAGE_FEEDS_PACKUMENTS`).

State is mutable (:class:`Registries`: ``publish``, ``release``, outages, scripted answers), so
tests replay a realistic stream, an outage and a recovery against one server. Routes match the raw
request path (``%2F`` lowercased), so tests check the exact URLs the client builds. Every request is
logged in :attr:`Registries.requests`.

Default content (the static seeds below):

- npm ``_changes``: :data:`CHANGES` (``seq`` 1..7, ``update_seq`` 7); packuments ``/left-pad``
  (1.3.0 new), ``/@acme%2fwidgets`` (1.0.0 + 1.0.1 new), ``/flaky`` (500 once, then 2.0.0 new),
  ``/deprecated-only`` (metadata change only), ``/unpub`` (``time.unpublished``); ``/vanished``:
  404; ``/gone-pkg`` must never be asked for (deleted in the feed)
- PyPI: the three releases of :data:`PYPI_EXPECTED` in the journal and RSS, ``/rss/packages.xml``,
  ``/pypi/brand-new/json``
"""

from __future__ import annotations

import copy
import hashlib
import re
import time
import xmlrpc.client
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any
from xml.sax.saxutils import escape

import orjson
from aiohttp import web

# --- npm: static seeds ---------------------------------------------------------------------------
LEGACY_SEQ = "7-g1AAAAB7eJzLYWBgYMpgTmHgz8tPSTV0"
"""A pre-2025 opaque sequence: the replication API now answers 400 for it (re-initialise)."""

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
    "last_seq": 7,
}
LAST_SEQ = 7


def packument(
    name: str, times: dict[str, str], modified: str, rev: str = "1-x", **extra: Any
) -> dict[str, Any]:
    versions = {v: {"name": name, "version": v} for v in times}
    latest = max(times, key=lambda v: times[v])
    return {
        "_id": name,
        "_rev": rev,
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
        rev="12-a1",
    ),
    "/@acme%2fwidgets": packument(
        "@acme/widgets",
        {"1.0.0": "2026-11-02T14:00:02.000Z", "1.0.1": "2026-11-02T14:00:03.000Z"},
        "2026-11-02T14:00:03.200Z",
        rev="3-b2",
    ),
    "/flaky": packument(
        "flaky",
        {"1.0.0": "2025-01-01T00:00:00.000Z", "2.0.0": "2026-11-02T14:00:04.000Z"},
        "2026-11-02T14:00:04.010Z",
        rev="9-e5",
    ),
    "/deprecated-only": packument(
        "deprecated-only", {"0.9.0": "2024-03-01T10:00:00.000Z"}, "2026-11-02T14:00:05.000Z", rev="30-f6"
    ),
    "/unpub": {
        "_id": "unpub",
        "_rev": "5-a7",
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

# package-feeds pkg/feeds/npm/npm_test.go: packuments without _rev or versions, as its mocks serve them.
PACKAGE_FEEDS_PACKUMENTS: dict[str, bytes] = {
    "FooPackage": b"""
{
\t"name": "FooPackage",
\t"dist-tags": {
\t\t"latest": "1.0.1",
\t\t"release-0.9.x": "0.9.1"
\t},
\t"time": {
\t\t"created" : "2021-03-22T13:07:29.000Z",
\t\t"1.0.0": "2021-03-22T13:07:29.000Z",
\t\t"modified": "2021-05-11T18:34:12.000Z",
\t\t"0.9.1": "2021-03-23T05:17:43.000Z",
\t\t"1.0.1": "2021-05-11T18:32:01.000Z"
\t}
}
""",
    "BarPackage": b"""
{
\t"name": "BarPackage",
\t"dist-tags": {
\t\t"latest": "0.4.0",
\t\t"next": "0.5.0-alpha"
\t},
\t"time": {
\t\t"created": "2021-03-22T13:45:16.000Z",
\t\t"0.4.0": "2021-03-22T13:45:16.000Z",
\t\t"modified": "2021-05-11T17:24:14.000Z",
\t\t"0.5.0-alpha": "2021-05-11T17:23:02.000Z"
\t}
}
""",
    "BazPackage": b"""
{
\t"name": "BazPackage",
\t"dist-tags": {
\t\t"latest": "1.1"
\t},
\t"time": {
\t\t"created": "2021-05-11T14:18:32.000Z",
\t\t"1.0": "2021-05-11T14:18:32.000Z",
\t\t"modified": "2021-05-11T14:19:46.000Z",
\t\t"1.1": "2021-05-11T14:19:45.000Z"
\t}
}
""",
    "QuxPackage": b"""
{
\t"name": "QuxPackage",
\t"time": {
\t\t"created": "2021-05-10T14:38:14.000Z",
\t\t"1.0": "2021-05-10T14:38:14.000Z",
\t\t"modified": "2021-05-11T14:17:12.000Z",
\t\t"1.1": "2021-05-11T11:19:43.000Z",
\t\t"unpublished": {
\t\t\t"name": "Quxman",
\t\t\t"time": "2021-05-11T14:17:12.000Z",
\t\t\t"versions": ["1.0", "1.1"]
\t\t}
\t}
}
""",
}
PACKAGE_FEEDS_NPM_EXPECTED = {  # what package-feeds' TestNpmLatest expects of these four
    ("FooPackage", "1.0.1", "2021-05-11T18:32:01.000Z"),
    ("BarPackage", "0.5.0-alpha", "2021-05-11T17:23:02.000Z"),
    ("BazPackage", "1.0", "2021-05-11T14:18:32.000Z"),
    ("BazPackage", "1.1", "2021-05-11T14:19:45.000Z"),
}

# --- PyPI: static seeds --------------------------------------------------------------------------
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

PYPI_EXPECTED = {  # normalised names (the RSS link's), created at the second
    ("flask-login", "0.7.0", "2026-11-02T14:00:09.000Z"),
    ("reqeusts", "2.31.0", "2026-11-02T14:00:08.000Z"),
    ("numpy", "2.3.0rc1", "2026-11-02T13:59:58.000Z"),
}
PYPI_SEED: list[tuple[str, str, str]] = [  # (display name, version, created) as in UPDATES_XML
    ("numpy", "2.3.0rc1", "2026-11-02T13:59:58Z"),
    ("reqeusts", "2.31.0", "2026-11-02T14:00:08Z"),
    ("Flask-Login", "0.7.0", "2026-11-02T14:00:09Z"),
]
PYPI_SEED_SERIAL = 24_891_357  # the serial in PyPI's XML-RPC documentation example

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

# package-feeds pkg/feeds/pypi/pypi_test.go updatesXMLHandle, byte for byte (note the newline
# before the XML declaration and the display names in the links).
PACKAGE_FEEDS_UPDATES_XML = b"""
<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0">
\t<channel>
\t<title>PyPI recent updates</title>
\t<link>https://pypi.org/</link>
\t<description>Recent updates to the Python Package Index</description>
\t<language>en</language>
\t<item>
\t\t<title>FooPackage 0.0.2</title>
\t\t<link>https://pypi.org/project/FooPackage/0.0.2/</link>
\t\t<description>Python wrapper for fooing</description>
\t\t<author>fooman@bazco.org</author>
\t\t<pubDate>Fri, 19 Mar 2021 12:01:04 GMT</pubDate>
\t</item>
\t<item>
\t\t<title>BarPackage 0.7a2</title>
\t\t<link>https://pypi.org/project/BarPackage/0.7a2/</link>
\t\t<description>A package full of bars</description>
\t\t<author>barman@bazco.org</author>
\t\t<pubDate>Fri, 19 Mar 2021 12:00:39 GMT</pubDate>
\t</item>
\t</channel>
</rss>
"""

# package-feeds pkg/feeds/pypi/pypi_artifacts_test.go testAPIData: real changelog rows
# (name, version, timestamp, action); serials are appended as changelog_since_serial returns them.
PACKAGE_FEEDS_CHANGELOG: list[tuple[str, str | None, int, str]] = [
    ("supertemplater", "1.4.0", 1678414652, "new release"),
    ("supertemplater", "1.4.0", 1678414652, "add py3 file supertemplater-1.4.0-py3-none-any.whl"),
    ("supertemplater", "1.4.0", 1678414654, "add source file supertemplater-1.4.0.tar.gz"),
    ("OpenVisus", "2.2.96", 1678414663, "add cp310 file OpenVisus-2.2.96-cp310-none-macosx_10_9_x86_64.whl"),
    (
        "OpenVisusNoGui",
        "2.2.96",
        1678414694,
        "add cp310 file OpenVisusNoGui-2.2.96-cp310-none-macosx_10_9_x86_64.whl",
    ),
    ("benchling-api-client", "2.0.118", 1678414736, "new release"),
    (
        "benchling-api-client",
        "2.0.118",
        1678414736,
        "add py3 file benchling_api_client-2.0.118-py3-none-any.whl",
    ),
    ("benchling-api-client", "2.0.118", 1678414738, "add source file benchling_api_client-2.0.118.tar.gz"),
    ("adbutils", "1.2.9", 1678415159, "new release"),
    ("adbutils", "1.2.9", 1678415161, "add py3 file adbutils-1.2.9-py3-none-manylinux1_x86_64.whl"),
    ("adbutils", "1.2.9", 1678415164, "add py3 file adbutils-1.2.9-py3-none-win32.whl"),
    ("adbutils", "1.2.9", 1678415166, "add py3 file adbutils-1.2.9-py3-none-win_amd64.whl"),
    ("adbutils", "1.2.9", 1678415167, "add source file adbutils-1.2.9.tar.gz"),
    ("qiskit-qasm2", "0.5.1", 1678415182, "new release"),
    ("qiskit-qasm2", "0.5.1", 1678415182, "add source file qiskit_qasm2-0.5.1.tar.gz"),
    ("dsp-py", None, 1678415258, "remove project"),
    ("genai", "0.12.0a0", 1678415278, "new release"),
    ("genai", "0.12.0a0", 1678415278, "add py3 file genai-0.12.0a0-py3-none-any.whl"),
    ("genai", "0.12.0a0", 1678415281, "add source file genai-0.12.0a0.tar.gz"),
    ("chia-blockchain", "1.7.1rc1", 1678415319, "new release"),
    ("chia-blockchain", "1.7.1rc1", 1678415319, "add source file chia-blockchain-1.7.1rc1.tar.gz"),
    ("ScraperFC", "2.6.3", 1678415386, "new release"),
    ("ScraperFC", "2.6.3", 1678415386, "add py3 file ScraperFC-2.6.3-py3-none-any.whl"),
    ("ScraperFC", "2.6.3", 1678415389, "add source file ScraperFC-2.6.3.tar.gz"),
    ("callpyfile", None, 1678415402, "create"),
    ("callpyfile", None, 1678415402, "add Owner hansalemao"),
    ("callpyfile", "0.10", 1678415402, "new release"),
    ("callpyfile", "0.10", 1678415402, "add py3 file callpyfile-0.10-py3-none-any.whl"),
    ("callpyfile", "0.10", 1678415403, "add source file callpyfile-0.10.tar.gz"),
]
PACKAGE_FEEDS_RELEASES = {  # one event per "new release" row, names PEP 503 normalised
    ("supertemplater", "1.4.0", "2023-03-10T02:17:32.000Z"),
    ("benchling-api-client", "2.0.118", "2023-03-10T02:18:56.000Z"),
    ("adbutils", "1.2.9", "2023-03-10T02:25:59.000Z"),
    ("qiskit-qasm2", "0.5.1", "2023-03-10T02:26:22.000Z"),
    ("genai", "0.12.0a0", "2023-03-10T02:27:58.000Z"),
    ("chia-blockchain", "1.7.1rc1", "2023-03-10T02:28:39.000Z"),
    ("scraperfc", "2.6.3", "2023-03-10T02:29:46.000Z"),
    ("callpyfile", "0.10", "2023-03-10T02:30:02.000Z"),
}


# --- state --------------------------------------------------------------------------------------
def _iso(when: datetime | str) -> str:
    if isinstance(when, str):
        return when
    return when.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _stamp(when: datetime | str | int) -> int:
    if isinstance(when, int):
        return when
    if isinstance(when, str):
        when = datetime.fromisoformat(when.replace("Z", "+00:00"))
    return int(when.timestamp())


def pep503(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass
class NpmState:
    """The replica's changes feed and the registry's packuments."""

    docs: dict[str, dict[str, Any]] = field(default_factory=dict)  # raw path -> packument
    raw: dict[str, bytes] = field(default_factory=dict)  # raw path -> body served verbatim
    rows: list[dict[str, Any]] = field(default_factory=list)
    stale: Counter[str] = field(default_factory=Counter)  # raw path -> requests to answer stale
    previous: dict[str, dict[str, Any]] = field(default_factory=dict)
    etags: bool = True
    update_seq: int = 0
    db_info: bool = True  # GET / answers the database info (else CouchDB's server welcome)

    @staticmethod
    def path(name: str) -> str:
        return "/" + name.replace("/", "%2f")

    def _change(self, name: str, rev: str, deleted: bool = False) -> None:
        self.rows = [r for r in self.rows if r["id"] != name]  # CouchDB lists a document once
        self.update_seq += 1
        row: dict[str, Any] = {"seq": self.update_seq, "id": name, "changes": [{"rev": rev}]}
        if deleted:
            row["deleted"] = True
        self.rows.append(row)

    def _bump(self, name: str) -> dict[str, Any]:
        path = self.path(name)
        doc = self.docs.get(path)
        if doc is None:
            doc = {"_id": name, "_rev": "0-0", "name": name, "dist-tags": {}, "versions": {}, "time": {}}
        else:
            self.previous[path] = copy.deepcopy(doc)
        generation = int(doc["_rev"].split("-")[0]) + 1
        doc["_rev"] = f"{generation}-{hashlib.md5(f'{name}{generation}'.encode()).hexdigest()}"
        self.docs[path] = doc
        return doc

    def publish(self, name: str, version: str, when: datetime | str, *, stale_requests: int = 0) -> None:
        """``npm publish``: a new version, ``time.modified`` moves, one change row (at the end)."""
        doc = self._bump(name)
        stamp = _iso(when)
        doc["versions"][version] = {"name": name, "version": version}
        doc["time"].setdefault("created", stamp)
        doc["time"][version] = stamp
        doc["time"]["modified"] = stamp
        doc["dist-tags"]["latest"] = version
        self._change(name, doc["_rev"])
        if stale_requests:
            self.stale[self.path(name)] = stale_requests

    def touch(self, name: str, when: datetime | str) -> None:
        """A metadata-only change (deprecation, dist-tag, owners)."""
        doc = self._bump(name)
        doc["time"]["modified"] = _iso(when)
        self._change(name, doc["_rev"])

    def changes(self, since: int, limit: int) -> dict[str, Any]:
        rows = [r for r in self.rows if r["seq"] > since]
        page = rows[:limit]
        return {
            "results": page,
            "last_seq": page[-1]["seq"] if page else since,
            "pending": len(rows) - len(page),
        }


@dataclass
class PypiState:
    """PyPI's journal (the source of RSS too, as in warehouse)."""

    journal: list[tuple[str, str | None, int, str, int]] = field(default_factory=list)
    first_serial: int = PYPI_SEED_SERIAL
    page_size: int = 50_000
    rss_size: int = 100
    rss_override: bytes | None = None
    rate_limited_calls: int = 0  # next N XML-RPC calls answer the rate-limit fault
    xmlrpc_calls: Counter[str] = field(default_factory=Counter)

    @property
    def last_serial(self) -> int:
        return self.journal[-1][4] if self.journal else self.first_serial

    def entry(self, name: str, version: str | None, when: datetime | str | int, action: str) -> int:
        serial = self.last_serial + 1
        self.journal.append((name, version, _stamp(when), action, serial))
        return serial

    def release(self, name: str, version: str, when: datetime | str | int, *, files: int = 2) -> None:
        """An upload creating a release: "new release" plus its files, as forklift journals them."""
        stamp = _stamp(when)
        self.entry(name, version, stamp, "new release")
        filename = f"{pep503(name).replace('-', '_')}-{version}"
        for n in range(files):
            kind, ext = ("py3", "-py3-none-any.whl") if n == 0 else ("source", ".tar.gz")
            self.entry(name, version, stamp + n, f"add {kind} file {filename}{ext}")

    def extend(self, rows: Iterable[tuple[str, str | None, int, str]]) -> None:
        for name, version, stamp, action in rows:
            self.entry(name, version, stamp, action)

    def releases(self) -> list[tuple[str, str, int]]:
        return [(n, v, t) for n, v, t, a, _ in self.journal if a == "new release" and v]

    def updates_xml(self) -> bytes:
        if self.rss_override is not None:
            return self.rss_override
        newest = sorted(enumerate(self.releases()), key=lambda iv: (iv[1][2], iv[0]), reverse=True)
        items = []
        for _, (name, version, stamp) in newest[: self.rss_size]:
            when = format_datetime(datetime.fromtimestamp(stamp, UTC), usegmt=True)
            items.append(
                "    <item>\n"
                f"      <title>{escape(name)} {escape(version)}</title>\n"
                f"      <link>https://pypi.org/project/{escape(pep503(name))}/{escape(version)}/</link>\n"
                "      <description>None</description>\n"
                f"      <pubDate>{when}</pubDate>\n"
                "    </item>\n"
            )
        return (
            '<?xml version="1.0" encoding="UTF-8"?>\n<rss version="2.0">\n  <channel>\n'
            "    <title>PyPI recent updates</title>\n    <link>https://pypi.org/</link>\n"
            "    <description>Recent updates to the Python Package Index</description>\n"
            f"    <language>en</language>\n{''.join(items)}  </channel>\n</rss>\n"
        ).encode()

    def xmlrpc(self, body: bytes) -> bytes:
        params, method = xmlrpc.client.loads(body)
        self.xmlrpc_calls[method or ""] += 1
        if self.rate_limited_calls > 0:
            self.rate_limited_calls -= 1
            fault = xmlrpc.client.Fault(
                -32500,
                "HTTPTooManyRequests: The action could not be performed because there were too many "
                "requests by the client. Limit may reset in 1 seconds.",
            )
            return xmlrpc.client.dumps(fault, methodresponse=True).encode()
        if method == "changelog_last_serial":
            result: Any = self.last_serial
        elif method == "changelog_since_serial":
            (since,) = params
            rows = [list(e) for e in self.journal if e[4] > since][: self.page_size]
            result = rows
        else:
            fault = xmlrpc.client.Fault(-32601, f"server error; requested method not found: {method}")
            return xmlrpc.client.dumps(fault, methodresponse=True).encode()
        return xmlrpc.client.dumps((result,), methodresponse=True, allow_none=True).encode()


@dataclass
class Logged:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    at: float  # time.monotonic() when it arrived
    status: int = 0


@dataclass
class Scripted:
    """An answer to give instead of the normal one, ``times`` times."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    times: int = 1


@dataclass
class Registries:
    npm: NpmState = field(default_factory=NpmState)
    pypi: PypiState = field(default_factory=PypiState)
    down: set[str] = field(default_factory=set)  # path prefixes answering 503 (an outage)
    retry_after: str | None = None  # Retry-After sent with outage 503s
    scripted: dict[str, list[Scripted]] = field(default_factory=dict)  # exact path -> answers
    requests: list[Logged] = field(default_factory=list)
    hits: Counter[str] = field(default_factory=Counter)

    def script(self, path: str, *answers: Scripted) -> None:
        self.scripted.setdefault(path, []).extend(answers)

    def logged(self, path: str) -> list[Logged]:
        return [r for r in self.requests if r.path == path]


def seeded() -> Registries:
    """The default content (module docstring)."""
    reg = Registries()
    reg.npm.rows = copy.deepcopy(CHANGES["results"])
    reg.npm.update_seq = LAST_SEQ
    reg.npm.docs = copy.deepcopy(PACKUMENTS)
    reg.script("/flaky", Scripted(500, body=b"Internal Server Error"))
    for name, version, created in PYPI_SEED:
        reg.pypi.release(name, version, created)
    return reg


REGISTRIES: web.AppKey[Registries] = web.AppKey("registries", Registries)
HITS: web.AppKey[Counter[str]] = web.AppKey("hits", Counter)
AGENTS: web.AppKey[list[str]] = web.AppKey("agents", list)


def _etag(body: bytes) -> str:
    return '"' + hashlib.sha1(body).hexdigest()[:16] + '"'


def _conditional(request: web.Request, body: bytes, content_type: str, etags: bool = True) -> web.Response:
    if not etags:
        return web.Response(body=body, content_type=content_type)
    tag = _etag(body)
    if request.headers.get("If-None-Match") == tag:
        return web.Response(status=304, headers={"ETag": tag})
    return web.Response(body=body, content_type=content_type, headers={"ETag": tag})


def make_app(registries: Registries | None = None) -> web.Application:
    reg = registries or seeded()
    agents: list[str] = []

    async def handle(request: web.Request) -> web.StreamResponse:
        path = request.raw_path.split("?")[0].replace("%2F", "%2f")
        reg.hits[path] += 1
        agents.append(request.headers.get("User-Agent", ""))
        logged = Logged(request.method, path, dict(request.query), dict(request.headers), time.monotonic())
        reg.requests.append(logged)
        response = await answer(request, path)
        logged.status = response.status
        return response

    async def answer(request: web.Request, path: str) -> web.Response:
        if any(path.startswith(prefix) for prefix in reg.down):
            headers = {"Retry-After": reg.retry_after} if reg.retry_after else {}
            return web.Response(status=503, text="Service Unavailable", headers=headers)
        answers = reg.scripted.get(path)
        if answers:
            scripted = answers[0]
            scripted.times -= 1
            if scripted.times <= 0:
                answers.pop(0)
            return web.Response(status=scripted.status, body=scripted.body, headers=scripted.headers)
        if request.method == "POST" and path in ("/pypi", "/pypi/", "/RPC2"):
            body = reg.pypi.xmlrpc(await request.read())
            return web.Response(body=body, content_type="text/xml")
        if path == "/" and not reg.npm.db_info:
            return web.json_response({"couchdb": "Welcome", "version": "3.3.3"})
        if path == "/":
            return web.json_response(
                {"db_name": "registry", "doc_count": len(reg.npm.docs), "update_seq": reg.npm.update_seq}
            )
        if path == "/_changes":
            since = request.query.get("since", "0")
            if not since.isdigit():
                reason = "Malformed sequence supplied in 'since' parameter."
                return web.json_response({"error": "bad_request", "reason": reason}, status=400)
            limit = min(int(request.query.get("limit", "1000")), 10_000)
            if request.query.get("descending") == "true":
                newest = reg.npm.rows[-limit:][::-1]
                return web.json_response({"results": newest, "last_seq": reg.npm.update_seq})
            return web.json_response(reg.npm.changes(int(since), limit))
        if path == "/rss/updates.xml":
            return _conditional(request, reg.pypi.updates_xml(), "text/xml")
        if path == "/rss/packages.xml":
            return _conditional(request, PACKAGES_XML, "text/xml")
        if path == "/pypi/brand-new/json":
            return web.json_response(BRAND_NEW_JSON)
        if path in reg.npm.raw:
            return _conditional(request, reg.npm.raw[path], "application/json", reg.npm.etags)
        if path in reg.npm.docs:
            doc = reg.npm.docs[path]
            if reg.npm.stale[path] > 0 and path in reg.npm.previous:
                reg.npm.stale[path] -= 1
                doc = reg.npm.previous[path]  # the CDN still has the revision before the change
            return _conditional(request, orjson.dumps(doc), "application/json", reg.npm.etags)
        return web.json_response({"error": "Not found"}, status=404)

    app = web.Application()
    app[REGISTRIES] = reg
    app[HITS] = reg.hits
    app[AGENTS] = agents
    app.router.add_route("*", "/{tail:.*}", handle)
    return app
