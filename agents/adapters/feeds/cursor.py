"""Where a poller got to: ``<data_dir>/feeds/<registry>.json``, written atomically after each poll.

The file holds the registry's own cursor (npm: the opaque ``since`` sequence, when the feed was last
caught up and packuments still to re-fetch; PyPI: the journal serial, the newest RSS ``pubDate`` and
the RSS-sent ids the journal has not reached yet) plus the ids of the most recently sent events, so
a restart neither re-publishes nor skips.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import orjson

from typostream.agents.domain.errors import CursorFileError

__all__ = ["CursorState", "CursorStore", "RecentIds"]

RECENT_IDS: Final = 10_000
"""Event ids remembered (in memory and in the cursor file) to drop re-fetched publishes."""


@dataclass
class CursorState:
    cursor: dict[str, Any] = field(default_factory=dict)
    recent_ids: list[str] = field(default_factory=list)


class CursorStore:
    """Load/save one registry's :class:`CursorState` as JSON."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @classmethod
    def for_registry(cls, data_dir: Path, registry: str) -> CursorStore:
        return cls(data_dir / "feeds" / f"{registry}.json")

    def load(self) -> CursorState:
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return CursorState()
        except OSError as exc:
            raise CursorFileError(self.path, exc.strerror or str(exc)) from exc
        try:
            doc = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise CursorFileError(self.path, f"not JSON ({exc}); delete it to start afresh") from exc
        if not isinstance(doc, dict) or not isinstance(doc.get("cursor", {}), dict):
            raise CursorFileError(self.path, "expected an object with a 'cursor' object")
        ids = doc.get("recent_ids", [])
        return CursorState(
            cursor=dict(doc.get("cursor", {})),
            recent_ids=[i for i in ids if isinstance(i, str)] if isinstance(ids, list) else [],
        )

    def save(self, state: CursorState) -> None:
        doc = {
            "cursor": state.cursor,
            "recent_ids": state.recent_ids,
            "updated_at": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        }
        tmp = self.path.with_suffix(".json.tmp")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_bytes(orjson.dumps(doc, option=orjson.OPT_INDENT_2))
            os.replace(tmp, self.path)
        except OSError as exc:
            raise CursorFileError(self.path, exc.strerror or str(exc)) from exc


class RecentIds:
    """A bounded, insertion-ordered set of event ids (oldest evicted first)."""

    def __init__(self, ids: Iterable[str] = (), maxlen: int = RECENT_IDS) -> None:
        self.maxlen = maxlen
        self._ids: OrderedDict[str, None] = OrderedDict()
        for event_id in ids:
            self.add(event_id)

    def __contains__(self, event_id: object) -> bool:
        return event_id in self._ids

    def __len__(self) -> int:
        return len(self._ids)

    def add(self, event_id: str) -> None:
        self._ids[event_id] = None
        self._ids.move_to_end(event_id)
        while len(self._ids) > self.maxlen:
            self._ids.popitem(last=False)

    def to_list(self) -> list[str]:
        return list(self._ids)
