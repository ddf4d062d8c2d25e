"""CI smoke of the pipeline benchmark: every part runs end to end on the embedded stack (seconds).

The figures are not judged here (a shared CI machine says little about throughput); what is
checked is that the raw baselines, a ``--processes 2`` worker, a latency run and the RSS sampling
all complete and print their tables.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[1]


def test_pipeline_benchmark_smoke_runs_every_part(tmp_path: Path) -> None:
    output = tmp_path / "pipeline.md"
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "pipeline.py"), "--smoke", "--output", str(output)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
        check=False,
    )
    out = result.stdout + result.stderr
    assert result.returncode == 0, out[-3000:]
    report = output.read_text()
    for heading in ("## Throughput", "## Publish → threat", "## Worker processes"):
        assert heading in report, report
    for row in ("raw same-work baseline", "raw pass-through", "typostream worker --processes 2"):
        assert row in report, report
    assert "| store |" in report and "| detect-1 |" in report  # every process sampled
