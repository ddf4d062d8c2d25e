"""Command: ``detectors`` — techniques and context detectors, as tables or as the README's Markdown."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from typostream.agents.domain.context import DETECTORS
from typostream.agents.domain.detection import TECHNIQUES
from typostream.streams.cli.app import command, fail


def markdown_table() -> str:
    """The README's detector table, generated from the registry (tests keep the two equal)."""
    lines = ["| id | default severity | what it catches |", "|---|---|---|"]
    for technique in TECHNIQUES.values():
        lines.append(f"| `{technique.id}` | {technique.severity} | {technique.description} |")
    return "\n".join(lines)


def context_markdown_table() -> str:
    """The README's context-detector table, generated from their registry (a test keeps them equal)."""
    lines = ["| id | needs registry metadata | what it weighs |", "|---|---|---|"]
    for detector in DETECTORS.values():
        needs = "yes" if detector.needs_metadata else "no"
        lines.append(f"| `{detector.id}` | {needs} | {detector.description} |")
    return "\n".join(lines)


@command()
def detectors(
    output: Annotated[str, typer.Option("--format", help="table (default) or markdown.")] = "table",
) -> None:
    """List the detection techniques (id, default severity, description) and the context detectors."""
    if output == "markdown":
        typer.echo(markdown_table())
        typer.echo()
        typer.echo(context_markdown_table())
        return
    if output != "table":
        raise fail(f"--format must be 'table' or 'markdown', not {output!r}")
    table = Table("id", "severity", "what it catches")
    for technique in TECHNIQUES.values():
        table.add_row(technique.id, technique.severity, technique.description)
    context = Table("context detector", "needs metadata", "what it weighs")
    for detector in DETECTORS.values():
        context.add_row(detector.id, "yes" if detector.needs_metadata else "no", detector.description)
    console = Console()
    console.print(table)
    console.print(context)
