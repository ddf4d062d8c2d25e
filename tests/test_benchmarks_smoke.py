"""CI smoke of the pipeline benchmark: every part runs end to end on the embedded stack (seconds).

The figures are not judged here (a shared CI machine says little about throughput); what is
checked is that the raw baselines, a ``--processes 2`` worker, a latency run and the RSS sampling
all complete and print their tables.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.benchmark_runs import run_benchmark

pytestmark = pytest.mark.integration


def test_pipeline_benchmark_smoke_runs_every_part(tmp_path: Path) -> None:
    output = tmp_path / "pipeline.md"
    run_benchmark("pipeline.py", "--smoke", "--output", str(output))
    report = output.read_text()
    for heading in ("## Throughput", "## Publish → threat", "## Worker processes"):
        assert heading in report, report
    for row in ("raw same-work baseline", "raw pass-through", "typostream worker --processes 2"):
        assert row in report, report
    assert "| store |" in report and "| detect-1 |" in report  # every process sampled
