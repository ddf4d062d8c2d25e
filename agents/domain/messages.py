"""Build the messages and rows the pipeline emits (pure; shapes are fixed by ``schemas/``)."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from typostream.agents.domain.detection import Threat
from typostream.agents.domain.errors import InvalidEventError, InvalidRowError
from typostream.agents.domain.events import PublishEvent
from typostream.agents.domain.vocabulary import SEVERITY_RANK, max_severity

DETECTOR_VERSION = "1"

_MITIGATIONS: dict[str, list[str]] = {
    "typosquat": [
        "Verify the package name against the intended dependency before installing.",
        "Pin dependencies with hashes (pip --require-hashes, npm ci with a lockfile).",
        "Report the package to the registry's security team if it imitates another project.",
    ],
    "dependency_confusion": [
        "Reserve internal names on the public registry or use a scoped/private index only.",
        "Configure the installer to resolve internal names from the private registry exclusively.",
    ],
}
_DEFAULT_MITIGATIONS = ["Review the package before installing it."]


def utc_now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _b64(data: bytes | None) -> str | None:
    return None if data is None else base64.b64encode(data).decode("ascii")


DLQ_ORIGINAL_MAX_BYTES = 256 * 1024
"""A dead-letter record keeps at most this much of the original message (the complete message when it is
shorter, which every message under the input size limit is). Its base64 is 4/3 of that, so a record stays
far below Kafka's default 1 MB message limit (the producer's ``max_request_size``) whatever came in."""
DLQ_KEY_MAX_BYTES = 1024
"""Likewise for the original key (it also becomes the DLQ message's key)."""
DLQ_ERROR_MAX_CHARS = 2000


def dead_letter_key(key: bytes | None) -> bytes | None:
    """The DLQ message's key: the original key, cut to :data:`DLQ_KEY_MAX_BYTES`."""
    return None if key is None else key[:DLQ_KEY_MAX_BYTES]


def dead_letter(
    error: InvalidEventError,
    value: bytes | None,
    key: bytes | None,
    topic: str,
    partition: int,
    offset: int,
    rejected_at: str | None = None,
) -> dict[str, Any]:
    """A DLQ record keeping the original bytes, so a fixed message can be replayed.

    Whatever the original's size, the record fits a Kafka message: an original longer than
    :data:`DLQ_ORIGINAL_MAX_BYTES` keeps its first bytes only (``original_truncated``), with its
    full ``original_size`` and ``original_sha256`` to recognise it; such a record cannot be replayed.
    """
    original = value or b""
    kept = original[:DLQ_ORIGINAL_MAX_BYTES]
    return {
        "reason": error.reason,
        "error": error.detail[:DLQ_ERROR_MAX_CHARS],
        "source_topic": topic,
        "source_partition": partition,
        "source_offset": offset,
        "original_b64": _b64(kept) or "",
        "original_key_b64": _b64(dead_letter_key(key)),
        "original_size": len(original),
        "original_sha256": hashlib.sha256(original).hexdigest(),
        "original_truncated": len(kept) < len(original),
        "original_key_truncated": key is not None and len(key) > DLQ_KEY_MAX_BYTES,
        "rejected_at": rejected_at or utc_now_iso(),
    }


def event_message(event: PublishEvent, partition: int, offset: int, received_at: str) -> dict[str, Any]:
    """The validated event as it travels on ``typostream.events``."""
    return {
        "event_id": event.event_id,
        "registry": event.registry,
        "name": event.name,
        "version": event.version,
        "created_date": event.created_date,
        "artifact_id": event.artifact_id,
        "schema_ver": event.schema_ver,
        "received_at": received_at,
        "source_partition": partition,
        "source_offset": offset,
    }


def analysed_message(event: dict[str, Any], verdict: str, threats: Sequence[Threat]) -> dict[str, Any]:
    """The event plus its verdict, as written to ``typostream.analysed`` (and ClickHouse ``events``)."""
    return {
        **event,
        "verdict": verdict,
        "threat_count": len(threats),
        "max_severity": max_severity([t.severity for t in threats]),
    }


def threat_id_for(event_id: str, threat: Threat) -> str:
    """Same event + same finding → same id: consumers de-duplicate at-least-once deliveries by it."""
    digest = hashlib.blake2b(digest_size=16)
    for part in (event_id, threat.type, threat.technique, threat.target):
        digest.update(part.encode())
        digest.update(b"\x00")
    return digest.hexdigest()


def threat_event(event: dict[str, Any], threat: Threat, detected_at: str) -> dict[str, Any]:
    """A SecurityEvent-shaped threat for ``typostream.threats``.

    A threat scored with publish context (``context.ContextThreat``) lists every signal twice: as
    ``threat.signals`` (``{kind, detail, weight}``, for machines) and, after the threat's own
    evidence, one ``threat.evidence`` line each (so the ClickHouse ``evidence`` column, which joins
    that list, keeps them without a column of its own). Other threats have no ``signals`` key.
    """
    confidence = round(min(1.0, max(0.0, float(threat.score))), 4)
    signals = getattr(threat, "signals", ())
    evidence = [threat.evidence, *(f"{s.kind}: {s.detail} ({s.weight:+.2f})" for s in signals)]
    message: dict[str, Any] = {
        "id": threat_id_for(event["event_id"], threat),
        "timestamp": detected_at,
        "type": threat.type,
        "severity": threat.severity,
        "source": "typostream",
        "package": {"name": event["name"], "version": event["version"], "registry": event["registry"]},
        "threat": {
            "type": threat.type,
            "target": threat.target,
            "technique": threat.technique,
            "confidence": confidence,
            "risk_score": risk_score(confidence, threat.severity),
            "evidence": evidence,
            "mitigations": _MITIGATIONS.get(threat.type, _DEFAULT_MITIGATIONS),
        },
        "metadata": {
            "detection_method": f"typostream.{threat.type}.{threat.technique}",
            "correlation_id": event["event_id"],
            "detector_version": DETECTOR_VERSION,
        },
    }
    if signals:
        message["threat"]["signals"] = [s.to_dict() for s in signals]
    return message


def risk_score(confidence: float, severity: str) -> int:
    """0–100: confidence scaled into the severity's band, so sorting by risk keeps severity order."""
    band = SEVERITY_RANK.get(severity, 0)
    return min(100, round(25 * band + 25 * confidence))


def threat_db_row(message: dict[str, Any]) -> dict[str, Any]:
    """Flatten a threat event into a ClickHouse ``threats`` row."""
    threat = message["threat"]
    package = message["package"]
    return {
        "threat_id": message["id"],
        "event_id": message["metadata"]["correlation_id"],
        "detected_at": message["timestamp"],
        "registry": package["registry"],
        "name": package["name"],
        "version": package["version"],
        "threat_type": threat["type"],
        "target": threat["target"],
        "technique": threat["technique"],
        "severity": message["severity"],
        "confidence": threat["confidence"],
        "risk_score": threat["risk_score"],
        "evidence": "; ".join(threat["evidence"]),
    }


def threat_db_rows(messages: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """:func:`threat_db_row` for a batch; a message that is no threat event raises InvalidRowError."""
    try:
        return [threat_db_row(dict(m)) for m in messages]
    except (KeyError, TypeError, AttributeError) as exc:
        raise InvalidRowError(f"not a threat event: {type(exc).__name__}: {exc}") from None


def update_package_state(previous: dict[str, Any] | None, event: dict[str, Any]) -> dict[str, Any]:
    """Fold one publish into the per-package state kept in the ``packages`` table."""
    state = dict(previous or {})
    versions = list(state.get("versions_seen", []))
    if event["version"] not in versions:
        versions.append(event["version"])
    first_seen = state.get("first_seen") or event["created_date"]
    return {
        "registry": event["registry"],
        "name": event["name"],
        "first_seen": min(first_seen, event["created_date"]),
        "last_version": event["version"],
        "last_event_id": event["event_id"],
        "versions_seen": versions[-100:],  # bounded: a package with thousands of releases stays small
        "last_threat": state.get("last_threat"),
    }


def with_last_threat(state: dict[str, Any], threat: dict[str, Any] | None) -> dict[str, Any]:
    if threat is None:
        return state
    return {
        **state,
        "last_threat": {
            "id": threat["id"],
            "type": threat["type"],
            "target": threat["threat"]["target"],
            "severity": threat["severity"],
            "timestamp": threat["timestamp"],
        },
    }
