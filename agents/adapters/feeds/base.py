"""What every registry source returns: package-feeds events and the cursor to resume from."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final, Literal, Protocol, TypedDict

__all__ = ["SCHEMA_VER", "FeedEvent", "FeedSource", "Poll", "make_event", "rfc3339_utc"]

SCHEMA_VER: Final = "1.1.0"

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
    """``2026-11-02T14:00:02.627Z``: the form validation normalises to, so event ids agree."""
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def make_event(registry: Registry, name: str, version: str, created: datetime) -> FeedEvent:
    return {
        "name": name,
        "version": version,
        "created_date": rfc3339_utc(created),
        "type": registry,
        "artifact_id": "",
        "schema_ver": SCHEMA_VER,
    }


@dataclass
class Poll:
    """One fetch: ``events`` oldest first, the ``cursor`` to save once they are sent, and whether
    the registry has ``more`` right away (a full page), so the poller fetches again without sleeping.
    ``skipped`` counts changes dropped on purpose (deleted/unpublished packages, metadata-only edits).
    """

    events: list[FeedEvent]
    cursor: dict[str, Any]
    more: bool = False
    skipped: int = 0
    notes: list[str] = field(default_factory=list)


class FeedSource(Protocol):
    @property
    def registry(self) -> Registry: ...

    async def poll(self, cursor: dict[str, Any], limit: int) -> Poll:
        """Fetch what is new after ``cursor`` (``{}`` on the first run), at most ~``limit`` changes."""
        ...

    async def close(self) -> None: ...
