"""Pure parsers: PyPI RSS and journal rows, npm ``_changes`` rows and packuments, the event shape.

Inputs are the real shapes, including OpenSSF package-feeds' own test fixtures verbatim.
"""

from __future__ import annotations

import time
import xmlrpc.client
from datetime import UTC, datetime

import orjson
import pytest
from fixture_feeds import (
    CHANGES,
    LAST_SEQ,
    PACKAGE_FEEDS_CHANGELOG,
    PACKAGE_FEEDS_NPM_EXPECTED,
    PACKAGE_FEEDS_PACKUMENTS,
    PACKAGE_FEEDS_RELEASES,
    PACKAGE_FEEDS_UPDATES_XML,
    PACKAGES_XML,
    PACKUMENTS,
    PYPI_EXPECTED,
    UPDATES_XML,
)

from typostream.agents.adapters.feeds import (
    SCHEMA_VER,
    go_rfc3339,
    parse_changelog,
    parse_changes,
    parse_new_projects,
    parse_updates,
)
from typostream.agents.adapters.feeds.base import FeedEvent, event_id, make_event, rfc3339_utc
from typostream.agents.adapters.feeds.npm import parse_update_seq, publishes_from_packument
from typostream.agents.adapters.feeds.pypi import ChangelogFault, releases_from_journal
from typostream.agents.adapters.http import parse_retry_after, with_backoff
from typostream.agents.domain.events import parse_publish


def _triples(events: list[FeedEvent]) -> set[tuple[str, str, str]]:
    return {(e["name"], e["version"], parse_publish(orjson.dumps(e), 1 << 16).created_date) for e in events}


def _journal(rows: list[tuple[str, str | None, int, str]], first: int = 100) -> bytes:
    body = [[n, v, t, a, first + i] for i, (n, v, t, a) in enumerate(rows)]
    return xmlrpc.client.dumps((body,), methodresponse=True, allow_none=True).encode()


def test_events_are_exactly_package_feeds_packages() -> None:
    """pkg/feeds/feed.go: six fields, schemaVer "1.1", created_date as Go marshals time.Time."""
    assert SCHEMA_VER == "1.1"
    event = make_event("pypi", "adbutils", "1.2.9", datetime.fromtimestamp(1678415159, UTC))
    assert event == {
        "name": "adbutils",
        "version": "1.2.9",
        "created_date": "2023-03-10T02:25:59Z",
        "type": "pypi",
        "artifact_id": "",
        "schema_ver": "1.1",
    }
    assert list(event) == ["name", "version", "created_date", "type", "artifact_id", "schema_ver"]
    assert go_rfc3339(datetime(2021, 5, 11, 18, 32, 1, 100_000, tzinfo=UTC)) == "2021-05-11T18:32:01.1Z"
    # The id is the pipeline's: built on the form validation normalises created_date to.
    parsed = parse_publish(orjson.dumps(event), 1 << 16)
    assert parsed.created_date == "2023-03-10T02:25:59.000Z" and parsed.event_id == event_id(event)
    assert parsed.schema_ver == "1.1"


def test_parse_updates_takes_the_normalised_name_from_the_link() -> None:
    events = parse_updates(UPDATES_XML)
    assert [(e["name"], e["version"], e["created_date"]) for e in events] == [
        ("flask-login", "0.7.0", "2026-11-02T14:00:09Z"),  # title says "Flask-Login"
        ("reqeusts", "2.31.0", "2026-11-02T14:00:08Z"),
        ("numpy", "2.3.0rc1", "2026-11-02T13:59:58Z"),
    ]  # feed order, the item without a pubDate skipped
    assert _triples(events) == PYPI_EXPECTED
    for event in events:
        assert event["type"] == "pypi" and event["schema_ver"] == "1.1" and event["artifact_id"] == ""


def test_parse_updates_reads_package_feeds_fixture_with_whitespace_before_the_declaration() -> None:
    assert PACKAGE_FEEDS_UPDATES_XML.startswith(b"\n<?xml")
    events = parse_updates(PACKAGE_FEEDS_UPDATES_XML)
    # package-feeds reads name and version from the link; its links carry display names,
    # which PEP 503 normalises to the project's one name.
    assert [(e["name"], e["version"], e["created_date"]) for e in events] == [
        ("foopackage", "0.0.2", "2021-03-19T12:01:04Z"),
        ("barpackage", "0.7a2", "2021-03-19T12:00:39Z"),
    ]


def test_parse_updates_title_fallback_bad_bytes_and_non_rss() -> None:
    xml = b"""\xef\xbb\xbf  <rss version="2.0"><channel><item><title>Real_Name 1.0.post1</title>
      <link>https://pypi.org/</link>
      <pubDate>Tue, 03 Nov 2026 08:00:00 +0100</pubDate></item>
      <item><title>a\x00b \xff1.0</title><link>https://pypi.org/project/a.b/1.0/</link>
      <pubDate>Mon, 02 Nov 2026 14:00:09 GMT</pubDate></item></channel></rss>"""
    assert [(e["name"], e["version"], e["created_date"]) for e in parse_updates(xml)] == [
        ("real-name", "1.0.post1", "2026-11-03T07:00:00Z"),
        ("a-b", "1.0", "2026-11-02T14:00:09Z"),
    ]
    with pytest.raises(ValueError, match="not RSS"):
        parse_updates(b"<html><body>proxy error</body></html>")
    with pytest.raises(ValueError, match="not RSS XML"):
        parse_updates(b"{}")


def test_parse_new_projects() -> None:
    assert [name for name, _ in parse_new_projects(PACKAGES_XML)] == ["brand-new", "reqeusts"]


def test_journal_rows_of_package_feeds_fixture_become_one_event_per_release() -> None:
    entries = parse_changelog(_journal(PACKAGE_FEEDS_CHANGELOG))
    assert len(entries) == len(PACKAGE_FEEDS_CHANGELOG)
    assert entries[15].version is None and entries[15].action == "remove project"
    events = releases_from_journal(entries)
    assert len(events) == 8  # file uploads, owners, removals and OpenVisus' late wheels publish nothing
    assert _triples(events) == PACKAGE_FEEDS_RELEASES
    # the display name "ScraperFC" is the project "scraperfc", as in the RSS link
    assert ("scraperfc", "2.6.3") in {(e["name"], e["version"]) for e in events}


def test_journal_parser_rejects_other_documents_and_reads_faults() -> None:
    with pytest.raises(ValueError, match="XML-RPC"):
        parse_changelog(b"<html>Service Unavailable</html>")
    with pytest.raises(ValueError, match="array"):
        parse_changelog(xmlrpc.client.dumps((42,), methodresponse=True).encode())
    limited = xmlrpc.client.Fault(
        -32500,
        "HTTPTooManyRequests: The action could not be performed because there were too many "
        "requests by the client. Limit may reset in 37 seconds.",
    )
    with pytest.raises(ChangelogFault) as caught:
        parse_changelog(xmlrpc.client.dumps(limited, methodresponse=True).encode())
    assert caught.value.retry_after_s == 37.0
    other = xmlrpc.client.Fault(-32601, "server error; requested method not found")
    with pytest.raises(ChangelogFault) as caught:
        parse_changelog(xmlrpc.client.dumps(other, methodresponse=True).encode())
    assert caught.value.retry_after_s is None


def test_parse_changes_post_2025_rows_and_update_seq() -> None:
    page = parse_changes(orjson.dumps(CHANGES))
    assert page.last_seq == LAST_SEQ
    assert [(c.seq, c.name, c.rev) for c in page.changes][:3] == [
        (1, "left-pad", "12-a1"),
        (2, "@acme/widgets", "3-b2"),
        (3, "gone-pkg", "4-c3"),
    ]
    assert [c.name for c in page.changes if c.deleted] == ["gone-pkg"]
    design = {"results": [{"seq": 9, "id": "_design/app", "changes": []}], "last_seq": 9, "pending": 3}
    assert parse_changes(orjson.dumps(design)).changes == []
    assert parse_changes(orjson.dumps(design)).pending == 3
    with pytest.raises(ValueError):
        parse_changes(b'{"rows": []}')
    with pytest.raises(ValueError):
        parse_changes(b"<html>")
    assert parse_update_seq(b'{"db_name":"registry","update_seq":89797390}') == 89797390
    with pytest.raises(ValueError):
        parse_update_seq(b'{"couchdb":"Welcome"}')


def _published(doc: object, since: datetime | None = None) -> list[tuple[str, str, str]]:
    return [
        (e["name"], e["version"], rfc3339_utc(datetime.fromisoformat(e["created_date"])))
        for e in publishes_from_packument(doc, "x", since=since)
    ]


def test_packument_versions_published_by_this_change() -> None:
    assert _published(PACKUMENTS["/left-pad"]) == [("left-pad", "1.3.0", "2026-11-02T14:00:01.100Z")]
    assert _published(PACKUMENTS["/@acme%2fwidgets"]) == [
        ("@acme/widgets", "1.0.0", "2026-11-02T14:00:02.000Z"),
        ("@acme/widgets", "1.0.1", "2026-11-02T14:00:03.000Z"),
    ]
    assert _published(PACKUMENTS["/deprecated-only"]) == []  # metadata-only change
    assert _published(PACKUMENTS["/unpub"]) == []  # time.unpublished
    # ...but a version published since the feed was last caught up counts even when a later
    # metadata change moved time.modified past the window (catch-up after downtime).
    since = datetime(2024, 2, 1, tzinfo=UTC)
    assert _published(PACKUMENTS["/deprecated-only"], since) == [
        ("deprecated-only", "0.9.0", "2024-03-01T10:00:00.000Z")
    ]


def test_package_feeds_npm_fixture_packuments() -> None:
    got: set[tuple[str, str, str]] = set()
    for name, body in PACKAGE_FEEDS_PACKUMENTS.items():
        got |= set(_published(orjson.loads(body)))
        assert all(n == name for n, _, _ in _published(orjson.loads(body)))
    assert got == PACKAGE_FEEDS_NPM_EXPECTED  # Qux is unpublished: nothing


def test_packument_edge_cases() -> None:
    doc = {"name": "p", "time": {"1.0.0": "2026-01-01T00:00:00Z", "2.0.0": "2026-02-01T00:00:00Z"}}
    assert [e["version"] for e in publishes_from_packument(doc, "p")] == ["2.0.0"]  # no modified: newest
    removed = {**doc, "versions": {"1.0.0": {}}}
    assert [e["version"] for e in publishes_from_packument(removed, "p")] == ["1.0.0"]  # 2.0.0 deleted
    with pytest.raises(ValueError):
        publishes_from_packument({"name": "p"}, "p")


def test_parse_retry_after_seconds_and_dates() -> None:
    assert parse_retry_after("120") == 120.0
    assert parse_retry_after(None) is None and parse_retry_after("soon") is None
    now = time.time()
    later = datetime.fromtimestamp(now + 30, UTC).strftime("%a, %d %b %Y %H:%M:%S GMT")
    assert 28 <= (parse_retry_after(later, now) or 0) <= 30
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now) == 0.0


class Limited(Exception):
    def __init__(self, retry_after_s: float | None) -> None:
        super().__init__("HTTP 429")
        self.retry_after_s = retry_after_s


async def test_backoff_waits_at_least_retry_after() -> None:
    calls: list[float] = []

    async def attempt() -> str:
        calls.append(time.monotonic())
        if len(calls) == 1:
            raise Limited(0.4)
        return "ok"

    assert await with_backoff(attempt, retries=2, backoff_s=0.001, retryable=Limited) == "ok"
    assert calls[1] - calls[0] >= 0.4


async def test_backoff_gives_up_at_once_when_retry_after_exceeds_the_cap() -> None:
    calls: list[float] = []

    async def attempt() -> str:
        calls.append(time.monotonic())
        raise Limited(3600)

    started = time.monotonic()
    with pytest.raises(Limited):
        await with_backoff(attempt, retries=3, backoff_s=0.001, retryable=Limited, max_wait_s=5)
    assert len(calls) == 1 and time.monotonic() - started < 1
