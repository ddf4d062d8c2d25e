"""The README's first command, as a newcomer runs it (minus the install)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration


def test_demo_processes_the_sample_feed_and_cleans_up(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "typostream.streams.cli", "demo", "--data-dir", str(tmp_path / "demo")],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    out = result.stdout + result.stderr
    assert result.returncode == 0, out[-3000:]
    # 3,014 lines: 3,010 valid publishes and 4 malformed ones that must land in the DLQ
    assert re.search(r"events analysed \(ClickHouse\)\s*│\s*3010\b", out), out[-3000:]
    assert re.search(r"rejected to DLQ\s*│\s*4\b", out), out[-3000:]
    caught = re.search(r"labelled threats in the sample \(squats, known-malicious\) caught: (\d+)/(\d+)", out)
    assert caught is not None and int(caught.group(2)) == 100
    assert int(caught.group(1)) >= 80, "most injected squats and every known-malicious replay are caught"
    # teardown: no stack left running in the data dir
    status = subprocess.run(
        [
            sys.executable,
            "-m",
            "typostream.streams.cli",
            "stack",
            "status",
            "--data-dir",
            str(tmp_path / "demo"),
        ],
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert status.returncode == 1
