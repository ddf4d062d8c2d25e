"""Bad configuration or unreachable servers: the CLI exits 2 with one readable line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from typostream.streams.stack import StackState


def typostream(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "typostream.streams.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
    )


def test_worker_with_unreachable_kafka_exits_2(tmp_path: Path) -> None:
    proc = typostream("worker", "--data-dir", str(tmp_path), "--kafka", "127.0.0.1:1")
    assert proc.returncode == 2
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("typostream: error: cannot start the worker:") and "bootstrap" in last


@pytest.mark.integration
def test_worker_with_missing_advisory_path_exits_2(tmp_path: Path, embedded_stack: StackState) -> None:
    env = {"TYPOSTREAM_KNOWN_MALICIOUS_PATHS": str(tmp_path / "missing")}
    proc = typostream(
        "worker", "--data-dir", str(tmp_path), "--kafka", embedded_stack.kafka_bootstrap, env=env
    )
    assert proc.returncode == 2
    last = proc.stderr.strip().splitlines()[-1]
    reason = f"no such advisory file or directory: {tmp_path / 'missing'}"
    assert last == f"typostream: error: cannot start the worker: {reason}"


def test_bad_env_value_is_one_line(tmp_path: Path) -> None:
    proc = typostream("config", "--data-dir", str(tmp_path), env={"TYPOSTREAM_PARTITIONS": "many"})
    assert proc.returncode == 2
    assert proc.stderr.strip() == "typostream: error: TYPOSTREAM_PARTITIONS='many' is not a valid int"


def test_produce_missing_file_is_one_line(tmp_path: Path) -> None:
    proc = typostream("produce", "--file", str(tmp_path / "nope.jsonl"), "--data-dir", str(tmp_path))
    assert proc.returncode == 2
    assert proc.stderr.strip().startswith("typostream: error: cannot read")


def test_query_rejects_writes(tmp_path: Path) -> None:
    proc = typostream("query", "DROP TABLE events", "--data-dir", str(tmp_path))
    assert proc.returncode == 2
    assert "read-only" in proc.stderr
