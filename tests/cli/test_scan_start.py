"""``typostream scan`` starts from the index cache and imports no worker library (subprocesses of
the installed entry point, each with its own data dir)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli.scan_processes import EXE, environ, scan_imports
from typostream.agents.adapters.index_cache import IndexCache, encode
from typostream.agents.domain.detection.detector import build_index

WORKER_LIBRARIES = ("faust", "mode", "aiokafka", "clickhouse_connect", "chdb", "aiohttp", "yarl", "redis")

pytestmark = pytest.mark.skipif(not EXE.exists(), reason="typostream entry point not installed")


def scan(data_dir: Path, cwd: Path, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(EXE), "scan", "--format", "json", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=environ(data_dir, **extra),
        cwd=cwd,
    )


def cached(data_dir: Path) -> list[str]:
    """Registries with a cache file."""
    return sorted(p.name.split("-")[1] for p in (data_dir / "cache").glob("detector-*.bin"))


def test_a_second_scan_reads_the_cache(tmp_path: Path) -> None:
    data = tmp_path / "data"
    first = scan(data, tmp_path, "-r", "pypi", "acme-internal-sdc")
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout)["verdict"] == "clean"
    assert cached(data) == ["pypi"]  # only the registry scanned was built (and written)
    # Put a different (valid) index where the second scan will look: one that watches
    # acme-internal-sdk. Only a scan that reads the cache file can flag the near miss.
    path = IndexCache(data / "cache").path("pypi", ())
    path.write_bytes(encode(build_index("pypi", ["acme-internal-sdk"]), path.stem.rsplit("-", 1)[1]))
    second = scan(data, tmp_path, "-r", "pypi", "acme-internal-sdc")
    assert second.returncode == 0, second.stderr
    result = json.loads(second.stdout)
    assert result["verdict"] != "clean" and result["threats"][0]["target"] == "acme-internal-sdk"


def test_a_watchlist_gets_its_own_cache_entry_and_works(tmp_path: Path) -> None:
    data = tmp_path / "data"
    watchlist = tmp_path / "watch.txt"
    watchlist.write_text("acme-internal-sdk\n")
    for _ in range(2):  # cold, then from the cache
        proc = scan(data, tmp_path, "-r", "pypi", "--watchlist", str(watchlist), "acme-internal-sdc")
        assert proc.returncode == 0, proc.stderr
        assert json.loads(proc.stdout)["threats"][0]["target"] == "acme-internal-sdk"
    watchlist.write_text("acme-other\n")  # a changed watchlist: a new entry, the old name no longer watched
    proc = scan(data, tmp_path, "-r", "pypi", "--watchlist", str(watchlist), "acme-internal-sdc")
    assert json.loads(proc.stdout)["verdict"] == "clean"
    assert cached(data) == ["pypi", "pypi"]


def test_a_damaged_cache_is_rebuilt_silently(tmp_path: Path) -> None:
    data = tmp_path / "data"
    assert scan(data, tmp_path, "-r", "npm", "lodahs").returncode == 0
    (path,) = (data / "cache").glob("detector-npm-*.bin")
    path.write_bytes(path.read_bytes()[:1000])
    proc = scan(data, tmp_path, "-r", "npm", "lodahs")
    assert proc.returncode == 0 and proc.stderr == ""
    assert json.loads(proc.stdout)["threats"][0]["target"] == "lodash"
    assert path.stat().st_size > 1000  # rewritten


def test_cache_off_and_an_unusable_data_dir(tmp_path: Path) -> None:
    off = scan(tmp_path / "off", tmp_path, "-r", "pypi", "reqeusts", TYPOSTREAM_DETECTOR_CACHE="false")
    assert off.returncode == 0, off.stderr
    assert not (tmp_path / "off" / "cache").exists()
    data = tmp_path / "data"
    data.mkdir()
    (data / "cache").write_text("")  # the cache dir cannot be made: indexes are built in memory
    proc = scan(data, tmp_path, "-r", "pypi", "reqeusts")
    assert proc.returncode == 0 and proc.stderr == ""
    assert json.loads(proc.stdout)["threats"][0]["target"] == "requests"


def test_scan_imports_no_worker_library(tmp_path: Path) -> None:
    """Regression: ``typostream scan`` imported every command module (Faust, aiokafka, ClickHouse,
    aiohttp...) through the CLI package and ``Settings`` (the stack package's manager)."""
    _, imported = scan_imports(tmp_path / "data", tmp_path, "-r", "pypi", "requests")
    assert imported.isdisjoint(WORKER_LIBRARIES), sorted(imported & set(WORKER_LIBRARIES))


def test_every_other_command_is_still_there(tmp_path: Path) -> None:
    code = (
        "import typer\n"
        "from typostream.streams.cli.app import cli\n"
        "print(' '.join(sorted(typer.main.get_command(cli).commands)))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stderr
    commands = set(proc.stdout.split())
    assert {"scan", "worker", "stack", "alerts", "query", "detectors", "guard", "feed"} <= commands
    helped = subprocess.run([str(EXE), "--help"], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert helped.returncode == 0 and "scan" in helped.stdout and "worker" in helped.stdout


def test_every_command_module_is_listed() -> None:
    """A command module missing from ``app.COMMAND_MODULES`` would silently lose its commands."""
    from typostream.streams.cli import app

    folder = Path(app.__file__).parent
    helpers = {"__init__", "__main__", "app", "options", "scanner"}  # scanner: scan's Typer-free core
    modules = {p.stem for p in folder.glob("*.py")} - helpers
    assert modules == set(app.COMMAND_MODULES)
