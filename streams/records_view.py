"""Pure helpers for ``typostream dlq`` and ``typostream threats`` (no Kafka here).

Decoding a dead-letter record (``schemas/dlq_record.schema.json``) back to its original bytes
(or the prefix of them a record keeps when the original was too large to carry, ``truncated``),
a printable preview of those bytes, the severity filter and the de-duplication of threats by
their deterministic ``id`` (the threats topic is written at least once).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import unicodedata
from collections import Counter, OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

SEVERITIES: tuple[str, ...] = ("low", "medium", "high", "critical")
DLQ_FIELDS = ("reason", "error", "source_topic", "source_partition", "source_offset", "original_b64")


@dataclass(frozen=True)
class DlqEntry:
    """One dead-letter record, where it sits on the DLQ topic, and the original message."""

    partition: int
    offset: int
    record: dict[str, Any]
    original: bytes
    original_key: bytes | None

    @property
    def reason(self) -> str:
        return str(self.record["reason"])

    @property
    def rejected_at(self) -> str:
        return str(self.record.get("rejected_at") or "")

    @property
    def original_size(self) -> int:
        """Length of the complete original (``original`` may hold only its first bytes)."""
        size = self.record.get("original_size")
        return size if isinstance(size, int) else len(self.original)

    @property
    def truncated(self) -> bool:
        """The record keeps only a prefix of the original or of its key: it cannot be replayed."""
        return bool(self.record.get("original_truncated") or self.record.get("original_key_truncated"))

    def as_json(self) -> dict[str, Any]:
        """The stored record plus its DLQ position and the original decoded as text."""
        return {
            "dlq_partition": self.partition,
            "dlq_offset": self.offset,
            **self.record,
            "original_text": self.original.decode("utf-8", errors="replace"),
        }


def _b64decode(value: Any, name: str) -> bytes:
    if not isinstance(value, str):
        raise ValueError(f"{name} is not a base64 string")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"{name} is not valid base64") from exc


def decode_dlq(value: bytes | None, partition: int, offset: int) -> DlqEntry:
    """Parse one DLQ message; ``ValueError`` when it is not a dead-letter record."""
    if not value:
        raise ValueError("empty message")
    try:
        record = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        raise ValueError("not JSON") from exc
    if not isinstance(record, dict):
        raise ValueError("not a JSON object")
    missing = [name for name in DLQ_FIELDS if name not in record]
    if missing:
        raise ValueError(f"missing {', '.join(missing)}")
    if not isinstance(record["reason"], str):
        raise ValueError("reason is not a string")
    key_b64 = record.get("original_key_b64")
    key = None if key_b64 is None else _b64decode(key_b64, "original_key_b64")
    entry = DlqEntry(partition, offset, record, _b64decode(record["original_b64"], "original_b64"), key)
    _check_original(entry)
    return entry


_TYPED_FIELDS: tuple[tuple[str, type, str], ...] = (
    ("original_size", int, "an integer"),
    ("original_sha256", str, "a string"),
    ("original_truncated", bool, "a boolean"),
    ("original_key_truncated", bool, "a boolean"),
)


def _check_original(entry: DlqEntry) -> None:
    """A complete original must match the size and sha256 recorded with it; a prefix must be shorter.

    Records written before those fields existed lack them and always hold the complete original.
    """
    record, original = entry.record, entry.original
    for name, kind, noun in _TYPED_FIELDS:
        value = record.get(name)
        if value is not None and (not isinstance(value, kind) or (kind is int and isinstance(value, bool))):
            raise ValueError(f"{name} is not {noun}")
    size = record.get("original_size")
    if record.get("original_truncated"):
        if size is None or len(original) >= size:
            raise ValueError("original_truncated, but original_b64 is not shorter than original_size")
    elif size is not None and size != len(original):
        raise ValueError(f"original_b64 holds {len(original)} bytes, original_size says {size}")
    elif "original_sha256" in record and hashlib.sha256(original).hexdigest() != record["original_sha256"]:
        raise ValueError("original_b64 does not match original_sha256")


def preview(data: bytes, width: int = 60) -> str:
    """UTF-8 (bad bytes replaced) on one line: control characters escaped, cut to ``width`` with '…'."""
    text = data.decode("utf-8", errors="replace")
    shown = "".join(
        ch if unicodedata.category(ch)[0] != "C" else ch.encode("unicode_escape").decode("ascii")
        for ch in text
    )
    if len(shown) <= width:
        return shown
    return shown[: max(width - 1, 0)] + "…"


def count_by_reason(entries: Iterable[DlqEntry]) -> dict[str, int]:
    """Reason → count, most frequent first (ties by name)."""
    counts = Counter(entry.reason for entry in entries)
    return dict(sorted(counts.items(), key=lambda item: (-item[1], item[0])))


def severity_rank(severity: str) -> int:
    """Index in ``SEVERITIES``; ``ValueError`` for anything else."""
    try:
        return SEVERITIES.index(severity)
    except ValueError:
        raise ValueError(f"unknown severity {severity!r} (one of {', '.join(SEVERITIES)})") from None


def meets_severity(threat: Mapping[str, Any], minimum: str) -> bool:
    """True when the threat's severity is at least ``minimum``; unknown severities never pass."""
    floor = severity_rank(minimum)
    severity = threat.get("severity")
    return isinstance(severity, str) and severity in SEVERITIES and SEVERITIES.index(severity) >= floor


class Deduplicator:
    """Remembers the last ``capacity`` threat ids; ``first(threat)`` is True once per id."""

    def __init__(self, capacity: int = 100_000) -> None:
        if capacity < 1:
            raise ValueError("capacity must be positive")
        self.capacity = capacity
        self._seen: OrderedDict[str, None] = OrderedDict()

    def first(self, threat: Mapping[str, Any]) -> bool:
        threat_id = threat.get("id")
        if not isinstance(threat_id, str):
            return True  # nothing to de-duplicate on: show it
        if threat_id in self._seen:
            self._seen.move_to_end(threat_id)
            return False
        self._seen[threat_id] = None
        if len(self._seen) > self.capacity:
            self._seen.popitem(last=False)
        return True


def dedupe_threats(threats: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Threats in order, each ``id`` kept once (the first delivery wins)."""
    seen = Deduplicator(capacity=2**62)
    return [threat for threat in threats if seen.first(threat)]


def threat_display_row(threat: Mapping[str, Any]) -> tuple[str, ...]:
    """time, registry, package@version, type, technique, target, severity, risk (missing → '')."""
    package = threat.get("package") if isinstance(threat.get("package"), dict) else {}
    detail = threat.get("threat") if isinstance(threat.get("threat"), dict) else {}
    assert isinstance(package, dict) and isinstance(detail, dict)
    risk = detail.get("risk_score")
    return (
        str(threat.get("timestamp", "")),
        str(package.get("registry", "")),
        f"{package.get('name', '')}@{package.get('version', '')}",
        str(threat.get("type", "")),
        str(detail.get("technique", "")),
        str(detail.get("target", "")),
        str(threat.get("severity", "")),
        "" if risk is None else str(risk),
    )
