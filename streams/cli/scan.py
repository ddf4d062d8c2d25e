"""Commands: scan.

``typostream scan --registry {npm,pypi} [--watchlist FILE] [--allowlist FILE] [--format json|sarif|table]
[--fail-on SEVERITY] (NAME... | --file FILE)``; ``--json`` is an alias of ``--format json``.
Exit 0, or 1 when a threat reaches ``--fail-on``; usage or input errors exit 2 with one line.
"""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from typostream.agents.assess import assess, load_known
from typostream.agents.detection import Detector, ScanResult, TypostreamError
from typostream.agents.detection.scoring import SEVERITY_ORDER
from typostream.agents.detection.techniques import TECHNIQUES
from typostream.agents.detection.tunables import REGISTRIES
from typostream.agents.enrichment import EnrichmentError
from typostream.streams.cli.app import cli, fail
from typostream.streams.config import Settings

__all__ = ["scan", "to_sarif"]


class OutputFormat(StrEnum):
    json = "json"
    sarif = "sarif"
    table = "table"


class FailOn(StrEnum):
    low = "low"
    medium = "medium"
    high = "high"
    critical = "critical"


SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
_SARIF_LEVEL = {"low": "note", "medium": "warning", "high": "error", "critical": "error"}


def to_sarif(results: list[ScanResult], source: str | None) -> dict[str, Any]:
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


def _table(results: list[ScanResult]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="typostream scan")
    for column in ("name", "registry", "verdict", "target", "technique", "score", "severity", "evidence"):
        table.add_column(column, overflow="fold")
    for result in results:
        if not result.threats:
            table.add_row(result.name, result.registry, result.verdict, "", "", "", "", "")
        for threat in result.threats:
            table.add_row(
                result.name, result.registry, result.verdict, threat.target, threat.technique,
                f"{threat.score:.2f}", threat.severity, threat.evidence,
            )  # fmt: skip
    Console(width=200).print(table)


@cli.command()
def scan(
    names: Annotated[
        list[str] | None, typer.Argument(help="Package names to scan.", show_default=False)
    ] = None,
    registry: Annotated[str, typer.Option("--registry", "-r", help=f"One of: {', '.join(REGISTRIES)}.")] = "",
    watchlist: Annotated[
        Path | None, typer.Option(help="Own/internal names to protect (one per line).")
    ] = None,
    allowlist: Annotated[Path | None, typer.Option(help="Names never to flag (one per line).")] = None,
    output: Annotated[
        OutputFormat, typer.Option("--format", "-f", help="Output format.")
    ] = OutputFormat.json,
    json_alias: Annotated[bool, typer.Option("--json", help="Alias of --format json.")] = False,
    fail_on: Annotated[
        FailOn | None, typer.Option(help="Exit 1 when a threat reaches this severity.")
    ] = None,
    file: Annotated[
        Path | None, typer.Option("--file", help="Names, one per line, or a requirements.txt / package.json.")
    ] = None,
) -> None:
    """Scan package names for typosquatting, dependency confusion and known-malicious packages."""
    if not registry:
        raise fail("--registry is required (npm or pypi)")
    if registry.lower() not in REGISTRIES:
        raise fail(f"unknown registry {registry!r}; expected one of: {', '.join(REGISTRIES)}")
    if json_alias:
        output = OutputFormat.json
    if bool(names) == bool(file):
        raise fail("give package names or --file FILE (exactly one of them)")
    try:
        to_scan = Detector.load_names(file) if file is not None else list(names or [])
        detector = Detector.default(watchlist=watchlist, allowlist=allowlist)
        known = load_known(Settings.from_env().known_malicious_paths)
        results = [assess(detector, known, name, registry) for name in to_scan]
    except (TypostreamError, EnrichmentError) as exc:
        raise fail(str(exc)) from exc
    if output is OutputFormat.json:
        for result in results:
            typer.echo(json.dumps(result.to_dict(), ensure_ascii=False))
    elif output is OutputFormat.sarif:
        typer.echo(json.dumps(to_sarif(results, str(file) if file else None), indent=2, ensure_ascii=False))
    else:
        _table(results)
    if fail_on is not None:
        floor = SEVERITY_ORDER[fail_on.value]
        if any(SEVERITY_ORDER[t.severity] >= floor for r in results for t in r.threats):
            raise typer.Exit(1)
