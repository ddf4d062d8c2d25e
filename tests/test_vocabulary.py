"""The JSON Schemas' enums and the code's vocabulary are one list each (schemas are data; code reads it)."""

from __future__ import annotations

from typing import Any

from typostream.agents.domain import vocabulary
from typostream.agents.domain.detection.techniques import TECHNIQUES
from typostream.schemas import load_json_schema


def enum_at(schema: dict[str, Any], *path: str) -> list[str]:
    node = schema
    for key in path:
        node = node[key]
    return list(node["enum"])


def test_registries_match_the_message_schemas() -> None:
    expected = list(vocabulary.REGISTRIES)
    assert enum_at(load_json_schema("package_feeds_event"), "properties", "type") == expected
    assert enum_at(load_json_schema("analysed_event"), "properties", "registry") == expected
    threat = load_json_schema("threat_event")
    assert enum_at(threat, "properties", "package", "properties", "registry") == expected


def test_severities_verdicts_and_threat_types_match() -> None:
    threat = load_json_schema("threat_event")
    assert enum_at(threat, "properties", "severity") == list(vocabulary.SEVERITIES)
    assert enum_at(threat, "properties", "type") == list(vocabulary.THREAT_TYPES)
    analysed = load_json_schema("analysed_event")
    assert enum_at(analysed, "properties", "verdict") == list(vocabulary.VERDICTS)
    assert enum_at(analysed, "properties", "max_severity") == ["", *vocabulary.SEVERITIES]


def test_dead_letter_reasons_match() -> None:
    assert enum_at(load_json_schema("dlq_record"), "properties", "reason") == list(
        vocabulary.DEAD_LETTER_REASONS
    )


def test_every_technique_speaks_the_vocabulary() -> None:
    for technique in TECHNIQUES.values():
        assert technique.type in vocabulary.THREAT_TYPES, technique.id
        assert technique.severity in vocabulary.SEVERITIES, technique.id


def test_severity_helpers() -> None:
    assert vocabulary.max_severity(["low", "critical", "medium"]) == "critical"
    assert vocabulary.max_severity([]) == ""
    assert vocabulary.at_least("high", "medium") and not vocabulary.at_least("low", "medium")
    assert not vocabulary.at_least("bogus", "low")
