"""``typostream advisories sync|status`` (installed entry point), ``scan`` using the index, and a real
worker (embedded stack) picking up a new index without a restart."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import SettingsFactory
from tests.integration.conftest import consume_all, produce, publish
from typostream.streams.config import Settings
from typostream.streams.stack.processes import free_port
from typostream.streams.worker_process import WorkerProcess

EXE = Path(sys.executable).with_name("typostream")
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "osv"
CHECKOUT = FIXTURES / "malicious-packages"  # real advisories, see tests/fixtures/osv/SOURCES.md
PLEX = "osv/malicious/npm/@ctrl/plex/MAL-2026-4377.json"
WITHDRAWN_PLEX = FIXTURES / "withdrawn" / "MAL-2026-4377.json"

pytestmark = pytest.mark.skipif(not EXE.exists(), reason="typostream entry point not installed")


def typostream(*args: str, data_dir: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("TYPOSTREAM_")}
    return subprocess.run(
        [str(EXE), *args],
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=120,
        env={**environ, "TYPOSTREAM_DATA_DIR": str(data_dir), **env},
    )


def scan_json(*specs: str, data_dir: Path, **env: str) -> list[dict[str, Any]]:
    proc = typostream("scan", "--registry", "npm", "--format", "json", *specs, data_dir=data_dir, **env)
    assert proc.returncode == 0, proc.stderr
    return [json.loads(line) for line in proc.stdout.splitlines()]


def targets(results: list[dict[str, Any]]) -> list[list[str]]:
    return [[t["target"] for t in r["threats"] if t["type"] == "malicious_package"] for r in results]


def test_sync_status_and_scan_use_the_index(tmp_path: Path) -> None:
    data = tmp_path / "data"
    missing = typostream("advisories", "status", data_dir=data)
    assert missing.returncode == 1 and "no advisory index at" in missing.stderr
    assert scan_json("@ctrl/plex@6.0.0", data_dir=data)[0]["verdict"] == "clean"  # seed only

    synced = typostream("advisories", "sync", str(CHECKOUT), data_dir=data)
    assert synced.returncode == 0, synced.stderr
    assert "5 advisories for 5 packages" in synced.stdout and "5 added" in synced.stdout
    results = scan_json("@ctrl/plex@6.0.0", "@ctrl/plex@6.0.1", "0-dns", "crossenv@6.1.1", data_dir=data)
    assert targets(results) == [["MAL-2026-4377"], [], ["MAL-2022-9"], ["TYPOSTREAM-SEED-2"]]
    assert results[0]["threats"][0]["evidence"] == (
        "MAL-2026-4377 (version 6.0.0 listed): Malicious code in @ctrl/plex (npm)"
    )
    extra = tmp_path / "extra.json"  # TYPOSTREAM_KNOWN_MALICIOUS_PATHS still adds to it
    extra.write_text(json.dumps({"id": "LOCAL-1", "affected": [
        {"package": {"ecosystem": "npm", "name": "@ctrl/plex"}, "versions": ["6.0.1"]}]}))  # fmt: skip
    both = scan_json("@ctrl/plex@6.0.1", data_dir=data, TYPOSTREAM_KNOWN_MALICIOUS_PATHS=str(extra))
    assert targets(both) == [["LOCAL-1"]]

    status = typostream("advisories", "status", "--format", "json", data_dir=data)
    assert status.returncode == 0, status.stderr
    doc = json.loads(status.stdout)
    assert (doc["exists"], doc["advisories"], doc["packages"], doc["generation"]) == (True, 5, 5, 1)
    assert doc["source"] == str(CHECKOUT) and doc["source_kind"] == "malicious-packages"
    assert doc["path"] == str(data / "advisories" / "index.sqlite") and doc["size_bytes"] > 0
    assert 0 <= doc["age_s"] < 120
    text = typostream("advisories", "status", data_dir=data)
    assert text.returncode == 0 and "5 for 5 packages" in text.stdout and "ago" in text.stdout


def test_sync_reports_invalid_files_with_exit_1_and_errors_with_exit_2(tmp_path: Path) -> None:
    data, tree = tmp_path / "data", Path(shutil.copytree(CHECKOUT, tmp_path / "tree"))
    (tree / "osv/malicious/pypi/bad/MAL-2099-1.json").parent.mkdir(parents=True)
    (tree / "osv/malicious/pypi/bad/MAL-2099-1.json").write_text("{")
    proc = typostream("advisories", "sync", str(tree), "--format", "json", data_dir=data)
    assert proc.returncode == 1
    report = json.loads(proc.stdout)
    assert report["advisories"] == 5 and [i["file"] for i in report["invalid"]] == [
        "pypi/bad/MAL-2099-1.json"
    ]
    assert proc.stderr.startswith("typostream: invalid advisory file pypi/bad/MAL-2099-1.json: not JSON")

    gone = typostream("advisories", "sync", str(tmp_path / "nowhere"), data_dir=data)
    assert gone.returncode == 2 and gone.stderr.splitlines() == [
        f"typostream: error: no such advisory source: {tmp_path / 'nowhere'} "
        "(an OSV directory, zip or JSON file)"
    ]
    other = tmp_path / "elsewhere"  # --dir / TYPOSTREAM_ADVISORIES_DIR put the index elsewhere
    assert typostream("advisories", "sync", str(CHECKOUT), "--dir", str(other), data_dir=data).returncode == 0
    assert (other / "index.sqlite").exists()
    via_env = scan_json("0-dns", data_dir=tmp_path / "empty", TYPOSTREAM_ADVISORIES_DIR=str(other))
    assert targets(via_env) == [["MAL-2022-9"]]


def test_a_damaged_index_is_an_error_for_scan_not_a_clean_answer(tmp_path: Path) -> None:
    data = tmp_path / "data"
    (data / "advisories").mkdir(parents=True)
    (data / "advisories" / "index.sqlite").write_bytes(b"garbage" * 1000)
    proc = typostream("scan", "--registry", "npm", "0-dns", data_dir=data)
    assert proc.returncode == 2 and proc.stderr.startswith("typostream: error: advisory index ")
    assert "unreadable" in proc.stderr and "advisories sync" in proc.stderr


# --- the worker --------------------------------------------------------------------------------------
@pytest.fixture
def worker_settings(settings_factory: SettingsFactory, tmp_path: Path) -> Settings:
    return settings_factory(
        clickhouse_dsn=f"chdb://{tmp_path / 'clickhouse'}",
        web_port=free_port(),
        sink_batch_seconds=0.2,
        advisories_refresh_s=0.5,
    )


@pytest.fixture
def worker(worker_settings: Settings) -> Iterator[WorkerProcess]:
    process = WorkerProcess(worker_settings).start()
    try:
        process.wait_ready(timeout_s=90)
        yield process
    finally:
        process.kill()


def scan_api(worker: WorkerProcess, *names: str) -> list[tuple[str, list[str]]]:
    body = json.dumps({"registry": "npm", "names": list(names)}).encode()
    request = urllib.request.Request(
        worker.base_url + "/api/v1/scan",
        data=body,
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        results = json.loads(response.read())["results"]
    return [(r["verdict"], [t["target"] for t in r["threats"]]) for r in results]


def eventually(check: Any, expected: Any, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while (got := check()) != expected and time.monotonic() < deadline:
        time.sleep(0.2)
    assert got == expected


@pytest.mark.integration
def test_a_running_worker_swaps_in_each_new_index(
    worker: WorkerProcess, worker_settings: Settings, tmp_path: Path
) -> None:
    """No index at start; a sync, then a withdrawal: the worker answers from each without a restart."""
    tree = Path(shutil.copytree(CHECKOUT, tmp_path / "tree"))
    assert scan_api(worker, "@ctrl/plex@6.0.0", "0-dns@1.0.0") == [("clean", []), ("clean", [])]
    pid = worker.process.pid if worker.process else None

    typostream("advisories", "sync", str(tree), data_dir=worker_settings.data_dir).check_returncode()
    eventually(lambda: scan_api(worker, "@ctrl/plex@6.0.0", "0-dns@1.0.0"), [
        ("malicious", ["MAL-2026-4377"]), ("malicious", ["MAL-2022-9"])])  # fmt: skip
    # the detect agent (publish → threats topic) asks the same index
    asyncio.run(produce(worker_settings, [publish("0-dns", "1.0.1", "npm")]))
    threats: list[Any] = []
    deadline = time.monotonic() + 60
    while not threats and time.monotonic() < deadline:
        threats = [t for t in asyncio.run(consume_all(worker_settings, worker_settings.topic_threats, 2.0))
                   if t["threat"]["technique"] == "known_malicious"]  # fmt: skip
    unique = {t["id"]: t for t in threats}.values()  # the topic is written at least once
    assert [(t["package"]["name"], t["threat"]["target"]) for t in unique] == [("0-dns", "MAL-2022-9")]

    shutil.copyfile(WITHDRAWN_PLEX, tree / PLEX)  # upstream withdraws a false positive
    resynced = typostream(
        "advisories", "sync", str(tree), "--format", "json", data_dir=worker_settings.data_dir
    )
    assert json.loads(resynced.stdout)["generation"] == 2
    eventually(lambda: scan_api(worker, "@ctrl/plex@6.0.0", "0-dns@1.0.0"), [
        ("clean", []), ("malicious", ["MAL-2022-9"])])  # fmt: skip
    assert worker.alive() and worker.process is not None and worker.process.pid == pid  # no restart
