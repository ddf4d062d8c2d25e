"""parse_publish: the pure validator behind the ``validate`` agent."""

from __future__ import annotations

import orjson
import pytest

from typostream.agents.domain.errors import InvalidEventError
from typostream.agents.domain.events import event_id_for, parse_publish

GOOD = {
    "name": "left-pad",
    "version": "1.3.0",
    "created_date": "2026-11-25T10:00:00Z",
    "type": "npm",
    "artifact_id": "",
    "schema_ver": "1.1.0",
}
LIMIT = 64 * 1024


def encode(doc: object) -> bytes:
    return orjson.dumps(doc)


def test_valid_event_parses_and_normalises_timestamp() -> None:
    event = parse_publish(encode({**GOOD, "created_date": "2026-11-25T11:00:00+01:00"}), LIMIT)
    assert (event.registry, event.name, event.version) == ("npm", "left-pad", "1.3.0")
    assert event.created_date == "2026-11-25T10:00:00.000Z"
    assert event.key == "npm:left-pad"


def test_key_uses_registry_normalization() -> None:
    pypi = parse_publish(encode({**GOOD, "type": "pypi", "name": "Zope.Interface"}), LIMIT)
    npm = parse_publish(encode({**GOOD, "name": "@Babel/Core"}), LIMIT)
    assert (pypi.key, npm.key) == ("pypi:zope-interface", "npm:@babel/core")
    assert pypi.name == "Zope.Interface"  # the event keeps the name as published


def test_event_id_is_deterministic_and_field_sensitive() -> None:
    first = parse_publish(encode(GOOD), LIMIT)
    again = parse_publish(encode(dict(reversed(list(GOOD.items())))), LIMIT)
    bumped = parse_publish(encode({**GOOD, "version": "1.3.1"}), LIMIT)
    assert first.event_id == again.event_id
    assert first.event_id != bumped.event_id
    assert len(first.event_id) == 32
    # separators prevent ("ab","c") and ("a","bc") colliding
    assert event_id_for("npm", "ab", "c", "t") != event_id_for("npm", "a", "bc", "t")


def test_optional_fields_default_to_empty() -> None:
    doc = {k: v for k, v in GOOD.items() if k not in {"artifact_id", "schema_ver"}}
    event = parse_publish(encode(doc), LIMIT)
    assert (event.artifact_id, event.schema_ver) == ("", "")


@pytest.mark.parametrize(
    ("raw", "reason", "detail"),
    [
        (b"", "not_json", "empty"),
        (b"{not json", "not_json", ""),
        (b"\xff\xfe{}", "bad_encoding", ""),
        (b"[1, 2]", "not_object", "list"),
        (encode({**GOOD, "type": "rubygems"}), "schema", "type"),
        (encode({**GOOD, "version": 3}), "schema", "version"),
        (encode({k: v for k, v in GOOD.items() if k != "name"}), "schema", "name"),
        (encode({**GOOD, "name": ""}), "schema", "name"),
        (encode({**GOOD, "name": "has space"}), "schema", "name"),
        (encode({**GOOD, "created_date": "yesterday"}), "schema", "created_date"),
        (encode({**GOOD, "created_date": "2026-11-25T10:00:00"}), "schema", "created_date"),
        (encode({**GOOD, "created_date": "2026-13-45T10:00:00Z"}), "schema", "created_date"),
        (encode({**GOOD, "summary": "x" * LIMIT}), "oversized", "bytes"),
    ],
)
def test_invalid_events_raise_with_reason(raw: bytes, reason: str, detail: str) -> None:
    with pytest.raises(InvalidEventError) as info:
        parse_publish(raw, LIMIT)
    assert info.value.reason == reason
    assert detail in info.value.detail


def test_none_value_is_rejected() -> None:
    with pytest.raises(InvalidEventError, match="empty"):
        parse_publish(None, LIMIT)
