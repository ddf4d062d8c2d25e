"""CI smoke of the replay benchmark (``benchmarks/replay.py --smoke``): 3,000 PyPI names, seconds.

The figures are not judged (a shared CI machine says little about throughput). What is checked:
the run completes, its markdown report is well-formed (every table row has its header's cells),
and every published name reached ClickHouse, counted twice: by the benchmark's JSON, and here, by
reading the worker's chDB (kept with ``--keep``) and comparing its names with the ones published.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.benchmark_runs import run_benchmark
from typostream.agents.adapters.clickhouse import ClickHouseConnection, parse_dsn

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
SMOKE_NAMES = 3_000
HEADINGS = (
    "## Wall time: first publish",
    "## Every name in ClickHouse, threats found",
    "## Worker processes: peak RSS",
)


def tables(report: str) -> list[list[list[str]]]:
    """The markdown tables of ``report``: rows of cells (header first, separator dropped)."""
    found: list[list[list[str]]] = []
    current: list[list[str]] | None = None
    for line in report.splitlines():
        if line.startswith("|"):
            assert line.endswith("|"), f"table row not closed: {line!r}"
            cells = [c.strip() for c in line[1:-1].split("|")]
            if current is None:
                current = [cells]
            elif all(set(c) <= set("-:") and c for c in cells):
                assert len(current) == 1, f"separator row in the middle of a table: {line!r}"
                assert len(cells) == len(current[0]), f"separator has {len(cells)} cells: {line!r}"
            else:
                assert len(cells) == len(current[0]), (
                    f"{len(cells)} cells, header {len(current[0])}: {line!r}"
                )
                current.append(cells)
        elif current is not None:
            found.append(current)
            current = None
    if current is not None:
        found.append(current)
    return found


def column(table: list[list[str]], name: str) -> list[str]:
    index = table[0].index(name)
    return [row[index] for row in table[1:]]


def number(cell: str) -> float:
    return float(cell.split()[0].replace(",", ""))


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("replay")
    output, figures = tmp / "replay.md", tmp / "replay.json"
    result = run_benchmark(
        "replay.py",
        "--smoke",
        "--keep",
        "--root",
        str(tmp / "run"),
        "--output",
        str(output),
        "--json",
        str(figures),
    )
    return {"stdout": result.stdout, "report": output.read_text(), "figures": json.loads(figures.read_text())}


def test_report_is_well_formed(smoke: dict[str, Any]) -> None:
    report = smoke["report"]
    assert report.startswith("# Replay benchmark (")
    for heading in HEADINGS:
        assert heading in report, report
    assert report.strip() in smoke["stdout"], "the report printed differs from the one written"
    found = tables(report)
    assert len(found) == 3, report
    wall, names, memory = found
    labels = column(wall, "pipeline")
    assert labels[0].startswith("raw same-work") and labels[1].startswith("raw pass-through"), labels
    assert labels[2] == "typostream worker --processes 2 (+1 store process)", labels
    for cell in column(wall, "events/s") + column(wall, "→ last ClickHouse row s")[2:]:
        assert number(cell) > 0, wall
    assert column(wall, "vs raw same-work")[0] == "100%"
    assert column(names, "names missing") == ["0"], names
    assert [number(c) for c in column(names, "distinct names")] == [SMOKE_NAMES], names
    roles = column(memory, "process")
    assert sorted(roles) == ["detect-1", "detect-2", "store", "worker"], memory
    for cell in column(memory, "lifetime peak MB (VmHWM)"):
        assert 10 < number(cell) < 8_000, memory  # a real process's RSS, in MB


def test_every_published_name_reached_clickhouse(smoke: dict[str, Any]) -> None:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from replay import select_names

    published, _total = select_names(SMOKE_NAMES)
    assert len(set(published)) == SMOKE_NAMES
    [run] = smoke["figures"]["workers"]
    assert run["complete"] and run["clickhouse_s"] > 0, run
    assert (run["names"], run["distinct_names"], run["rows_final"], run["missing_count"]) == (
        SMOKE_NAMES,
        SMOKE_NAMES,
        SMOKE_NAMES,
        0,
    ), run
    assert run["analysed_records"] >= SMOKE_NAMES, run

    # Independently of the benchmark's own count: the names in the worker's ClickHouse.
    dsn = run["clickhouse_dsn"]
    with ClickHouseConnection.open(dsn, Path(parse_dsn(dsn).path or "")) as connection:
        rows = connection.rows(
            f"SELECT name, count() FROM events FINAL WHERE artifact_id = '{run['tag']}' GROUP BY name"
        )
    stored = {str(name): int(count) for name, count in rows}
    missing = sorted(set(published) - set(stored))
    assert missing == [], f"{len(missing)} published names not in ClickHouse, e.g. {missing[:5]}"
    assert set(stored) == set(published), sorted(set(stored) - set(published))[:5]
    assert set(stored.values()) == {1}, "a name stored more than once (one publish each)"
