"""``--format sarif``: a SARIF 2.1.0 log for GitHub code scanning, one result per threat.

- Rules: every rule typostream can report is declared in ``tool.driver.rules`` — the detection
  techniques, ``malicious_package.known_malicious``, and one ``suspicious_pattern.<field>.<category>``
  per category of the bundled pattern set — each with a description, help text (plain and
  Markdown), its default level and ``properties.security-severity`` (the CVSS-like score GitHub
  ranks alerts by: critical 9.5, high 8.0, medium 5.5, low 2.0) and tags. A result whose rule is
  not among them (a custom pattern file) gets a rule declared from its threat, so every
  ``ruleId`` resolves.
- Locations: ``artifactLocation.uri`` is the manifest's path relative to the scan root (POSIX,
  percent-encoded), with ``uriBaseId`` ``%SRCROOT%`` declared in ``originalUriBaseIds``;
  ``region.startLine`` is the manifest line. Packages given by name have no location.
- ``partialFingerprints["typostream/v1"]`` identifies an alert across runs (rule, registry,
  normalized name, target, file — not the line, so an edit above it does not duplicate the alert).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any, ClassVar, Final
from urllib.parse import quote

from typostream.agents.domain.detection.names import normalize
from typostream.agents.domain.detection.techniques import TECHNIQUES
from typostream.agents.domain.vocabulary import max_severity
from typostream.streams.reports.base import Finding, Reporter

__all__ = ["SARIF_SCHEMA", "SECURITY_SEVERITY", "SarifReporter", "rules", "to_sarif"]

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
INFORMATION_URI = "https://pypi.org/project/typostream/"
SRCROOT = "%SRCROOT%"
FINGERPRINT = "typostream/v1"
_SARIF_LEVEL: Final = {"low": "note", "medium": "warning", "high": "error", "critical": "error"}
SECURITY_SEVERITY: Final = {"low": "2.0", "medium": "5.5", "high": "8.0", "critical": "9.5"}
"""GitHub's bands: 0.1–3.9 low, 4.0–6.9 medium, 7.0–8.9 high, 9.0+ critical."""

_HELP: Final = {
    "typosquat": (
        "The package name imitates a popular or watchlisted package. Check that you meant the target "
        "package: compare the name letter by letter, its publisher and its download count. If it is "
        "a typo, install the target instead and remove this package; if it is yours, add it to the "
        "allowlist (TYPOSTREAM_ALLOWLIST_FILE)."
    ),
    "dependency_confusion": (
        "A name on your watchlist (an internal package) exists on the public registry. An installer "
        "configured with both indexes may pick the public one. Pin your private index for this name "
        "(pip --index-url / a scoped npm registry) and check who published the public package."
    ),
    "malicious_package": (
        "This package version is listed in a known-malicious advisory (OSV). Do not install it. If it "
        "was installed, treat the machine as compromised: remove the package, rotate credentials it "
        "could read, and review the advisory for indicators."
    ),
    "suspicious_pattern": (
        "The package's metadata (install scripts or description) matches a pattern typical of "
        "malware, such as downloading and running code at install time or reading credentials. "
        "Review the package's code before installing it."
    ),
}


def _rule(rule_id: str, description: str, severity: str, kind: str) -> dict[str, Any]:
    name = "".join(part.title() for part in rule_id.replace(".", "_").split("_"))
    help_text = _HELP.get(kind, description)
    return {
        "id": rule_id,
        "name": name,
        "shortDescription": {"text": description},
        "fullDescription": {"text": description},
        "help": {"text": help_text, "markdown": f"**{description}**\n\n{help_text}"},
        "helpUri": INFORMATION_URI,
        "defaultConfiguration": {"level": _SARIF_LEVEL.get(severity, "warning")},
        "properties": {
            "security-severity": SECURITY_SEVERITY.get(severity, SECURITY_SEVERITY["medium"]),
            "tags": ["security", "supply-chain", kind.replace("_", "-")],
            "precision": "very-high" if kind == "malicious_package" else "medium",
        },
    }


@cache
def rules() -> tuple[dict[str, Any], ...]:
    """Every rule typostream reports: techniques, the advisory rule, the bundled pattern categories."""
    declared = [_rule(t.id, t.description, t.severity, t.type) for t in TECHNIQUES.values()]
    declared.append(
        _rule(
            "malicious_package.known_malicious",
            "The package version is named by a known-malicious advisory (OSV).",
            "critical",
            "malicious_package",
        )
    )
    from typostream.agents.domain.patterns import FIELDS, PatternSet  # only to write SARIF

    categories: dict[str, list[str]] = {}
    for pattern in PatternSet.default().patterns:
        for field in FIELDS:
            if pattern.applies_to(field):
                categories.setdefault(f"{field}.{pattern.category}", []).append(pattern.severity)
    for technique, severities in sorted(categories.items()):
        field, category = technique.split(".", 1)
        description = f"{field.replace('_', ' ').capitalize()} matches {category.replace('_', ' ')} patterns."
        declared.append(
            _rule(
                f"suspicious_pattern.{technique}", description, max_severity(severities), "suspicious_pattern"
            )
        )
    return tuple(declared)


def _uri(path: str) -> str:
    return quote(path, safe="/")


def _fingerprint(rule_id: str, finding: Finding, target: str) -> str:
    result = finding.result
    key = "\0".join(
        [rule_id, result.registry, normalize(result.name, result.registry), target, finding.file or ""]
    )
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:32]


def to_sarif(findings: Sequence[Finding], root: Path | None = None) -> dict[str, Any]:
    """The SARIF 2.1.0 log of ``findings``; ``root`` is the directory their files are relative to."""
    declared = list(rules())
    index = {rule["id"]: i for i, rule in enumerate(declared)}
    results: list[dict[str, Any]] = []
    for finding in findings:
        result = finding.result
        for threat in result.threats:
            rule_id = f"{threat.type}.{threat.technique}"
            if rule_id not in index:
                index[rule_id] = len(declared)
                declared.append(
                    _rule(rule_id, threat.evidence[:200] or rule_id, threat.severity, threat.type)
                )
            spec = f"{result.name}@{finding.version}" if finding.version else result.name
            entry: dict[str, Any] = {
                "ruleId": rule_id,
                "ruleIndex": index[rule_id],
                "level": _SARIF_LEVEL.get(threat.severity, "warning"),
                "message": {"text": f"{spec} ({result.registry}): {threat.evidence}"},
                "partialFingerprints": {FINGERPRINT: _fingerprint(rule_id, finding, threat.target)},
                "properties": {
                    "name": result.name,
                    "version": finding.version,
                    "registry": result.registry,
                    "target": threat.target,
                    "score": threat.score,
                    "severity": threat.severity,
                    "security-severity": SECURITY_SEVERITY.get(threat.severity, SECURITY_SEVERITY["medium"]),
                    "verdict": result.verdict,
                },
            }
            if finding.file:
                location: dict[str, Any] = {
                    "artifactLocation": {"uri": _uri(finding.file), "uriBaseId": SRCROOT}
                }
                if finding.line:
                    location["region"] = {"startLine": finding.line}
                entry["locations"] = [{"physicalLocation": location}]
            results.append(entry)
    run: dict[str, Any] = {
        "tool": {
            "driver": {
                "name": "typostream",
                "informationUri": INFORMATION_URI,
                "semanticVersion": _version(),
                "rules": declared,
            }
        },
        "results": results,
    }
    if root is not None:
        run["originalUriBaseIds"] = {SRCROOT: {"uri": root.resolve().as_uri().rstrip("/") + "/"}}
    return {"$schema": SARIF_SCHEMA, "version": "2.1.0", "runs": [run]}


@cache
def _version() -> str:
    # imported here: importlib.metadata is 5 % of `typostream scan`'s imports, needed by SARIF only
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as package_version

    try:
        return package_version("typostream")
    except PackageNotFoundError:
        return "0.0.0"


class SarifReporter(Reporter):
    id: ClassVar[str] = "sarif"
    description: ClassVar[str] = "A SARIF 2.1.0 log for GitHub code scanning, one result per threat."

    def render(self, findings: Sequence[Finding], root: Path | None = None) -> str:
        return json.dumps(to_sarif(findings, root), indent=2, ensure_ascii=False) + "\n"
