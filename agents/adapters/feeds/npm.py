"""npm source: the CouchDB changes feed of the public replica, resolved through packuments.

API relied on (npm's replication API as changed on 2025-05-29: GitHub changelog "Changes and
deprecation notice for npm replication APIs", 2025-02-26, and the migration notes in
github.com/orgs/community/discussions/152515; CouchDB's ``/{db}/_changes`` reference,
docs.couchdb.org/en/stable/api/database/changes.html; npm's registry API,
github.com/npm/registry/blob/main/docs/REGISTRY-API.md):

1. ``GET {replicate}/`` → database info; ``update_seq`` is the newest sequence (fallback:
   ``last_seq`` of ``_changes?descending=true&limit=1``). A fresh cursor starts there (no
   backfill): ``since=now`` belonged to the live feeds the 2025 API dropped, and ``--npm-since``
   (``start``) may name another sequence to start from (``0``: everything).
2. ``GET {replicate}/_changes?since=<seq>&limit=<n>`` (``limit`` ≤ 10000; no ``include_docs``, no
   ``feed=continuous``) → ``{"results": [{"seq": ..., "id": "<name>", "changes": [{"rev":
   "<gen>-<hash>"}], "deleted"?: true}], "last_seq": ..., "pending"?: n}``. The sequence is stored
   and sent back verbatim (npm reset it when it replaced the replica in 2021). A cursor the replica
   rejects (HTTP 400/410: malformed or expired sequence) is re-initialised at ``update_seq``; the
   skipped range is reported (note + ``typostream_feed_errors_total{kind="cursor_reset"}``) because
   nothing can replay it.
3. Each changed name is resolved with ``GET {registry}/<name>`` (scoped: ``@scope%2fname``), with
   ``If-None-Match`` from the ETag of the last answer (package-feeds' npm feed does the same). In
   the packument, ``time`` maps each version to its publish time (plus ``created``/``modified``),
   ``versions`` lists the ones that still exist, ``time.unpublished`` marks a package removed
   entirely and ``_rev`` is the document revision. The registry's CDN can lag the changes feed by
   seconds: a packument whose ``_rev`` generation is older than the change's is re-fetched on the
   following polls (``pending`` in the cursor) for up to ``stale_retry_s`` before it is taken as is.

Which versions a change published: those published since the feed was last caught up
(``caught_up_at`` in the cursor, minus :data:`PUBLISH_WINDOW` for replication lag and clock skew)
plus those within :data:`PUBLISH_WINDOW` of ``time.modified``. CouchDB lists a changed document once,
at its newest sequence, so after downtime every version published meanwhile is still found (ids
drop the ones already sent). Catch-up bound: none in time (the replica keeps each document's latest
change); throughput is one ``_changes`` page (``--limit``, ≤ 10000 changes) plus its packuments per
request round, back to back while pages are full.

Deleted documents and 404s are skipped and counted. A packument that stays unavailable is retried on
later polls (``pending``) while the feed moves on; if every packument of a poll fails, the poll fails
without moving the cursor, so nothing is lost.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Literal
from urllib.parse import quote

import orjson

from typostream.agents.adapters.feeds.base import FeedEvent, Poll, make_event, parse_rfc3339, rfc3339_utc
from typostream.agents.adapters.feeds.http import FeedHTTP
from typostream.agents.domain.errors import (
    UpstreamHTTPError,
    UpstreamResponseError,
    UpstreamUnavailableError,
)
from typostream.agents.domain.metadata import npm_escape
from typostream.agents.domain.vocabulary import REGISTRY_URLS

__all__ = [
    "NPM_REGISTRY_URL",
    "NPM_REPLICATE_URL",
    "Change",
    "ChangesPage",
    "NpmSource",
    "Packument",
    "parse_changes",
    "parse_update_seq",
    "publishes_from_packument",
    "summarize_packument",
]

NPM_REPLICATE_URL: Final = REGISTRY_URLS["npm_replicate"]
NPM_REGISTRY_URL: Final = REGISTRY_URLS["npm_registry"]
PUBLISH_WINDOW: Final = timedelta(minutes=15)
REJECTED_CURSOR: Final = frozenset({400, 410})
"""``_changes`` statuses meaning "this ``since`` is not valid here": re-initialise the cursor."""
MAX_PENDING: Final = 10_000
"""Packuments carried to later polls at most; beyond that the poll fails instead of moving on."""
UNAVAILABLE_RETRY_S: Final = 3600.0
"""How long a packument that keeps failing (5xx/timeouts) is retried before it is given up."""
MAX_LIMIT: Final = 10_000
"""npm's ``_changes`` answers at most this many rows per request."""
_JSON: Final = "application/json"


@dataclass(frozen=True, slots=True)
class Change:
    seq: Any
    name: str
    deleted: bool
    rev: str | None = None


@dataclass(frozen=True, slots=True)
class ChangesPage:
    changes: list[Change]
    last_seq: Any
    pending: int | None = None


def _json(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"not JSON: {exc}") from exc


def rev_generation(rev: Any) -> int | None:
    """``"37-492fb1..."`` -> 37 (CouchDB revisions count up per update)."""
    if not isinstance(rev, str):
        return None
    head, _, _ = rev.partition("-")
    return int(head) if head.isdigit() else None


def parse_changes(body: bytes) -> ChangesPage:
    """Parse one ``_changes`` response; raises :class:`ValueError` when it is not that shape."""
    doc = _json(body)
    if not isinstance(doc, dict) or not isinstance(doc.get("results"), list) or "last_seq" not in doc:
        raise ValueError("expected {'results': [...], 'last_seq': ...}")
    changes: list[Change] = []
    for row in doc["results"]:
        if (
            not isinstance(row, dict)
            or not isinstance(row.get("id"), str)
            or row["id"].startswith("_design/")
        ):
            continue
        revs = [c.get("rev") for c in row.get("changes") or [] if isinstance(c, dict)]
        known = [(gen, r) for r in revs if (gen := rev_generation(r)) is not None]
        rev = max(known)[1] if known else None
        changes.append(Change(seq=row.get("seq"), name=row["id"], deleted=bool(row.get("deleted")), rev=rev))
    pending = doc.get("pending")
    return ChangesPage(
        changes=changes,
        last_seq=doc["last_seq"],
        pending=pending if isinstance(pending, int) and not isinstance(pending, bool) else None,
    )


def parse_update_seq(body: bytes) -> Any:
    """``update_seq`` of a CouchDB database-info document (``GET /{db}``)."""
    doc = _json(body)
    if not isinstance(doc, dict) or doc.get("update_seq") in (None, ""):
        raise ValueError("expected a database info object with 'update_seq'")
    return doc["update_seq"]


@dataclass(frozen=True, slots=True)
class Packument:
    """What the feed needs of a packument (cached per name with its ETag)."""

    name: str
    rev: str | None
    unpublished: bool
    modified: datetime | None
    published: dict[str, datetime]
    """Versions that still exist -> publish time."""


def summarize_packument(doc: Any, name: str) -> Packument:
    """Raises :class:`ValueError` for a document with no ``time`` object."""
    if not isinstance(doc, dict) or not isinstance(doc.get("time"), dict):
        raise ValueError("packument has no 'time' object")
    times: dict[str, Any] = doc["time"]
    existing = doc.get("versions")
    published = {
        version: when
        for version, raw in times.items()
        if version not in ("created", "modified", "unpublished")
        and (when := parse_rfc3339(raw)) is not None
        and (not isinstance(existing, dict) or version in existing)
    }
    doc_name = doc.get("name")
    rev = doc.get("_rev")
    return Packument(
        name=doc_name if isinstance(doc_name, str) and doc_name else name,
        rev=rev if isinstance(rev, str) else None,
        unpublished="unpublished" in times,
        modified=parse_rfc3339(times.get("modified")),
        published=published,
    )


def publishes(
    packument: Packument, since: datetime | None = None, window: timedelta = PUBLISH_WINDOW
) -> list[FeedEvent]:
    """The versions a change published, oldest first: those timed within ``window`` of
    ``time.modified`` (only the newest without it), plus every version published at or after
    ``since`` (the feed's last caught-up time, already minus its slack). Unpublished packages and
    versions no longer in ``versions`` are left out."""
    published = packument.published
    if packument.unpublished or not published:
        return []
    if packument.modified is None:
        newest = max(published, key=lambda v: published[v])
        chosen = {newest: published[newest]}
    else:
        floor = packument.modified - window
        chosen = {v: t for v, t in published.items() if t >= floor}
    if since is not None:
        chosen.update({v: t for v, t in published.items() if t >= since})
    return [make_event("npm", packument.name, v, t) for v, t in sorted(chosen.items(), key=lambda kv: kv[1])]


def publishes_from_packument(
    doc: Any, name: str, window: timedelta = PUBLISH_WINDOW, since: datetime | None = None
) -> list[FeedEvent]:
    """:func:`publishes` of a raw packument document (raises :class:`ValueError` without ``time``)."""
    return publishes(summarize_packument(doc, name), since, window)


@dataclass(frozen=True, slots=True)
class _Wanted:
    rev: str | None
    first_seen: float
    reason: str = "stale"  # or "unavailable"


@dataclass(frozen=True, slots=True)
class _Outcome:
    events: list[FeedEvent]
    retry: _Wanted | None = None  # keep in ``pending`` for the next poll
    skipped: bool = False
    note: str = ""
    error: str = ""


class NpmSource:
    """Follows ``_changes``. Cursor: ``{"since": <opaque seq>, "caught_up_at": <RFC 3339>,
    "pending": {name: {"rev", "first_seen", "reason"}}}``; ``start`` when there is no ``since``."""

    registry: Literal["npm"] = "npm"

    def __init__(
        self,
        replicate_url: str = NPM_REPLICATE_URL,
        registry_url: str = NPM_REGISTRY_URL,
        http: FeedHTTP | None = None,
        *,
        start: str = "now",
        concurrency: int = 8,
        stale_retry_s: float = 300.0,
        slack: timedelta = PUBLISH_WINDOW,
        cache_size: int = 4096,
    ) -> None:
        self.replicate_url = replicate_url.rstrip("/")
        self.registry_url = registry_url.rstrip("/")
        self.http = http or FeedHTTP(registry="npm")
        if not self.http.registry:
            self.http.registry = "npm"
        self.start = start
        self.stale_retry_s = stale_retry_s
        self.slack = slack
        self._slots = asyncio.Semaphore(max(1, concurrency))
        self._cache: OrderedDict[str, tuple[str | None, str | None, Packument]] = OrderedDict()
        self._cache_size = max(0, cache_size)

    async def close(self) -> None:
        await self.http.close()

    def changes_url(self, since: Any, limit: int) -> str:
        return f"{self.replicate_url}/_changes?since={quote(str(since), safe='')}&limit={limit}"

    def packument_url(self, name: str) -> str:
        return f"{self.registry_url}/{npm_escape(name)}"

    async def head_seq(self) -> Any:
        """The replica's current sequence: ``update_seq`` of ``GET {replicate}/``, or else the
        ``last_seq`` of ``_changes?descending=true&limit=1`` (CouchDB's other way to ask)."""
        url = self.replicate_url + "/"
        body = await self.http.get(url, accept=_JSON, missing_ok=True)
        try:
            if body is not None:
                return parse_update_seq(body)
        except ValueError:
            pass
        url = f"{self.replicate_url}/_changes?descending=true&limit=1"
        newest = await self.http.get(url, accept=_JSON)
        assert newest is not None
        try:
            return parse_changes(newest).last_seq
        except ValueError as exc:
            raise UpstreamResponseError(f"no update_seq at {self.replicate_url}/ and {exc}", url) from exc

    async def _changes(self, since: Any, limit: int) -> ChangesPage:
        url = self.changes_url(since, limit)
        fetched = await self.http.fetch(url, accept=_JSON, endpoint="changes")
        assert fetched is not None
        try:
            return parse_changes(fetched.body)
        except ValueError as exc:
            raise UpstreamResponseError(str(exc), url) from exc

    async def poll(self, cursor: dict[str, Any], limit: int) -> Poll:
        limit = max(1, min(limit, MAX_LIMIT))
        notes: list[str] = []
        errors: list[str] = []
        since = cursor.get("since")
        caught_up_at = parse_rfc3339(cursor.get("caught_up_at"))
        if since is None:
            if self.start == "now":
                since = await self.head_seq()
                caught_up_at = datetime.now(UTC)
            else:
                since = self.start
        requested_at = datetime.now(UTC)
        try:
            page = await self._changes(since, limit)
        except UpstreamHTTPError as exc:
            if exc.status not in REJECTED_CURSOR:
                raise
            head = await self.head_seq()
            notes.append(
                f"cursor since={since} rejected (HTTP {exc.status}); restarted at update_seq {head}: "
                "changes in between are not replayed"
            )
            errors.append("cursor_reset")
            since = head
            page = await self._changes(since, limit)

        wanted = self._wanted(cursor.get("pending"), page, requested_at.timestamp())
        deleted = {c.name for c in page.changes if c.deleted}
        for name in deleted:
            wanted.pop(name, None)
        floor = caught_up_at - self.slack if caught_up_at is not None else None
        names = list(wanted)
        outcomes = await asyncio.gather(*(self._resolve(n, wanted[n], floor) for n in names))
        failed = [o for o in outcomes if o.retry is not None and o.retry.reason == "unavailable"]
        if names and len(failed) == len(names):
            raise UpstreamUnavailableError(
                f"every packument of this poll failed ({failed[0].note})", self.registry_url
            )

        pending: dict[str, dict[str, Any]] = {}
        events: list[FeedEvent] = []
        skipped = len(deleted)
        for name, outcome in zip(names, outcomes, strict=True):
            events.extend(outcome.events)
            skipped += outcome.skipped
            if outcome.note:
                notes.append(outcome.note)
            if outcome.error:
                errors.append(outcome.error)
            if outcome.retry is not None:
                retry = outcome.retry
                pending[name] = {"rev": retry.rev, "first_seen": retry.first_seen, "reason": retry.reason}
        if len(pending) > MAX_PENDING:
            raise UpstreamUnavailableError(
                f"{len(pending)} packuments waiting for the registry (over {MAX_PENDING})", self.registry_url
            )
        full = len(page.changes) >= limit > 0
        new_cursor: dict[str, Any] = {"since": page.last_seq}
        position = caught_up_at if full else requested_at
        if position is not None:
            new_cursor["caught_up_at"] = rfc3339_utc(position)
        if pending:
            new_cursor["pending"] = pending
        events.sort(key=lambda e: parse_rfc3339(e["created_date"]) or requested_at)
        return Poll(
            events=events,
            cursor=new_cursor,
            more=full,
            skipped=skipped,
            notes=notes,
            backlog=page.pending if page.pending is not None else (None if full else 0),
            errors=errors,
        )

    @staticmethod
    def _wanted(carried: Any, page: ChangesPage, now: float) -> dict[str, _Wanted]:
        """Names to resolve: those carried over from earlier polls plus this page's (newest rev)."""
        wanted: dict[str, _Wanted] = {}
        if isinstance(carried, dict):
            for name, entry in carried.items():
                if isinstance(name, str) and isinstance(entry, dict):
                    first = entry.get("first_seen")
                    wanted[name] = _Wanted(
                        rev=entry.get("rev") if isinstance(entry.get("rev"), str) else None,
                        first_seen=float(first) if isinstance(first, int | float) else now,
                        reason="unavailable" if entry.get("reason") == "unavailable" else "stale",
                    )
        for change in page.changes:
            if change.deleted:
                continue
            before = wanted.get(change.name)
            first_seen = before.first_seen if before is not None else now
            wanted[change.name] = _Wanted(rev=change.rev, first_seen=first_seen)
        return wanted

    async def _resolve(self, name: str, wanted: _Wanted, floor: datetime | None) -> _Outcome:
        url = self.packument_url(name)
        cached = self._cache.get(name)
        now = time.time()
        async with self._slots:
            try:
                fetched = await self.http.fetch(
                    url,
                    accept=_JSON,
                    etag=cached[0] if cached else None,
                    last_modified=cached[1] if cached else None,
                    missing_ok=True,
                    endpoint="packument",
                )
            except UpstreamHTTPError as exc:  # 401/403/410...: skip this package, keep the feed moving
                return _Outcome([], skipped=True, note=f"{name}: HTTP {exc.status}", error="packument")
            except UpstreamUnavailableError as exc:
                if now - wanted.first_seen >= UNAVAILABLE_RETRY_S:
                    return _Outcome([], skipped=True, note=f"{name}: given up ({exc})", error="packument")
                retry = _Wanted(wanted.rev, wanted.first_seen, "unavailable")
                return _Outcome([], retry=retry, note=f"{name}: retried next poll ({exc})", error="packument")
        if fetched is None:  # 404: deleted or unpublished since the change
            self._cache.pop(name, None)
            return _Outcome([], skipped=True)
        if fetched.not_modified and cached is not None:
            packument = cached[2]
            self._cache.move_to_end(name)
        else:
            try:
                packument = summarize_packument(orjson.loads(fetched.body), name)
            except (orjson.JSONDecodeError, ValueError) as exc:
                return _Outcome(
                    [], skipped=True, note=f"{name}: unexpected packument ({exc})", error="packument"
                )
            self._remember(name, fetched.etag, fetched.last_modified, packument)
        have, want = rev_generation(packument.rev), rev_generation(wanted.rev)
        if have is not None and want is not None and have < want:
            if now - wanted.first_seen < self.stale_retry_s:
                return _Outcome([], retry=_Wanted(wanted.rev, wanted.first_seen, "stale"))
            note = f"{name}: registry still serves rev {packument.rev} (< {wanted.rev}); taken as is"
            return _Outcome(publishes(packument, floor), note=note, error="stale_packument")
        events = publishes(packument, floor)
        return _Outcome(events, skipped=not events)

    def _remember(self, name: str, etag: str | None, last_modified: str | None, packument: Packument) -> None:
        if self._cache_size == 0 or not (etag or last_modified):
            return
        self._cache[name] = (etag, last_modified, packument)
        self._cache.move_to_end(name)
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
