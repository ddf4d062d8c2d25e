"""PyPI source: the RSS feed of newest releases (``/rss/updates.xml``).

Item shape (checked against PyPI's RSS as served and OpenSSF package-feeds' PyPI feed)::

    <item>
      <title>requests 2.31.0</title>
      <link>https://pypi.org/project/requests/2.31.0/</link>
      <description>...</description>
      <pubDate>Mon, 22 May 2023 15:12:44 GMT</pubDate>
    </item>

The title carries the project's display name; the link its normalised name and the version. The
feed only holds the most recent releases, so poll often; a poll whose oldest item is newer than the
cursor is reported as a possible gap. ``/rss/packages.xml`` (new projects) items carry no version,
so with ``new_projects=True`` each new name not already in the updates batch is looked up in the
JSON API (``/pypi/<name>/json``: ``info.version``, ``urls[].upload_time_iso_8601``).

Parsed with the standard library's ElementTree: it never fetches external entities, and expat ≥
2.4.1 (CPython's bundled one) limits entity expansion, so defusedxml is not needed.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any, Final, Literal
from urllib.parse import quote, unquote, urlsplit

import orjson

from typostream.agents.adapters.feeds.base import FeedEvent, Poll, make_event, rfc3339_utc
from typostream.agents.adapters.feeds.http import FeedHTTP
from typostream.agents.domain.errors import UpstreamResponseError
from typostream.agents.domain.vocabulary import REGISTRY_URLS

__all__ = ["PYPI_URL", "PypiSource", "parse_new_projects", "parse_updates"]

PYPI_URL: Final = REGISTRY_URLS["pypi"]
SLACK: Final = timedelta(minutes=10)
"""Items up to this much older than the cursor are reconsidered (ids drop the ones already sent)."""
_ILLEGAL_XML = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f]")
_RSS_ACCEPT: Final = "application/rss+xml, application/xml;q=0.9, */*;q=0.1"


def _items(xml_bytes: bytes) -> list[ET.Element]:
    try:
        root = ET.fromstring(_ILLEGAL_XML.sub(b"", xml_bytes))
    except ET.ParseError as exc:
        raise ValueError(f"not RSS XML: {exc}") from exc
    if root.tag != "rss":
        raise ValueError(f"not RSS: root element is <{root.tag}>")
    return root.findall("./channel/item")


def _text(item: ET.Element, tag: str) -> str:
    return (item.findtext(tag) or "").strip()


def _pubdate(item: ET.Element) -> datetime | None:
    try:
        return parsedate_to_datetime(_text(item, "pubDate"))
    except (TypeError, ValueError, IndexError):
        return None


def _link_parts(link: str) -> list[str]:
    # https://pypi.org/project/<name>/<version>/ -> ["project", name, version]
    return [unquote(p) for p in urlsplit(link).path.split("/") if p]


def _valid(token: str) -> bool:
    return bool(token) and not any(c.isspace() or ord(c) < 0x20 for c in token)


def parse_updates(xml_bytes: bytes) -> list[FeedEvent]:
    """Events from ``/rss/updates.xml``, in feed order (newest first). Malformed items are skipped.

    Raises :class:`ValueError` when the document is not RSS at all.
    """
    events: list[FeedEvent] = []
    for item in _items(xml_bytes):
        created = _pubdate(item)
        parts = _link_parts(_text(item, "link"))
        title = _text(item, "title").rsplit(" ", 1)
        if created is None:
            continue
        on_project = len(parts) >= 3 and parts[0] == "project"
        link_name, link_version = (parts[1], parts[2]) if on_project else ("", "")
        if len(title) == 2 and (not link_version or title[1] == link_version):
            name, version = title
        else:
            name, version = link_name, link_version
        if _valid(name) and _valid(version):
            events.append(make_event("pypi", name, version, created))
    return events


def parse_new_projects(xml_bytes: bytes) -> list[tuple[str, datetime]]:
    """``(name, pubDate)`` from ``/rss/packages.xml`` (``<title>name added to PyPI</title>``)."""
    out: list[tuple[str, datetime]] = []
    for item in _items(xml_bytes):
        created = _pubdate(item)
        parts = _link_parts(_text(item, "link"))
        title = _text(item, "title").removesuffix(" added to PyPI").strip()
        name = title if _valid(title) else (parts[1] if len(parts) >= 2 and parts[0] == "project" else "")
        if created is not None and _valid(name):
            out.append((name, created))
    return out


def _latest_release(doc: Any, name: str) -> FeedEvent | None:
    """The newest release in a ``/pypi/<name>/json`` document, if it has an upload time."""
    if not isinstance(doc, dict) or not isinstance(doc.get("info"), dict):
        return None
    version = doc["info"].get("version")
    urls = doc.get("urls")
    files = urls if isinstance(urls, list) else []
    times = [u.get("upload_time_iso_8601") for u in files if isinstance(u, dict)]
    stamps = sorted(t for t in times if isinstance(t, str))
    if not isinstance(version, str) or not _valid(version) or not stamps:
        return None
    try:
        created = datetime.fromisoformat(stamps[0].replace("Z", "+00:00"))
    except ValueError:
        return None
    return make_event("pypi", doc["info"].get("name") or name, version, created)


class PypiSource:
    """Polls PyPI's RSS. Cursor: ``{"newest": <created_date>, "name": ..., "version": ...}``."""

    registry: Literal["pypi"] = "pypi"

    def __init__(self, base_url: str = PYPI_URL, http: FeedHTTP | None = None, *, new_projects: bool = False):
        self.base_url = base_url.rstrip("/")
        self.http = http or FeedHTTP()
        self.new_projects = new_projects

    async def close(self) -> None:
        await self.http.close()

    async def _rss(self, path: str) -> bytes:
        url = self.base_url + path
        body = await self.http.get(url, accept=_RSS_ACCEPT)
        assert body is not None
        return body

    async def poll(self, cursor: dict[str, Any], limit: int) -> Poll:
        url = self.base_url + "/rss/updates.xml"
        try:
            feed = parse_updates(await self._rss("/rss/updates.xml"))
        except ValueError as exc:
            raise UpstreamResponseError(str(exc), url) from exc
        notes: list[str] = []
        if self.new_projects:
            feed += await self._new_projects({e["name"].lower() for e in feed}, notes)
        events = sorted(reversed(feed), key=lambda e: e["created_date"])  # oldest first, stable
        newest = cursor.get("newest")
        if isinstance(newest, str):
            # created_date strings share one format (rfc3339_utc), so they compare as text.
            floor = rfc3339_utc(datetime.fromisoformat(newest.replace("Z", "+00:00")) - SLACK)
            if events and events[0]["created_date"] > newest:
                notes.append("possible gap: every feed item is newer than the cursor; poll more often")
            events = [e for e in events if e["created_date"] >= floor]
        more = len(events) > limit
        events = events[:limit]
        new_cursor = dict(cursor)
        if events:
            last = events[-1]
            if not isinstance(newest, str) or last["created_date"] >= newest:
                new_cursor = {
                    "newest": last["created_date"],
                    "name": last["name"],
                    "version": last["version"],
                }
        return Poll(events=events, cursor=new_cursor, more=more, notes=notes)

    async def _new_projects(self, known: set[str], notes: list[str]) -> list[FeedEvent]:
        url = self.base_url + "/rss/packages.xml"
        try:
            projects = parse_new_projects(await self._rss("/rss/packages.xml"))
        except ValueError as exc:
            raise UpstreamResponseError(str(exc), url) from exc
        out: list[FeedEvent] = []
        for name, _ in projects:
            if name.lower() in known:
                continue
            json_url = f"{self.base_url}/pypi/{quote(name, safe='')}/json"
            body = await self.http.get(json_url, accept="application/json", missing_ok=True)
            try:
                event = _latest_release(orjson.loads(body), name) if body is not None else None
            except orjson.JSONDecodeError:
                event = None
            if event is None:
                notes.append(f"new project {name}: no release in the JSON API yet")
                continue
            out.append(event)
        return out
