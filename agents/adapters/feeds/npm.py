"""npm source: the CouchDB changes feed of the public replica, resolved through packuments.

1. ``GET {replicate}/_changes?since=<seq>&limit=<n>`` →
   ``{"results": [{"seq": ..., "id": "<name>", "changes": [{"rev": ...}], "deleted"?: true}],
   "last_seq": ...}``. ``since=now`` answers no results and the current ``last_seq`` (a fresh
   cursor starts there: no backfill). The sequence is an opaque token: npm reset it when it
   replaced the replica in 2021, so it is stored and sent back verbatim, never compared.
2. A change only names a document, so each changed name is resolved with
   ``GET {registry}/<name>`` (scoped: ``@scope%2fname``): ``time`` maps every version ever
   published (also ``created``/``modified``) to an ISO timestamp, ``versions`` lists the ones that
   still exist and ``time.unpublished`` marks a package removed entirely. A change is a publish
   when versions were published within :data:`PUBLISH_WINDOW` of ``time.modified``; metadata-only
   changes (dist-tags, deprecations, owners) have none and emit nothing.

Deleted documents and 404s (package gone before we asked) are skipped and counted. A packument that
stays unavailable (5xx after retries) fails the poll without moving the cursor, so nothing is lost.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final, Literal
from urllib.parse import quote

import orjson

from typostream.agents.adapters.feeds.base import FeedEvent, Poll, make_event
from typostream.agents.adapters.feeds.http import FeedHTTP
from typostream.agents.domain.errors import UpstreamHTTPError, UpstreamResponseError
from typostream.agents.domain.metadata import npm_escape
from typostream.agents.domain.vocabulary import REGISTRY_URLS

__all__ = [
    "NPM_REGISTRY_URL",
    "NPM_REPLICATE_URL",
    "Change",
    "ChangesPage",
    "NpmSource",
    "parse_changes",
    "publishes_from_packument",
]

NPM_REPLICATE_URL: Final = REGISTRY_URLS["npm_replicate"]
NPM_REGISTRY_URL: Final = REGISTRY_URLS["npm_registry"]
PUBLISH_WINDOW: Final = timedelta(minutes=15)


@dataclass(frozen=True, slots=True)
class Change:
    seq: Any
    name: str
    deleted: bool


@dataclass(frozen=True, slots=True)
class ChangesPage:
    changes: list[Change]
    last_seq: Any


def parse_changes(body: bytes) -> ChangesPage:
    """Parse one ``_changes`` response; raises :class:`ValueError` when it is not that shape."""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"not JSON: {exc}") from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("results"), list) or "last_seq" not in doc:
        raise ValueError("expected {'results': [...], 'last_seq': ...}")
    changes = [
        Change(seq=row.get("seq"), name=row["id"], deleted=bool(row.get("deleted")))
        for row in doc["results"]
        if isinstance(row, dict) and isinstance(row.get("id"), str) and not row["id"].startswith("_design/")
    ]
    return ChangesPage(changes=changes, last_seq=doc["last_seq"])


def _when(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def publishes_from_packument(doc: Any, name: str, window: timedelta = PUBLISH_WINDOW) -> list[FeedEvent]:
    """The versions a change published: those timed within ``window`` of ``time.modified``.

    Without ``time.modified`` only the newest version counts. Unpublished packages and versions no
    longer in ``versions`` are left out. Raises :class:`ValueError` for a document with no ``time``.
    """
    if not isinstance(doc, dict) or not isinstance(doc.get("time"), dict):
        raise ValueError("packument has no 'time' object")
    times: dict[str, Any] = doc["time"]
    if "unpublished" in times:
        return []
    existing = doc.get("versions")
    published = {
        version: when
        for version, raw in times.items()
        if version not in ("created", "modified", "unpublished")
        and (when := _when(raw)) is not None
        and (not isinstance(existing, dict) or version in existing)
    }
    if not published:
        return []
    modified = _when(times.get("modified"))
    if modified is None:
        newest = max(published, key=lambda v: published[v])
        chosen = {newest: published[newest]}
    else:
        chosen = {v: t for v, t in published.items() if t >= modified - window}
    doc_name = doc.get("name")
    real_name = doc_name if isinstance(doc_name, str) and doc_name else name
    return [make_event("npm", real_name, v, t) for v, t in sorted(chosen.items(), key=lambda kv: kv[1])]


class NpmSource:
    """Follows ``_changes``. Cursor: ``{"since": <opaque last_seq>}``; ``start`` when there is none."""

    registry: Literal["npm"] = "npm"

    def __init__(
        self,
        replicate_url: str = NPM_REPLICATE_URL,
        registry_url: str = NPM_REGISTRY_URL,
        http: FeedHTTP | None = None,
        *,
        start: str = "now",
        concurrency: int = 8,
    ) -> None:
        self.replicate_url = replicate_url.rstrip("/")
        self.registry_url = registry_url.rstrip("/")
        self.http = http or FeedHTTP()
        self.start = start
        self._slots = asyncio.Semaphore(max(1, concurrency))

    async def close(self) -> None:
        await self.http.close()

    def changes_url(self, since: Any, limit: int) -> str:
        return f"{self.replicate_url}/_changes?since={quote(str(since), safe='')}&limit={limit}"

    def packument_url(self, name: str) -> str:
        return f"{self.registry_url}/{npm_escape(name)}"

    async def poll(self, cursor: dict[str, Any], limit: int) -> Poll:
        since = cursor.get("since", self.start)
        url = self.changes_url(since, limit)
        body = await self.http.get(url, accept="application/json")
        assert body is not None
        try:
            page = parse_changes(body)
        except ValueError as exc:
            raise UpstreamResponseError(str(exc), url) from exc
        # One packument per name, even when a name changed several times in the page.
        names = list(dict.fromkeys(c.name for c in page.changes if not c.deleted))
        deleted = sum(1 for c in page.changes if c.deleted)
        notes: list[str] = []
        resolved = await asyncio.gather(*(self._publishes(n, notes) for n in names))
        events = sorted((e for batch in resolved for e in batch), key=lambda e: e["created_date"])
        skipped = deleted + sum(1 for batch in resolved if not batch)
        return Poll(
            events=events,
            cursor={"since": page.last_seq},
            more=len(page.changes) >= limit > 0 and since != "now",
            skipped=skipped,
            notes=notes,
        )

    async def _publishes(self, name: str, notes: list[str]) -> list[FeedEvent]:
        url = self.packument_url(name)
        async with self._slots:
            try:
                body = await self.http.get(url, accept="application/json", missing_ok=True)
            except UpstreamHTTPError as exc:  # 401/403/410...: skip this package, keep the feed moving
                notes.append(f"{name}: HTTP {exc.status}")
                return []
        if body is None:  # 404: deleted or unpublished since the change
            return []
        try:
            return publishes_from_packument(orjson.loads(body), name)
        except (orjson.JSONDecodeError, ValueError) as exc:
            notes.append(f"{name}: unexpected packument ({exc})")
            return []
