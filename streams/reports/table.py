"""``--format table``: a rich table for people, one row per threat (one per clean name)."""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import ClassVar, TextIO

from rich.console import Console
from rich.table import Table

from typostream.agents.domain.detection import ScanResult
from typostream.streams.reports.base import Reporter

__all__ = ["TableReporter"]

WIDTH = 200
COLUMNS = ("name", "registry", "verdict", "target", "technique", "score", "severity", "evidence")


class TableReporter(Reporter):
    id: ClassVar[str] = "table"
    description: ClassVar[str] = "A table for a terminal (not a stable format: parse json or sarif)."

    @staticmethod
    def table(results: Sequence[ScanResult]) -> Table:
        table = Table(title="typostream scan")
        for column in COLUMNS:
            table.add_column(column, overflow="fold")
        for result in results:
            if not result.threats:
                table.add_row(result.name, result.registry, result.verdict, "", "", "", "", "")
            for threat in result.threats:
                table.add_row(
                    result.name, result.registry, result.verdict, threat.target, threat.technique,
                    f"{threat.score:.2f}", threat.severity, threat.evidence,
                )  # fmt: skip
        return table

    def render(self, results: Sequence[ScanResult], source: str | None) -> str:
        """Plain text (no colours), as printed to a file or pipe."""
        buffer = io.StringIO()
        Console(file=buffer, width=WIDTH).print(self.table(results))
        return buffer.getvalue()

    def write(self, results: Sequence[ScanResult], source: str | None, stream: TextIO) -> None:
        """Print to ``stream``, styled when it is a terminal."""
        Console(file=stream, width=WIDTH).print(self.table(results))
