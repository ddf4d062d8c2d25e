"""Validate raw ``registry.publish`` messages into publish events (pure; no Kafka).

The message schema is data (``schemas/package_feeds_event.schema.json``); this module only
adds what JSON Schema cannot say: size limits, decoding and the deterministic event id.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import fastjsonschema
import orjson

from typostream.agents.domain.detection.names import normalize
from typostream.agents.domain.errors import DeadLetterReason, InvalidEventError
from typostream.schemas import load_json_schema

INPUT_SCHEMA = "package_feeds_event"


@dataclass(frozen=True, slots=True)
class PublishEvent:
    """A validated publish of ``name@version`` to ``registry``."""

    event_id: str
    registry: str
    name: str
    version: str
    created_date: str
    artifact_id: str
    schema_ver: str

    @property
    def key(self) -> str:
        """Partition/table key: one package's events stay on one partition, in order."""
        return package_key(self.registry, self.name)


def package_key(registry: str, name: str) -> str:
    """``<registry>:<normalized name>``: ``Foo_Bar`` and ``foo-bar`` are one PyPI package (PEP 503)."""
    return f"{registry}:{normalize(name, registry)}"


def event_id_for(registry: str, name: str, version: str, created_date: str) -> str:
    """Same publish → same id, so replays and re-deliveries de-duplicate downstream."""
    digest = hashlib.blake2b(digest_size=16)
    for part in (registry, name, version, created_date):
        digest.update(part.encode())
        digest.update(b"\x00")
    return digest.hexdigest()


@lru_cache(maxsize=1)
def _validator() -> Callable[[Any], Any]:
    # Compiled to Python once: ~4 µs per event against ~55 µs for jsonschema's interpreter.
    return fastjsonschema.compile(load_json_schema(INPUT_SCHEMA))


def _normalise_timestamp(value: str) -> str:
    try:
        parsed = datetime.fromisoformat(value.replace("z", "Z"))
    except ValueError as exc:
        raise InvalidEventError("schema", f"created_date: not an RFC 3339 timestamp: {value!r}") from exc
    if parsed.tzinfo is None:
        raise InvalidEventError("schema", f"created_date: timestamp has no timezone: {value!r}")
    return parsed.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_publish(raw: bytes | None, max_bytes: int) -> PublishEvent:
    """Decode and validate one raw message, or raise :class:`InvalidEventError` with a DLQ reason."""
    if raw is None or len(raw) == 0:
        raise InvalidEventError("not_json", "empty message")
    if len(raw) > max_bytes:
        raise InvalidEventError("oversized", f"{len(raw)} bytes > limit {max_bytes}")
    try:
        doc: Any = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        reason: DeadLetterReason = "bad_encoding" if "utf-8" in str(exc).lower() else "not_json"
        raise InvalidEventError(reason, str(exc)) from exc
    if not isinstance(doc, dict):
        raise InvalidEventError("not_object", f"expected a JSON object, got {type(doc).__name__}")
    try:
        _validator()(doc)
    except fastjsonschema.JsonSchemaValueException as error:
        path = ".".join(str(p) for p in error.path[1:]) or "<root>"
        message = error.message.removeprefix(f"{error.name} ").removeprefix("data ")
        raise InvalidEventError("schema", f"{path}: {message}"[:500]) from None
    registry = doc["type"]
    name = doc["name"]
    version = doc["version"]
    created = _normalise_timestamp(doc["created_date"])
    return PublishEvent(
        event_id=event_id_for(registry, name, version, created),
        registry=registry,
        name=name,
        version=version,
        created_date=created,
        artifact_id=doc.get("artifact_id") or "",
        schema_ver=doc.get("schema_ver") or "",
    )
