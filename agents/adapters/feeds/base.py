"""What every registry source returns: package-feeds events and the cursor to resume from.

The event is exactly OpenSSF package-feeds' ``feeds.Package`` as it marshals it
(``pkg/feeds/feed.go`` and ``package.schema.json`` in github.com/ossf/package-feeds): all six
fields, ``artifact_id`` empty when the feed has none, ``schema_ver`` ``"1.1"`` (its ``schemaVer``
constant) and ``created_date`` as Go's ``time.Time`` JSON (RFC 3339, UTC ``Z``, fractional seconds
only when non-zero and without trailing zeros: ``2023-03-10T02:17:32Z``, ``...:01.1Z``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final, Literal, Protocol, TypedDict

from typostream.agents.domain.events import event_id_for

__all__ = [
    "SCHEMA_VER",
    "FeedEvent",
    "FeedSource",
    "Poll",
    "event_id",
    "go_rfc3339",
    "make_event",
    "parse_rfc3339",
    "rfc3339_utc",
]

SCHEMA_VER: Final = "1.1"
"""package-feeds' ``schemaVer`` (``pkg/feeds/feed.go``), sent verbatim in every event."""

Registry = Literal["npm", "pypi"]


class FeedEvent(TypedDict):
    """One publish, shaped like ``schemas/package_feeds_event.schema.json`` (OpenSSF package-feeds)."""

    name: str
    version: str
    created_date: str
    type: Registry
    artifact_id: str
    schema_ver: str


def rfc3339_utc(when: datetime) -> str:
    """``2026-11-02T14:00:02.627Z``: the form validation normalises to (and event ids are built on)."""
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def go_rfc3339(when: datetime) -> str:
    """Go's ``time.RFC3339Nano`` in UTC, as package-feeds writes ``created_date``."""
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    when = when.astimezone(UTC)
    text = when.strftime("%Y-%m-%dT%H:%M:%S")
    if when.microsecond:
        text += f".{when.microsecond:06d}".rstrip("0")
    return text + "Z"


def parse_rfc3339(value: Any) -> datetime | None:
    """An aware datetime from an RFC 3339 string (``Z`` or offset), else ``None``."""
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("z", "Z").replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def make_event(registry: Registry, name: str, version: str, created: datetime) -> FeedEvent:
    return {
        "name": name,
        "version": version,
        "created_date": go_rfc3339(created),
        "type": registry,
        "artifact_id": "",
        "schema_ver": SCHEMA_VER,
    }


def event_id(event: FeedEvent) -> str:
    """The pipeline's id of this publish (:func:`typostream.agents.domain.events.event_id_for` on
    the normalised timestamp, as validation computes it), so feed and sinks de-duplicate alike."""
    created = parse_rfc3339(event["created_date"])
    stamp = rfc3339_utc(created) if created is not None else event["created_date"]
    return event_id_for(event["type"], event["name"], event["version"], stamp)


@dataclass
class Poll:
    """One fetch: ``events`` oldest first, the ``cursor`` to save once they are sent, and whether
    the registry has ``more`` right away (a full page), so the poller fetches again without sleeping.
    ``skipped`` counts changes dropped on purpose (deleted/unpublished packages, metadata-only edits).
    ``backlog`` is how many registry changes are known to wait after ``cursor`` (``None``: unknown).
    ``errors`` names problems the source worked around (``kind`` labels of the error metric).
    """

    events: list[FeedEvent]
    cursor: dict[str, Any]
    more: bool = False
    skipped: int = 0
    notes: list[str] = field(default_factory=list)
    backlog: int | None = None
    errors: list[str] = field(default_factory=list)


class FeedSource(Protocol):
    @property
    def registry(self) -> Registry: ...

    async def poll(self, cursor: dict[str, Any], limit: int) -> Poll:
        """Fetch what is new after ``cursor`` (``{}`` on the first run), at most ~``limit`` events."""
        ...

    async def close(self) -> None: ...
