"""``typostream scan`` as a subprocess, the way the CLI tests run it: the installed entry point, an
environment without any ``TYPOSTREAM_*`` variable of the developer's but its own data dir, and
the top-level packages one start imports (``python -X importtime``)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

EXE = Path(sys.executable).with_name("typostream")
"""The ``typostream`` entry point of this virtualenv (a test needing it skips when it is missing)."""
SCAN_ENV = ("TYPOSTREAM_WATCHLIST_FILE", "TYPOSTREAM_ALLOWLIST_FILE", "TYPOSTREAM_KNOWN_MALICIOUS_PATHS")
"""The variables ``scan`` reads besides its data dir (in-process tests unset them)."""


def environ(data_dir: Path, **extra: str) -> dict[str, str]:
    """This process's environment without any ``TYPOSTREAM_*`` variable, with ``data_dir`` and ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TYPOSTREAM_")}
    return {**env, "TYPOSTREAM_DATA_DIR": str(data_dir), **extra}


def scan_imports(data_dir: Path, cwd: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    """``python -m typostream.streams.cli scan ARGS`` under ``-X importtime``: the finished process
    (exit 0, else AssertionError with its stderr) and the top-level packages it imported."""
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "typostream.streams.cli", "scan", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=environ(data_dir),
        cwd=cwd,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    imported = {
        line.rsplit("|", 1)[1].strip().split(".")[0] for line in proc.stderr.splitlines() if "|" in line
    }
    assert "typostream" in imported, "no import of typostream seen: -X importtime wrote nothing?"
    return proc, imported
