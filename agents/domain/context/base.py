"""What a context detector is and what it is given: the extension point of the context score.

A detector (GuardDog's one heuristic per file) is a small pure class: an ``id``, a
``description``, whether it needs registry metadata, and :meth:`ContextDetector.detect`, which
turns a :class:`PublishContext` into :class:`Signal` s (none when it has nothing to say). The score
(``score.py``) adds up their weights; the registry (``__init__.py``) lists the detectors.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar, Literal

from typostream.agents.domain.metadata import PackageHistory, PackageMetadata

__all__ = [
    "ContextDetector",
    "PublishContext",
    "SeenHistory",
    "Signal",
    "Standing",
    "days_between",
    "parse_time",
]

Standing = Literal["first_release", "first_seen", "later", "unknown"]
"""What is known of a release: the registry lists no earlier one (``first_release``); typostream
saw no earlier version but the registry was not asked (``first_seen``); there were earlier ones
(``later``); nothing is known (``unknown``)."""


@dataclass(frozen=True, slots=True)
class Signal:
    """One piece of context evidence: ``kind`` is ``<detector>.<what>``; ``weight`` is in log-odds
    (positive raises the risk, negative lowers it; see ``tunables.py``)."""

    kind: str
    detail: str
    weight: float

    def to_dict(self) -> dict[str, Any]:
        """``{"kind", "detail", "weight"}``, as listed in a threat event's ``signals``."""
        return {"kind": self.kind, "detail": self.detail, "weight": round(self.weight, 3)}


@dataclass(frozen=True, slots=True)
class SeenHistory:
    """What typostream itself has seen of a package (its ``packages`` table state)."""

    first_seen: str | None = None
    earlier_versions: tuple[str, ...] = ()
    """Versions seen other than the one being judged."""

    @classmethod
    def from_state(cls, state: Mapping[str, Any] | None, version: str) -> SeenHistory:
        """From a packages-table state (``first_seen``, ``versions_seen``); the table may already
        hold the publish being judged (its agent runs beside enrichment), so that version is left out."""
        if not state:
            return cls()
        versions = state.get("versions_seen") or ()
        first = state.get("first_seen")
        return cls(
            first_seen=first if isinstance(first, str) else None,
            earlier_versions=tuple(str(v) for v in versions if str(v) != version),
        )


@dataclass(frozen=True, slots=True)
class PublishContext:
    """Everything the detectors look at for one publish; all but the name are optional.

    ``target`` is the package the name imitates (from the name threat), ``target_metadata`` the
    metadata of its latest version; ``history`` is the registry's view of the whole package,
    ``seen`` the packages table's; ``published_at`` the publish event's time (ISO 8601).
    """

    registry: str
    name: str
    version: str | None = None
    published_at: str | None = None
    target: str | None = None
    metadata: PackageMetadata | None = None
    target_metadata: PackageMetadata | None = None
    history: PackageHistory | None = None
    seen: SeenHistory | None = None

    def standing(self) -> Standing:
        """What is known of this release (registry history first, then the packages table)."""
        if self.history is not None and self.version is not None:
            return "later" if self.history.before(self.version) else "first_release"
        if self.seen is not None:
            return "later" if self.seen.earlier_versions else "first_seen"
        return "unknown"

    def released_at(self) -> str | None:
        """When this version was published: the registry's time, else the publish event's."""
        if self.history is not None and self.version is not None:
            release = self.history.release(self.version)
            if release is not None and release.published_at:
                return release.published_at
        if self.metadata is not None and self.metadata.published_at:
            return self.metadata.published_at
        return self.published_at


class ContextDetector(ABC):
    """One context heuristic. Subclasses declare identity and implement :meth:`detect`."""

    id: ClassVar[str]
    """Short id, also the first part of its signals' ``kind`` (``install_script``)."""
    description: ClassVar[str]
    needs_metadata: ClassVar[bool] = True
    """Skipped when the publish has no registry metadata (name-only callers, metadata off)."""

    @abstractmethod
    def detect(self, context: PublishContext) -> list[Signal]:
        """The signals this heuristic sees in ``context`` (empty when none)."""

    def signal(self, what: str, detail: str, weight: float) -> Signal:
        return Signal(f"{self.id}.{what}", detail, weight)


def parse_time(value: str | None) -> datetime | None:
    """An ISO 8601 time (``Z`` or an offset; naive times are UTC), None when absent or malformed."""
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed


def days_between(earlier: str | None, later: str | None) -> float | None:
    """Days from ``earlier`` to ``later`` (None when either time is missing or malformed)."""
    start, end = parse_time(earlier), parse_time(later)
    if start is None or end is None:
        return None
    return (end - start).total_seconds() / 86400
