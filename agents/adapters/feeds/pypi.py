"""PyPI source: the XML-RPC journal for completeness, the RSS feed of newest releases for latency.

API relied on (PyPI's "XML-RPC API" page, docs.pypi.org/api/xml-rpc/ — ``docs/dev/api-reference/
xml-rpc.md`` in pypi/warehouse; its "RSS Feeds" page, docs.pypi.org/api/feeds/; the implementation
in warehouse ``warehouse/legacy/api/xmlrpc/views.py``, ``warehouse/rss/views.py``,
``warehouse/templates/rss/updates.xml``, ``warehouse/forklift/legacy.py``; OpenSSF package-feeds'
``pkg/feeds/pypi/pypi.go`` (RSS) and ``pypi_artifacts.go`` (journal)):

- **Journal** (``POST {base}/pypi``, XML-RPC, the "mirroring support" methods PyPI calls fully
  supported): ``changelog_last_serial()`` is the newest serial; ``changelog_since_serial(serial)``
  lists ``[name, version, timestamp, action, serial]`` after ``serial``, oldest first, at most
  50,000 per call (warehouse's query limit). Serials are committed in order (warehouse takes a lock
  per journal write, ``ensure_monotonic_journals``), so resuming from the last serial seen loses
  nothing. Each upload that creates a release writes ``action == "new release"`` in the transaction
  that creates the release, so its timestamp equals the release's ``created``. The name is the
  project's display name; events carry the PEP 503 normalised name.
- **RSS** (``GET {base}/rss/updates.xml``): the newest 100 releases by ``created``, CDN-cached and
  purged on change; ``<title>`` is "display-name version", ``<link>`` ``/project/<normalized
  name>/<version>/``, ``<pubDate>`` the release's ``created`` (RFC 822, seconds). Fetched
  conditionally (``If-None-Match`` / ``If-Modified-Since``). A release seen in both sources has one
  event id (same normalised name, version and second), so the journal confirms what RSS sent early.
- The XML-RPC API is rate limited (3,600 calls per hour per client by default); a rate-limit fault
  ("Limit may reset in N seconds") or HTTP 429/503 ``Retry-After`` postpones the journal, while RSS
  keeps the feed current. If the journal is unavailable the poll still delivers RSS (reported as an
  error of kind ``changelog``), and the serial does not move, so the journal replays the gap later.

Latency: RSS every poll (a release shows within one ``--interval``); the journal at most every
``changelog_interval_s`` (default 10 s) while caught up, back to back (≥ 1 s apart) while behind.
Catch-up bound: none in time (the journal keeps every entry since PyPI began); a call returns up to
50,000 entries (tens of thousands of releases), so a day of downtime is replayed in a few calls.
Events are released ``limit`` at a time from the fetched page, which is kept in memory between polls.

Parsed with the standard library (ElementTree, xmlrpc.client): neither fetches external entities
and expat ≥ 2.4.1 (CPython's bundled one) limits entity expansion. Leading whitespace before the XML
declaration (as in package-feeds' fixtures), invalid UTF-8 and control characters are tolerated
like package-feeds' ``utils.XMLReader``.
"""

from __future__ import annotations

import asyncio
import re
import time
import xml.etree.ElementTree as ET
import xmlrpc.client
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any, Final, Literal
from urllib.parse import quote, unquote, urlsplit
from xml.parsers.expat import ExpatError

import orjson

from typostream.agents.adapters.feeds.base import FeedEvent, Poll, event_id, make_event, parse_rfc3339
from typostream.agents.adapters.feeds.http import FeedHTTP
from typostream.agents.domain.detection.names import normalize
from typostream.agents.domain.errors import (
    UpstreamRateLimitedError,
    UpstreamResponseError,
    UpstreamUnavailableError,
)
from typostream.agents.domain.vocabulary import REGISTRY_URLS

__all__ = [
    "CHANGELOG_PAGE",
    "PYPI_URL",
    "JournalEntry",
    "PypiSource",
    "parse_changelog",
    "parse_new_projects",
    "parse_updates",
    "releases_from_journal",
]

PYPI_URL: Final = REGISTRY_URLS["pypi"]
CHANGELOG_PAGE: Final = 50_000
"""Entries per ``changelog_since_serial`` answer (warehouse's ``.limit(50000)``): a full page means more."""
SLACK: Final = timedelta(minutes=10)
"""RSS items up to this much older than the newest one seen are reconsidered (ids drop repeats)."""
RSS_CONFIRM_MARGIN: Final = 3600.0
"""RSS-sent ids are kept until the journal has passed their time by this much (long uploads)."""
MAX_RSS_UNCONFIRMED: Final = 5_000
_ILLEGAL_XML = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_RSS_ACCEPT: Final = "application/rss+xml, application/xml;q=0.9, text/xml;q=0.9, */*;q=0.1"
_RATE_LIMIT_RESET = re.compile(r"reset in (\d+) seconds")


def normalize_name(name: str) -> str:
    """PEP 503: ``Flask_Login`` and ``flask.login`` are the project ``flask-login``."""
    return normalize(name, "pypi")


def _xml_text(xml_bytes: bytes) -> str:
    # Like package-feeds' XMLReader: drop invalid UTF-8 and characters XML 1.0 forbids, and the
    # whitespace (or BOM) some servers put before the declaration, which expat rejects.
    text = xml_bytes.decode("utf-8", errors="ignore").lstrip("\ufeff \t\r\n")
    return _ILLEGAL_XML.sub("", text)


def _items(xml_bytes: bytes) -> list[ET.Element]:
    try:
        root = ET.fromstring(_xml_text(xml_bytes))
    except ET.ParseError as exc:
        raise ValueError(f"not RSS XML: {exc}") from exc
    if root.tag != "rss":
        raise ValueError(f"not RSS: root element is <{root.tag}>")
    return root.findall("./channel/item")


def _text(item: ET.Element, tag: str) -> str:
    return (item.findtext(tag) or "").strip()


def _pubdate(item: ET.Element) -> datetime | None:
    try:
        when = parsedate_to_datetime(_text(item, "pubDate"))
    except (TypeError, ValueError, IndexError):
        return None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def _link_parts(link: str) -> list[str]:
    # https://pypi.org/project/<name>/<version>/ -> ["project", name, version]
    return [unquote(p) for p in urlsplit(link).path.split("/") if p]


def _valid(token: str) -> bool:
    return bool(token) and not any(c.isspace() or ord(c) < 0x20 for c in token)


def parse_updates(xml_bytes: bytes) -> list[FeedEvent]:
    """Events from ``/rss/updates.xml``, in feed order (newest first). Malformed items are skipped.

    Name and version come from the link (``/project/<name>/<version>/``, as package-feeds reads
    them), the name PEP 503 normalised; the title (``"<display name> <version>"``) only when the
    link is not a release link. Raises :class:`ValueError` when the document is not RSS at all.
    """
    events: list[FeedEvent] = []
    for item in _items(xml_bytes):
        created = _pubdate(item)
        if created is None:
            continue
        parts = _link_parts(_text(item, "link"))
        if len(parts) >= 3 and parts[-3] == "project":
            name, version = parts[-2], parts[-1]
        else:
            title = _text(item, "title").rsplit(" ", 1)
            name, version = (title[0], title[1]) if len(title) == 2 else ("", "")
        if _valid(name) and _valid(version):
            events.append(make_event("pypi", normalize_name(name), version, created))
    return events


def parse_new_projects(xml_bytes: bytes) -> list[tuple[str, datetime]]:
    """``(normalised name, pubDate)`` from ``/rss/packages.xml`` (``/project/<name>/`` links)."""
    out: list[tuple[str, datetime]] = []
    for item in _items(xml_bytes):
        created = _pubdate(item)
        parts = _link_parts(_text(item, "link"))
        title = _text(item, "title").removesuffix(" added to PyPI").strip()
        name = parts[1] if len(parts) >= 2 and parts[0] == "project" else title
        if created is not None and _valid(name):
            out.append((normalize_name(name), created))
    return out


@dataclass(frozen=True, slots=True)
class JournalEntry:
    name: str
    version: str | None
    timestamp: int
    action: str
    serial: int


class ChangelogFault(Exception):
    """An XML-RPC fault; ``retry_after_s`` is set for PyPI's rate-limit fault."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"XML-RPC fault {code}: {message}")
        self.code = code
        reset = _RATE_LIMIT_RESET.search(message)
        rate_limited = "TooManyRequests" in message or reset is not None
        self.retry_after_s: float | None = (
            float(reset.group(1)) if reset else (60.0 if rate_limited else None)
        )


def _xmlrpc_result(body: bytes) -> Any:
    try:
        (result,), _ = xmlrpc.client.loads(_xml_text(body).encode(), use_builtin_types=True)
    except xmlrpc.client.Fault as fault:
        raise ChangelogFault(fault.faultCode, str(fault.faultString)) from None
    except (ExpatError, xmlrpc.client.ResponseError, ValueError, TypeError) as exc:
        raise ValueError(f"not an XML-RPC response: {exc!r}") from exc
    return result


def parse_changelog(body: bytes) -> list[JournalEntry]:
    """``changelog_since_serial`` rows, sorted by serial; rows of another shape are dropped.

    Raises :class:`ValueError` when the body is not an XML-RPC array, :class:`ChangelogFault` for a fault.
    """
    result = _xmlrpc_result(body)
    if not isinstance(result, list):
        raise ValueError(f"expected an array of journal entries, got {type(result).__name__}")
    entries: list[JournalEntry] = []
    for row in result:
        if not isinstance(row, list | tuple) or len(row) < 5:
            continue
        name, version, stamp, action, serial = row[:5]
        if not (isinstance(name, str) and isinstance(stamp, int) and isinstance(serial, int)):
            continue
        entries.append(
            JournalEntry(
                name=name,
                version=version if isinstance(version, str) and version else None,
                timestamp=stamp,
                action=action if isinstance(action, str) else "",
                serial=serial,
            )
        )
    entries.sort(key=lambda e: e.serial)
    return entries


def parse_last_serial(body: bytes) -> int:
    result = _xmlrpc_result(body)
    if not isinstance(result, int) or isinstance(result, bool):
        raise ValueError(f"expected an integer serial, got {result!r}")
    return result


def _release_event(entry: JournalEntry) -> FeedEvent | None:
    if entry.action != "new release" or entry.version is None:
        return None
    if not (_valid(entry.name) and _valid(entry.version)):
        return None
    return make_event(
        "pypi", normalize_name(entry.name), entry.version, datetime.fromtimestamp(entry.timestamp, UTC)
    )


def releases_from_journal(entries: list[JournalEntry]) -> list[FeedEvent]:
    """One event per ``new release`` entry (file uploads, owners, removals publish nothing)."""
    return [e for e in map(_release_event, entries) if e is not None]


def _latest_release(doc: Any, name: str) -> FeedEvent | None:
    """The newest release in a ``/pypi/<name>/json`` document, if it has an upload time."""
    if not isinstance(doc, dict) or not isinstance(doc.get("info"), dict):
        return None
    version = doc["info"].get("version")
    urls = doc.get("urls")
    files = urls if isinstance(urls, list) else []
    times = [u.get("upload_time_iso_8601") for u in files if isinstance(u, dict)]
    stamps = sorted(t for t in times if isinstance(t, str))
    created = parse_rfc3339(stamps[0]) if stamps else None
    if not isinstance(version, str) or not _valid(version) or created is None:
        return None
    return make_event("pypi", normalize_name(doc["info"].get("name") or name), version, created)


class PypiSource:
    """Polls PyPI's journal and RSS. Cursor::

        {"serial": <last journal serial consumed>,
         "rss": {"newest": <created_date of the newest RSS item seen>},
         "rss_unconfirmed": {<event id>: <unix time>}}   # sent from RSS, not yet met in the journal

    ``changelog=False`` polls RSS only (for mirrors without XML-RPC): lossy beyond the RSS window,
    reported as errors of kind ``rss_gap``.
    """

    registry: Literal["pypi"] = "pypi"

    def __init__(
        self,
        base_url: str = PYPI_URL,
        http: FeedHTTP | None = None,
        *,
        new_projects: bool = False,
        changelog: bool = True,
        changelog_interval_s: float = 10.0,
        changelog_spacing_s: float = 1.0,
        rss_spacing_s: float = 2.0,
        changelog_page: int = CHANGELOG_PAGE,
    ):
        self.base_url = base_url.rstrip("/")
        self.http = http or FeedHTTP(registry="pypi")
        if not self.http.registry:
            self.http.registry = "pypi"
        self.new_projects = new_projects
        self.changelog = changelog
        self.changelog_interval_s = changelog_interval_s
        self.changelog_spacing_s = changelog_spacing_s
        self.rss_spacing_s = rss_spacing_s
        self.changelog_page = changelog_page
        self._rss_validators: tuple[str | None, str | None] = (None, None)
        self._last_rss = float("-inf")
        self._last_changelog = float("-inf")
        self._not_before = float("-inf")  # the journal's rate limit said so
        self._page: list[JournalEntry] = []  # fetched journal entries not consumed yet
        self._page_after: int | None = None  # ... which follow this serial
        self._page_full = False

    @property
    def xmlrpc_url(self) -> str:
        return self.base_url + "/pypi"

    async def close(self) -> None:
        await self.http.close()

    # --- journal -----------------------------------------------------------------------------
    async def _call(self, method: str, *params: Any) -> bytes:
        body = xmlrpc.client.dumps(params, method).encode()
        self._last_changelog = time.monotonic()
        return await self.http.post(
            self.xmlrpc_url, body, content_type="text/xml", accept="text/xml", endpoint=method
        )

    def _rate_limited(self, fault: ChangelogFault) -> UpstreamRateLimitedError | None:
        if fault.retry_after_s is None:
            return None
        self._not_before = time.monotonic() + fault.retry_after_s
        return UpstreamRateLimitedError(str(fault), self.xmlrpc_url, fault.retry_after_s)

    async def last_serial(self) -> int:
        try:
            return parse_last_serial(await self._call("changelog_last_serial"))
        except ChangelogFault as fault:
            raise self._rate_limited(fault) or UpstreamResponseError(str(fault), self.xmlrpc_url) from None
        except ValueError as exc:
            raise UpstreamResponseError(str(exc), self.xmlrpc_url) from exc

    async def _fetch_page(self, serial: int) -> None:
        try:
            entries = parse_changelog(await self._call("changelog_since_serial", serial))
        except ChangelogFault as fault:
            raise self._rate_limited(fault) or UpstreamResponseError(str(fault), self.xmlrpc_url) from None
        except ValueError as exc:
            raise UpstreamResponseError(str(exc), self.xmlrpc_url) from exc
        self._page = [e for e in entries if e.serial > serial]
        self._page_after = serial
        self._page_full = len(entries) >= self.changelog_page

    def _journal_due(self, serial: int, rss_failed: bool) -> bool:
        if self._page and self._page_after == serial:
            return True  # released from memory, no request
        now = time.monotonic()
        if now < self._not_before:
            return False
        behind = self._page_full and self._page_after is not None
        return rss_failed or behind or now - self._last_changelog >= self.changelog_interval_s

    async def _journal(self, serial: int, limit: int) -> tuple[list[FeedEvent], int, bool, int | None]:
        """Events after ``serial`` (at most ``limit``), the serial consumed to, more?, backlog
        (journal entries fetched but not consumed; ``None`` when the next page is not fetched yet)."""
        if not (self._page and self._page_after == serial):
            wait = self._last_changelog + self.changelog_spacing_s - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            await self._fetch_page(serial)
        events: list[FeedEvent] = []
        consumed = serial
        taken = 0
        for entry in self._page:
            event = _release_event(entry)
            if event is not None:
                if len(events) >= max(1, limit):
                    break
                events.append(event)
            consumed = entry.serial
            taken += 1
        self._page = self._page[taken:]
        self._page_after = consumed
        more = bool(self._page) or self._page_full
        backlog = len(self._page) if self._page or not self._page_full else None
        return events, consumed, more, backlog

    # --- RSS ---------------------------------------------------------------------------------
    async def _rss(self, newest: datetime | None, notes: list[str], errors: list[str]) -> list[FeedEvent]:
        url = self.base_url + "/rss/updates.xml"
        etag, modified = self._rss_validators
        self._last_rss = time.monotonic()
        fetched = await self.http.fetch(
            url, accept=_RSS_ACCEPT, etag=etag, last_modified=modified, endpoint="rss"
        )
        assert fetched is not None
        if fetched.not_modified:
            return []
        try:
            feed = parse_updates(fetched.body)
        except ValueError as exc:
            raise UpstreamResponseError(str(exc), url) from exc
        self._rss_validators = (fetched.etag, fetched.last_modified)
        if self.new_projects:
            feed += await self._new_projects({e["name"] for e in feed}, notes)
        events = sorted(reversed(feed), key=lambda e: _when(e) or datetime.min.replace(tzinfo=UTC))
        if newest is not None:
            if events and (_when(events[0]) or newest) > newest:
                errors.append("rss_gap")
                covered = "the journal replays the gap" if self.changelog else "releases may have been lost"
                notes.append(f"RSS window does not reach back to the cursor: {covered}")
            floor = newest - SLACK
            events = [e for e in events if (_when(e) or floor) >= floor]
        return events

    async def _new_projects(self, known: set[str], notes: list[str]) -> list[FeedEvent]:
        url = self.base_url + "/rss/packages.xml"
        body = await self.http.get(url, accept=_RSS_ACCEPT)
        assert body is not None
        try:
            projects = parse_new_projects(body)
        except ValueError as exc:
            raise UpstreamResponseError(str(exc), url) from exc
        out: list[FeedEvent] = []
        for name, _ in projects:
            if name in known:
                continue
            json_url = f"{self.base_url}/pypi/{quote(name, safe='')}/json"
            raw = await self.http.get(json_url, accept="application/json", missing_ok=True)
            try:
                event = _latest_release(orjson.loads(raw), name) if raw is not None else None
            except orjson.JSONDecodeError:
                event = None
            if event is None:
                notes.append(f"new project {name}: no release in the JSON API yet")
                continue
            out.append(event)
        return out

    # --- one poll ----------------------------------------------------------------------------
    async def poll(self, cursor: dict[str, Any], limit: int) -> Poll:
        notes: list[str] = []
        errors: list[str] = []
        raw_rss = cursor.get("rss")
        rss_state: dict[str, Any] = dict(raw_rss) if isinstance(raw_rss, dict) else {}
        newest = parse_rfc3339(rss_state.get("newest"))
        raw_unconfirmed = cursor.get("rss_unconfirmed")
        unconfirmed: dict[str, float] = (
            {k: float(v) for k, v in raw_unconfirmed.items() if isinstance(v, int | float)}
            if isinstance(raw_unconfirmed, dict)
            else {}
        )
        serial = cursor.get("serial") if isinstance(cursor.get("serial"), int) else None

        rss_events: list[FeedEvent] = []
        rss_error: Exception | None = None
        rss_ok = False
        catching_up = bool(self._page) or self._page_full  # polls follow back to back: spare RSS
        if not catching_up or time.monotonic() - self._last_rss >= self.rss_spacing_s:
            try:
                rss_events = await self._rss(newest, notes, errors)
                rss_ok = True
            except (UpstreamUnavailableError, UpstreamResponseError) as exc:
                rss_error = exc
                errors.append("rss")
                notes.append(f"RSS failed: {exc}")

        journal_events: list[FeedEvent] = []
        more = False
        backlog: int | None = None
        journal_error: Exception | None = None
        journal_ok = False
        new_serial = serial
        if self.changelog:
            try:
                if serial is None:
                    new_serial = await self.last_serial()
                    backlog = 0
                    journal_ok = True
                elif self._journal_due(serial, not rss_ok):
                    journal_events, new_serial, more, backlog = await self._journal(serial, limit)
                    journal_ok = True
            except (UpstreamUnavailableError, UpstreamResponseError) as exc:
                journal_error = exc
                errors.append("changelog")
                notes.append(f"journal failed (serial kept, replayed later): {exc}")
        if not rss_ok and not journal_ok and (rss_error or journal_error):
            # Neither source answered: the poll fails (the loop retries, Retry-After respected).
            if isinstance(journal_error, UpstreamRateLimitedError) or rss_error is None:
                assert journal_error is not None
                raise journal_error
            raise rss_error

        # What RSS sent early is not sent again when the journal reaches it (and vice versa).
        events: list[FeedEvent] = []
        for event in journal_events:
            if unconfirmed.pop(event_id(event), None) is None:
                events.append(event)
        journal_ids = {event_id(e) for e in journal_events}
        for event in rss_events:
            eid = event_id(event)
            if eid in journal_ids:
                continue
            created = _when(event) or datetime.now(UTC)
            if self.changelog and serial is not None and (newest is None or created > newest):
                unconfirmed[eid] = created.timestamp()  # new to RSS: the journal lists it after ``serial``
            events.append(event)
        if journal_events:
            reached = max((w for w in map(_when, journal_events) if w is not None), default=None)
            if reached is not None:
                horizon = reached.timestamp() - RSS_CONFIRM_MARGIN
                unconfirmed = {k: v for k, v in unconfirmed.items() if v >= horizon}
        if len(unconfirmed) > MAX_RSS_UNCONFIRMED:
            unconfirmed = dict(sorted(unconfirmed.items(), key=lambda kv: kv[1])[-MAX_RSS_UNCONFIRMED:])

        newest_seen = max((w for w in map(_when, rss_events) if w is not None), default=None)
        new_rss = dict(rss_state)
        if newest_seen is not None and (newest is None or newest_seen > newest):
            new_rss["newest"] = newest_seen.isoformat().replace("+00:00", "Z")
        new_cursor: dict[str, Any] = {}
        if new_serial is not None:
            new_cursor["serial"] = new_serial
        if new_rss:
            new_cursor["rss"] = new_rss
        if unconfirmed:
            new_cursor["rss_unconfirmed"] = unconfirmed
        events.sort(key=lambda e: _when(e) or datetime.min.replace(tzinfo=UTC))
        return Poll(events=events, cursor=new_cursor, more=more, notes=notes, backlog=backlog, errors=errors)


def _when(event: FeedEvent) -> datetime | None:
    return parse_rfc3339(event["created_date"])
