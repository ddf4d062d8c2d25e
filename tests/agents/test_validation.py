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


# --- created_date: a UTC instant in [1970-01-01T00:00:00Z, 2299-12-31T23:59:59.999Z] ---------------


@pytest.mark.parametrize(
    "created",
    [
        "9999-12-31T23:59:59-01:00",  # year 10000 in UTC: the conversion overflowed (internal_error)
        "0001-01-01T00:00:00+01:00",  # year 0 in UTC: overflowed too
        "9999-12-31T23:59:59Z",
        "2300-01-01T00:00:00Z",
        "2299-12-31T23:30:00-01:00",  # 2300 in UTC
        "1969-12-31T23:59:59.999Z",
        "1970-01-01T00:30:00+01:00",  # 1969 in UTC
        "0001-01-01T00:00:00Z",  # Go's zero time.Time: a feed without a publish time
        "0000-01-01T00:00:00Z",
    ],
)
def test_out_of_range_timestamp_is_a_schema_error(created: str) -> None:
    with pytest.raises(InvalidEventError) as info:
        parse_publish(encode({**GOOD, "created_date": created}), LIMIT)
    assert info.value.reason == "schema"
    assert info.value.detail.startswith("created_date: ") and repr(created) in info.value.detail


@pytest.mark.parametrize(
    ("created", "normalised"),
    [
        ("1970-01-01T00:00:00Z", "1970-01-01T00:00:00.000Z"),
        ("1970-01-01T01:00:00+01:00", "1970-01-01T00:00:00.000Z"),
        ("2299-12-31T23:59:59.999Z", "2299-12-31T23:59:59.999Z"),
        ("2299-12-31T22:59:59.999999-01:00", "2299-12-31T23:59:59.999Z"),
        ("2003-06-01T14:00:00+02:00", "2003-06-01T12:00:00.000Z"),
    ],
)
def test_timestamps_at_the_edges_of_the_range_are_accepted(created: str, normalised: str) -> None:
    assert parse_publish(encode({**GOOD, "created_date": created}), LIMIT).created_date == normalised


# --- names: what the registries allow (agents/domain/names_policy.py documents the rule) --------


@pytest.mark.parametrize(
    ("registry", "name", "detail"),
    [
        ("npm", "left\u202epad", "U+202E RIGHT-TO-LEFT OVERRIDE at index 4 (a bidirectional control)"),
        ("npm", "left\u2066pad", "U+2066 LEFT-TO-RIGHT ISOLATE at index 4 (a bidirectional control)"),
        ("npm", "left\u200bpad", "U+200B ZERO WIDTH SPACE at index 4 (an invisible format character)"),
        ("pypi", "requests\u2060", "U+2060 WORD JOINER at index 8 (an invisible format character)"),
        (
            "npm",
            "\ufeffexpress",
            "U+FEFF ZERO WIDTH NO-BREAK SPACE at index 0 (an invisible format character)",
        ),
        ("npm", "left\x9bpad", "U+009B at index 4 (a C1 control character)"),
        ("pypi", "left\x85pad", "U+0085 at index 4 (a C1 control character)"),
        ("npm", "left\x7fpad", "U+007F at index 4 (a C0 control character)"),
        ("npm", "left\U0001f600pad", "U+1F600 GRINNING FACE at index 4 (an emoji or symbol)"),
        (
            "pypi",
            "requests\ufe0f",
            "U+FE0F VARIATION SELECTOR-16 at index 8 (an invisible variation selector)",
        ),
        ("pypi", "reque\u0455ts", "U+0455 CYRILLIC SMALL LETTER DZE at index 5 (a non-ASCII letter)"),
        ("npm", "\uff4c\uff45\uff46\uff54", "U+FF4C FULLWIDTH LATIN SMALL LETTER L at index 0"),
        ("npm", "left\u3164pad", "U+3164 HANGUL FILLER at index 4 (an invisible filler)"),
        ("npm", "left\u00a0pad", "U+00A0 NO-BREAK SPACE at index 4 (a space)"),
        ("npm", ".hidden", "must not start with '.' or '_'"),
        ("npm", "_private", "must not start with '.' or '_'"),
        ("npm", "@scope/.dot", "must not start with '.'"),
        ("npm", "left#pad", "'#' at index 4 is not URL-safe"),
        ("npm", "a:b", "':' at index 1 is not URL-safe"),
        ("npm", "@scope", "a scoped name is @scope/name"),
        ("npm", "@scope/a/b", "a scoped name is @scope/name"),
        ("npm", "a/b", "a scoped name is @scope/name"),
        ("npm", "node_modules", "'node_modules' is reserved"),
        ("npm", "favicon.ico", "'favicon.ico' is reserved"),
        ("pypi", "-dash", "must start and end with an ASCII letter or digit"),
        ("pypi", "dash.", "must start and end with an ASCII letter or digit"),
        ("pypi", "a+b", "'+' at index 1 is not allowed"),
        ("pypi", "@scope/x", "'@' at index 0 is not allowed"),
    ],
)
def test_names_no_registry_allows_are_schema_errors(registry: str, name: str, detail: str) -> None:
    with pytest.raises(InvalidEventError) as info:
        parse_publish(encode({**GOOD, "type": registry, "name": name}), LIMIT)
    assert info.value.reason == "schema"
    assert info.value.detail.startswith(f"name: not a valid {registry} package name: "), info.value.detail
    assert detail in info.value.detail, info.value.detail
    assert name not in info.value.detail or name.isascii()  # shown escaped: no raw bidi/invisible chars
    assert info.value.detail.isascii()


@pytest.mark.parametrize(
    ("registry", "name"),
    [
        ("npm", "left-pad"),
        ("npm", "@babel/core"),
        ("npm", "@scope/_under"),
        ("npm", "JSONStream"),  # capitals: allowed for packages published before 2017, replays carry them
        ("npm", "Base64"),
        ("npm", "lodash.merge"),
        ("npm", "really-cool~name!(x)*'"),  # old special characters
        ("npm", "0.0.1"),
        ("npm", "a" * 214),
        ("pypi", "Zope.Interface"),
        ("pypi", "a"),
        ("pypi", "x_y-z.0"),
    ],
)
def test_names_the_registries_allow_are_accepted(registry: str, name: str) -> None:
    assert parse_publish(encode({**GOOD, "type": registry, "name": name}), LIMIT).name == name


@pytest.mark.parametrize("registry", ["npm", "pypi"])
def test_every_bundled_real_name_is_accepted(registry: str) -> None:
    from typostream.data.names import iter_names, names_file

    rejected = []
    for name in iter_names(names_file(registry)):
        try:
            parse_publish(encode({**GOOD, "type": registry, "name": name}), LIMIT)
        except InvalidEventError as exc:
            rejected.append((name, exc.detail))
    assert rejected == []
