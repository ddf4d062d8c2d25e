"""Message and row builders: shapes are checked against the JSON Schemas in schemas/."""

from __future__ import annotations

import base64
import hashlib

import orjson
import pytest
from jsonschema import Draft202012Validator

from typostream.agents.domain.detection import Threat
from typostream.agents.domain.errors import InvalidEventError
from typostream.agents.domain.events import parse_publish
from typostream.agents.domain.messages import (
    DLQ_ERROR_MAX_CHARS,
    DLQ_KEY_MAX_BYTES,
    DLQ_ORIGINAL_MAX_BYTES,
    analysed_message,
    dead_letter,
    dead_letter_key,
    event_message,
    max_severity,
    risk_score,
    threat_db_row,
    threat_event,
    update_package_state,
    with_last_threat,
)
from typostream.schemas import load_json_schema


def FakeThreat(**overrides: object) -> Threat:
    fields: dict[str, object] = {
        "type": "typosquat",
        "target": "express",
        "technique": "repetition",
        "score": 0.9,
        "severity": "high",
        "evidence": "'expresss' repeats a letter of popular 'express'",
    }
    return Threat(**{**fields, **overrides})  # type: ignore[arg-type]


def validator(name: str) -> Draft202012Validator:
    return Draft202012Validator(load_json_schema(name))


@pytest.fixture
def event() -> dict:
    raw = b'{"name":"expresss","version":"1.0.0","created_date":"2026-11-25T10:00:00Z","type":"npm"}'
    return event_message(
        parse_publish(raw, 1 << 16), partition=1, offset=42, received_at="2026-11-25T10:00:01Z"
    )


def test_event_and_analysed_messages_match_schema(event: dict) -> None:
    validator("analysed_event").validate(event)
    analysed = analysed_message(event, "malicious", [FakeThreat(), FakeThreat(severity="critical")])
    validator("analysed_event").validate(analysed)
    assert (analysed["threat_count"], analysed["max_severity"]) == (2, "critical")
    assert analysed_message(event, "clean", [])["max_severity"] == ""


def test_threat_event_matches_security_event_schema(event: dict) -> None:
    threat = threat_event(event, FakeThreat(), "2026-11-25T10:00:02Z")
    validator("threat_event").validate(threat)
    assert threat["metadata"]["correlation_id"] == event["event_id"]
    assert threat["package"] == {"name": "expresss", "version": "1.0.0", "registry": "npm"}
    assert threat["threat"]["target"] == "express"
    # deterministic id: a replay yields the same id; another finding a different one
    assert threat["id"] == threat_event(event, FakeThreat(), "2026-11-26T00:00:00Z")["id"]
    assert threat["id"] != threat_event(event, FakeThreat(target="expression"), "t")["id"]


def test_threat_row_flattens_for_clickhouse(event: dict) -> None:
    row = threat_db_row(threat_event(event, FakeThreat(), "2026-11-25T10:00:02Z"))
    assert row["event_id"] == event["event_id"]
    assert (row["target"], row["technique"], row["severity"]) == ("express", "repetition", "high")


def test_dead_letter_keeps_original_bytes() -> None:
    original = b"\xff not json"
    record = dead_letter(InvalidEventError("not_json", "boom"), original, b"k", "registry.publish", 3, 7)
    validator("dlq_record").validate(record)
    assert base64.b64decode(record["original_b64"]) == original
    assert base64.b64decode(record["original_key_b64"]) == b"k"
    assert (record["reason"], record["source_partition"], record["source_offset"]) == ("not_json", 3, 7)
    assert dead_letter(InvalidEventError("schema", "x"), None, None, "t", 0, 0)["original_key_b64"] is None


def test_risk_score_keeps_severity_order() -> None:
    assert risk_score(1.0, "low") <= risk_score(0.0, "medium") + 25
    assert risk_score(0.1, "critical") > risk_score(1.0, "medium")
    assert risk_score(0.0, "low") >= 0 and risk_score(1.0, "critical") == 100
    assert max_severity(["low", "critical", "medium"]) == "critical"
    assert max_severity([]) == ""


def test_package_state_folds_versions(event: dict) -> None:
    first = update_package_state(None, event)
    assert first["versions_seen"] == ["1.0.0"] and first["last_threat"] is None
    second = update_package_state(
        first, {**event, "version": "1.0.1", "created_date": "2026-11-26T00:00:00.000Z"}
    )
    assert second["versions_seen"] == ["1.0.0", "1.0.1"]
    assert second["first_seen"] == event["created_date"]
    assert second["last_version"] == "1.0.1"
    replay = update_package_state(second, {**event, "version": "1.0.1"})
    assert replay["versions_seen"] == ["1.0.0", "1.0.1"]
    flagged = with_last_threat(second, threat_event(event, FakeThreat(), "t"))
    assert flagged["last_threat"]["target"] == "express"
    assert with_last_threat(second, None) is second


def test_dead_letter_of_a_huge_message_fits_a_kafka_message_and_identifies_the_original() -> None:
    original = b'{"name":"x","pad":"' + b"\xff" * 2_000_000 + b'"}'
    key = b"k" * 5_000
    error = InvalidEventError("oversized", "\x00" * 100_000)  # JSON-escaped to six bytes a character
    record = dead_letter(error, original, key, "registry.publish", 1, 9)
    validator("dlq_record").validate(record)
    assert len(orjson.dumps(record)) < 1_000_000  # Faust's producer_max_request_size
    assert record["original_size"] == len(original)
    assert record["original_sha256"] == hashlib.sha256(original).hexdigest()
    assert record["original_truncated"] is True and record["original_key_truncated"] is True
    assert base64.b64decode(record["original_b64"]) == original[:DLQ_ORIGINAL_MAX_BYTES]
    assert base64.b64decode(record["original_key_b64"]) == key[:DLQ_KEY_MAX_BYTES] == dead_letter_key(key)
    assert len(record["error"]) == DLQ_ERROR_MAX_CHARS


def test_dead_letter_of_a_message_under_the_bound_keeps_it_whole() -> None:
    original = b"x" * DLQ_ORIGINAL_MAX_BYTES
    record = dead_letter(InvalidEventError("schema", "bad"), original, b"key", "registry.publish", 0, 1)
    validator("dlq_record").validate(record)
    assert base64.b64decode(record["original_b64"]) == original
    assert (record["original_truncated"], record["original_key_truncated"]) == (False, False)
    assert record["original_sha256"] == hashlib.sha256(original).hexdigest()
    assert dead_letter_key(None) is None and dead_letter_key(b"key") == b"key"
