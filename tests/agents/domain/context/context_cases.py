"""The context-detector cases of ``fixtures/cases.json`` as :class:`PublishContext` objects.

Shared by the detector tests and ``benchmarks/context.py`` (which reports their trip and alert rates).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from typostream.agents.domain.context import NameEvidence, PublishContext, SeenHistory
from typostream.agents.domain.metadata import (
    PackageHistory,
    PackageMetadata,
    parse_npm,
    parse_npm_packument,
    parse_pypi,
    parse_pypi_project,
)

TESTS = Path(__file__).resolve().parents[3]
CASES_FILE = Path(__file__).parent / "fixtures" / "cases.json"


@dataclass(frozen=True)
class Case:
    id: str
    label: str
    context: PublishContext
    evidence: NameEvidence | None
    trips: frozenset[str]


def document(ref: dict[str, str]) -> Any:
    return json.loads((TESTS / ref["file"]).read_text())


def metadata_of(ref: dict[str, str], name: str, version: str) -> PackageMetadata:
    doc, kind = document(ref), ref["kind"]
    if kind == "npm_version":
        return parse_npm(doc, name, version)
    if kind == "npm_packument":
        return parse_npm(doc["versions"][version], name, version, doc.get("time", {}).get(version))
    if kind in ("pypi_version", "pypi_project"):
        return parse_pypi(doc, name, version)
    raise ValueError(f"unknown document kind {kind!r}")


def history_of(ref: dict[str, str], name: str) -> PackageHistory:
    doc, kind = document(ref), ref["kind"]
    return parse_npm_packument(doc, name) if kind == "npm_packument" else parse_pypi_project(doc, name)


def load_cases() -> list[Case]:
    cases = []
    for raw in json.loads(CASES_FILE.read_text())["cases"]:
        name, version = raw["name"], raw["version"]
        seen = raw.get("seen")
        evidence = raw.get("evidence")
        context = PublishContext(
            registry=raw["registry"],
            name=name,
            version=version,
            published_at=raw.get("published_at"),
            target=raw.get("target"),
            metadata=metadata_of(raw["metadata"], name, version),
            target_metadata=(
                metadata_of(raw["target_metadata"], raw["target"], "") if raw.get("target_metadata") else None
            ),
            history=history_of(raw["history"], name) if raw.get("history") else None,
            seen=SeenHistory.from_state(seen, version) if seen is not None else None,
        )
        cases.append(
            Case(
                raw["id"],
                raw["label"],
                context,
                NameEvidence.from_last_threat(evidence) if evidence else None,
                frozenset(raw["trips"]),
            )
        )
    return cases
