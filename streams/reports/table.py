"""``--format table``: a rich table for people, one row per threat (one per clean package).

Every cell is plain text (no rich markup) with control and format characters escaped
(``\\x1b`` prints as the four characters ``\\x1b``): a package name or evidence carrying terminal
escape sequences or bidi overrides cannot restyle or rewrite the terminal.
"""

from __future__ import annotations

import io
import unicodedata
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, TextIO

from typostream.streams.reports.base import Finding, Reporter

if TYPE_CHECKING:  # rich is imported when a table is made: `scan --format json` starts without it
    from rich.table import Table
    from rich.text import Text

__all__ = ["TableReporter", "printable"]

WIDTH = 200
COLUMNS = (
    "name",
    "version",
    "registry",
    "verdict",
    "target",
    "technique",
    "score",
    "severity",
    "evidence",
    "file",
)
_UNSAFE = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})


def printable(text: str) -> str:
    """``text`` with control, format (bidi, zero-width), surrogate, private and unassigned characters
    written as Python escapes (``\\x1b``, ``\\u202e``); other characters, tabs included, escaped
    only when unsafe."""
    if text.isprintable():
        return text
    return "".join(
        ch.encode("unicode_escape").decode("ascii") if unicodedata.category(ch) in _UNSAFE else ch
        for ch in text
    )


def _cell(text: str) -> Text:
    from rich.text import Text

    return Text(printable(text))


class TableReporter(Reporter):
    id: ClassVar[str] = "table"
    description: ClassVar[str] = "A table for a terminal (not a stable format: parse json or sarif)."

    @staticmethod
    def table(findings: Sequence[Finding]) -> Table:
        from rich.table import Table

        table = Table(title="typostream scan")
        for column in COLUMNS:
            table.add_column(column, overflow="fold")
        for finding in findings:
            result = finding.result
            where = f"{finding.file}:{finding.line}" if finding.file and finding.line else finding.file or ""
            head = [result.name, finding.version or "", result.registry, result.verdict]
            if not result.threats:
                table.add_row(*map(_cell, [*head, "", "", "", "", "", where]))
            for threat in result.threats:
                row = [*head, threat.target, threat.technique, f"{threat.score:.2f}", threat.severity,
                       threat.evidence, where]  # fmt: skip
                table.add_row(*map(_cell, row))
        return table

    def render(self, findings: Sequence[Finding], root: Path | None = None) -> str:
        """Plain text (no colours), as printed to a file or pipe."""
        from rich.console import Console

        buffer = io.StringIO()
        Console(file=buffer, width=WIDTH).print(self.table(findings))
        return buffer.getvalue()

    def write(self, findings: Sequence[Finding], root: Path | None, stream: TextIO) -> None:
        """Print to ``stream``, styled when it is a terminal."""
        from rich.console import Console

        Console(file=stream, width=WIDTH).print(self.table(findings))
