"""Smoke of ``benchmarks/scan_load.py --smoke``: every run (the three scenarios, the fixed rate with
the open-loop generator and with Locust, each against the scan API and the bare baseline) completes
in seconds and the report is well-formed. The figures are not judged (a shared CI machine says
little about latency); what is checked is that each table has every row, with numbers in it."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

from tests.benchmark_runs import run_benchmark

ROOT = Path(__file__).resolve().parents[2]
ROWS = (
    "requests (measured s)",
    "throughput (requests/s)",
    "p50 (ms)",
    "p95 (ms)",
    "p99 (ms)",
    "max (ms)",
    "errors",
    "server peak RSS (MiB)",
    "CPU, % of one core: server / generator / rest of machine",
)
NUMBER = r"[\d,]+(?:\.\d+)?"


def tables(report: str) -> dict[str, list[list[str]]]:
    """``{section heading: [table row cells]}`` of the report's ``###`` sections."""
    found: dict[str, list[list[str]]] = {}
    heading = None
    for line in report.splitlines():
        if line.startswith("### "):
            heading = line[4:]
            found[heading] = []
        elif heading is not None and line.startswith("| ") and not line.startswith("| figure"):
            found[heading].append([cell.strip() for cell in line.strip("|").split("|")])
    return found


def test_scan_load_smoke_produces_every_table(tmp_path: Path) -> None:
    output = tmp_path / "scan_load.md"
    run_benchmark("scan_load.py", "--smoke", "--output", str(output), timeout_s=240)
    report = output.read_text()
    assert report.startswith("# Scan API load (`benchmarks/scan_load.py`)")
    assert re.search(rf"`Assessor.assess` median {NUMBER} µs, p99 {NUMBER} µs", report), report
    assert re.search(rf"Server RSS: {NUMBER} MiB once serving .*, {NUMBER} MiB peak", report), report
    sections = tables(report)
    headings = list(sections)
    assert [h.split(":")[0] for h in headings] == ["normal", "peak", "stress", "fixed rate"], headings
    assert "open loop, 50 requests/s due" in headings[3]
    for heading, rows in sections.items():
        assert [row[0] for row in rows] == list(ROWS), (heading, rows)
        for row in rows:
            assert len(row) == 6, row
            assert re.match(NUMBER, row[1]) and re.match(NUMBER, row[2]), row  # scan API, baseline
        by_name = {row[0]: row for row in rows}
        assert by_name["p99 (ms)"][5] in ("pass", "**FAIL**")  # judged
        assert by_name["errors"][5] in ("pass", "**FAIL**")
        assert re.fullmatch(rf"{NUMBER} / {NUMBER} / {NUMBER}", by_name[ROWS[-1]][1]), by_name[ROWS[-1]]
        requests = int(by_name["requests (measured s)"][1].split()[0].replace(",", ""))
        assert requests > 0, heading
    assert re.search(rf"Locust at the same rate .*p50 / p95 / p99 {NUMBER} / {NUMBER} / {NUMBER} ms", report)
    verdicts = ", ".join(f"{name} (pass|FAIL)" for name in ("normal", "peak", "stress", "rate"))
    assert re.search(rf"^Result: {verdicts}\.$", report, re.M), report
    assert tempfile.gettempdir() not in report and str(ROOT) not in report  # it names no local path
