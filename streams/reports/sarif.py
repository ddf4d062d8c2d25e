"""``--format sarif``: a SARIF 2.1.0 log, one result per threat, rules from the technique registry."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, ClassVar

from typostream.agents.domain.detection import ScanResult
from typostream.agents.domain.detection.techniques import TECHNIQUES
from typostream.streams.reports.base import Reporter

__all__ = ["SARIF_SCHEMA", "SarifReporter", "to_sarif"]

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
_SARIF_LEVEL = {"low": "note", "medium": "warning", "high": "error", "critical": "error"}


def to_sarif(results: Sequence[ScanResult], source: str | None) -> dict[str, Any]:
    """SARIF 2.1.0 log: one result per threat, rules from the technique registry."""
    rules = [
        {"id": t.id, "name": t.technique, "shortDescription": {"text": t.description},
         "defaultConfiguration": {"level": _SARIF_LEVEL[t.severity]}}
        for t in TECHNIQUES.values()
    ]  # fmt: skip
    findings: list[dict[str, Any]] = []
    for result in results:
        for threat in result.threats:
            finding: dict[str, Any] = {
                "ruleId": f"{threat.type}.{threat.technique}",
                "level": _SARIF_LEVEL[threat.severity],
                "message": {"text": f"{result.name} ({result.registry}): {threat.evidence}"},
                "properties": {
                    "name": result.name,
                    "registry": result.registry,
                    "target": threat.target,
                    "score": threat.score,
                    "severity": threat.severity,
                    "verdict": result.verdict,
                },
            }
            if source:
                finding["locations"] = [{"physicalLocation": {"artifactLocation": {"uri": source}}}]
            findings.append(finding)
    return {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {"driver": {"name": "typostream", "informationUri": "https://pypi.org/project/typostream/",
                                    "rules": rules}},
                "results": findings,
            }
        ],
    }  # fmt: skip


class SarifReporter(Reporter):
    id: ClassVar[str] = "sarif"
    description: ClassVar[str] = "A SARIF 2.1.0 log (code-scanning upload), one result per threat."

    def render(self, results: Sequence[ScanResult], source: str | None) -> str:
        return json.dumps(to_sarif(results, source), indent=2, ensure_ascii=False) + "\n"
