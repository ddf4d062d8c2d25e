"""Pure helpers behind ``typostream dlq`` / ``typostream threats``."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import orjson
import pytest

from typostream.agents.domain.errors import InvalidEventError
from typostream.agents.domain.messages import dead_letter
from typostream.streams.records_view import (
    Deduplicator,
    count_by_reason,
    decode_dlq,
    dedupe_threats,
    meets_severity,
    preview,
    threat_display_row,
)


def _dlq_bytes(original: bytes, key: bytes | None, reason: str = "not_json") -> bytes:
    error = InvalidEventError(reason, "detail")
    return orjson.dumps(dead_letter(error, original, key, "registry.publish", 1, 42, "2026-01-01T00:00:00Z"))


def test_decode_dlq_round_trips_the_original_bytes_and_key() -> None:
    original = b"\xff\xfe not utf-8 {"
    entry = decode_dlq(_dlq_bytes(original, b"k\x00ey"), partition=0, offset=7)
    assert entry.original == original
    assert entry.original_key == b"k\x00ey"
    assert (entry.partition, entry.offset, entry.reason) == (0, 7, "not_json")
    as_json = entry.as_json()
    assert as_json["dlq_offset"] == 7 and as_json["source_offset"] == 42
    assert as_json["original_b64"] == base64.b64encode(original).decode()
    assert "\ufffd" in as_json["original_text"]


def test_decode_dlq_without_key() -> None:
    assert decode_dlq(_dlq_bytes(b"x", None), 0, 0).original_key is None


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (None, "empty"),
        (b"nope", "not JSON"),
        (b"[1]", "not a JSON object"),
        (b'{"reason": "schema"}', "missing"),
        (orjson.dumps({"reason": "schema", "error": "", "source_topic": "t", "source_partition": 0,
                       "source_offset": 0, "original_b64": "!!!"}), "not valid base64"),
    ],
)  # fmt: skip
def test_decode_dlq_rejects_what_is_not_a_dead_letter(value: bytes | None, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        decode_dlq(value, 0, 0)


def test_preview_escapes_control_characters_and_truncates() -> None:
    assert preview(b'{"a":\n1}') == '{"a":\\n1}'
    assert preview(b"\xffabc") == "\ufffdabc"
    cut = preview(b"x" * 100, width=10)
    assert cut == "x" * 9 + "…" and len(cut) == 10


def test_count_by_reason_most_frequent_first() -> None:
    entries = [
        decode_dlq(_dlq_bytes(b"x", None, r), 0, i) for i, r in enumerate(["schema", "not_json", "schema"])
    ]
    assert list(count_by_reason(entries).items()) == [("schema", 2), ("not_json", 1)]


def _threat(threat_id: str, severity: str) -> dict[str, Any]:
    return {
        "id": threat_id,
        "timestamp": "2026-01-01T00:00:00Z",
        "type": "typosquat",
        "severity": severity,
        "package": {"name": "reqeusts", "version": "1.0", "registry": "pypi"},
        "threat": {"technique": "transposition", "target": "requests", "risk_score": 70},
    }


def test_severity_filter() -> None:
    assert meets_severity(_threat("a", "high"), "medium")
    assert meets_severity(_threat("a", "medium"), "medium")
    assert not meets_severity(_threat("a", "low"), "medium")
    assert not meets_severity({"severity": "weird"}, "low")
    with pytest.raises(ValueError, match="unknown severity"):
        meets_severity(_threat("a", "low"), "urgent")


def test_dedupe_keeps_the_first_delivery_of_each_id() -> None:
    threats = [_threat("a", "low"), _threat("b", "high"), {**_threat("a", "low"), "timestamp": "later"}]
    assert [t["id"] for t in dedupe_threats(threats)] == ["a", "b"]
    assert dedupe_threats(threats)[0]["timestamp"] == "2026-01-01T00:00:00Z"


def test_deduplicator_is_bounded() -> None:
    seen = Deduplicator(capacity=2)
    assert seen.first({"id": "a"}) and seen.first({"id": "b"}) and seen.first({"id": "c"})
    assert seen.first({"id": "a"})  # evicted, so shown again
    assert not seen.first({"id": "c"})
    assert seen.first({"no": "id"}) and seen.first({"no": "id"})


def test_threat_row() -> None:
    row = threat_display_row(_threat("a", "high"))
    assert row == (
        "2026-01-01T00:00:00Z", "pypi", "reqeusts@1.0", "typosquat", "transposition", "requests", "high", "70"
    )  # fmt: skip
    assert threat_display_row({}) == ("", "", "@", "", "", "", "", "")


def test_decode_dlq_of_a_truncated_record_gives_the_prefix_and_the_full_size() -> None:
    original = b"{" + b"x" * 900_000 + b"}"
    entry = decode_dlq(_dlq_bytes(original, b"npm:big", "oversized"), 0, 3)
    assert entry.truncated and entry.original_size == len(original)
    assert 0 < len(entry.original) < len(original) and original.startswith(entry.original)
    assert entry.as_json()["original_sha256"] == hashlib.sha256(original).hexdigest()
    complete = decode_dlq(_dlq_bytes(b"{oops", None), 0, 4)
    assert not complete.truncated and complete.original_size == 5


def test_decode_dlq_reads_records_written_before_size_and_hash_were_recorded() -> None:
    legacy = {"reason": "not_json", "error": "x", "source_topic": "t", "source_partition": 0,
              "source_offset": 0, "original_b64": base64.b64encode(b"{oops").decode(),
              "original_key_b64": None, "rejected_at": "2026-01-01T00:00:00Z"}  # fmt: skip
    entry = decode_dlq(orjson.dumps(legacy), 0, 0)
    assert entry.original == b"{oops" and not entry.truncated and entry.original_size == 5


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"original_sha256": "0" * 64}, "does not match original_sha256"),
        ({"original_size": 6}, "original_size says 6"),
        ({"original_truncated": True}, "not shorter than original_size"),
        ({"original_size": "5"}, "original_size is not an integer"),
    ],
)
def test_decode_dlq_rejects_an_original_that_does_not_match_its_record(change: dict, message: str) -> None:
    record = {**orjson.loads(_dlq_bytes(b"{oops", None)), **change}
    with pytest.raises(ValueError, match=message):
        decode_dlq(orjson.dumps(record), 0, 0)
