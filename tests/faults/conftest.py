"""Fault suite fixtures and its table: printed at the end of the session, written to
``benchmarks/results/faults.md`` (one row per fault and profile: rows not run this time are kept;
``TYPOSTREAM_FAULTS_NO_WRITE=1`` only prints)."""

from __future__ import annotations

import os
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.faults.harness import LEDGER, LedgerRow, Profile, profile
from tests.integration.conftest import pipeline_settings, worker_factory

__all__ = ["pipeline_settings", "worker_factory"]  # the integration fixtures, shared

RESULTS = Path(__file__).resolve().parents[2] / "benchmarks" / "results" / "faults.md"
COLUMNS = ("fault", "profile", "repetitions", "sent", "processed", "DLQ", "lost", "duplicated", "notes")


@pytest.fixture(scope="session")
def fault_profile() -> Profile:
    return profile()


def _cells(row: LedgerRow, profile_name: str) -> list[str]:
    values = [row.fault, profile_name, row.repetitions, row.sent, row.processed, row.dlq, row.lost]
    return [str(v) for v in [*values, row.duplicated, row.notes.replace("|", "/")]]


def _table(rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    return lines + ["| " + " | ".join(cells) + " |" for cells in rows]


def _previous_rows() -> dict[tuple[str, str], list[str]]:
    if not RESULTS.exists():
        return {}
    rows: dict[tuple[str, str], list[str]] = {}
    for line in RESULTS.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("| ") and len(cells) == len(COLUMNS) and cells[0] not in ("fault",):
            rows[(cells[0], cells[1])] = cells
    return rows


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not LEDGER:
        return
    name = profile().name
    current = [_cells(row, name) for row in LEDGER]
    terminalreporter.write_sep("=", f"fault suite ({name} profile)")
    for line in _table(current):
        terminalreporter.write_line(line)
    if os.environ.get("TYPOSTREAM_FAULTS_NO_WRITE"):
        return
    rows = _previous_rows()
    for cells in current:
        rows[(cells[0], cells[1])] = cells
    cores = os.cpu_count() or 0
    text = [
        "# Fault suite results",
        "",
        "Written by `pytest -m faults tests/faults` (`TYPOSTREAM_FAULTS=full` for the full profile);",
        "one row per fault and profile, from the latest session that ran it.",
        "Columns: inputs sent (valid + malformed); processed = distinct valid event ids in ClickHouse;",
        "DLQ = distinct dead-lettered inputs (one per source offset) with the expected reason;",
        "lost = valid events missing from ClickHouse + invalid inputs missing from the DLQ;",
        "duplicated = ClickHouse rows beyond one per event id or threat id.",
        "",
        f"Last written {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on a {cores}-core machine.",
        "",
        *_table(sorted(rows.values(), key=lambda cells: (_order(cells[0]), cells[1] != "short"))),
        "",
    ]
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text("\n".join(text))
    terminalreporter.write_line(f"written to {RESULTS}")


_ORDER = ("SIGKILL", "broker", "Redis", "ClickHouse", "malformed", "validator", "HTTP")


def _order(fault: str) -> tuple[int, str]:
    for i, word in enumerate(_ORDER):
        if re.search(word, fault, re.IGNORECASE):
            return i, fault
    return len(_ORDER), fault
