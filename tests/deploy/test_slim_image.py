"""The server-backed image installs typostream without chDB (the ``embedded`` extra).

An interpreter in which ``import chdb`` fails the way it does when the package is not installed
stands in for that image: every module must still import, and a ``chdb://`` DSN must fail with a
ConfigError naming the extra instead of a driver error.
"""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# Makes `import chdb` (and its submodules) raise ModuleNotFoundError, as when it is not installed.
NO_CHDB = textwrap.dedent(
    """
    import importlib.abc, sys

    class _NoChdb(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name == "chdb" or name.startswith("chdb.") or name.startswith("chdb_core"):
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)
            return None

    sys.meta_path.insert(0, _NoChdb())
    """
)


def run_without_chdb(code: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", NO_CHDB + textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )


def test_chdb_dsn_without_chdb_is_a_config_error_naming_the_extra(tmp_path: Path) -> None:
    result = run_without_chdb(
        """
        from pathlib import Path
        from typostream.agents.adapters.clickhouse import ClickHouseConnection
        from typostream.agents.domain.errors import ConfigError
        for dsn in ("chdb://", "chdb://memory"):
            try:
                ClickHouseConnection.open(dsn, Path("ch"))
            except ConfigError as exc:
                print("ConfigError:", exc)
            else:
                raise SystemExit(f"{dsn}: opened without chdb")
        """,
        tmp_path,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 2
    for line in lines:
        assert line.startswith("ConfigError: "), line
        assert "typostream[embedded]" in line, line
    assert not (tmp_path / "ch").exists()  # nothing created for an engine that cannot run


def test_server_dsn_and_every_module_need_no_chdb(tmp_path: Path) -> None:
    result = run_without_chdb(
        """
        import importlib, pkgutil
        import typostream.agents, typostream.streams
        from typostream.streams.cli import main  # the console entry point
        for package in (typostream.agents, typostream.streams):
            for module in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
                if not module.name.endswith(".__main__"):  # that one runs the CLI
                    importlib.import_module(module.name)
        from pathlib import Path
        from typostream.agents.adapters.clickhouse import parse_dsn
        from typostream.agents.domain.errors import StoreUnavailableError
        from typostream.agents.adapters.clickhouse import ClickHouseConnection
        # A server DSN goes to the HTTP driver: nothing listens on port 9 here.
        try:
            ClickHouseConnection.open("http://u:p@127.0.0.1:9/db", Path("ch"))
        except StoreUnavailableError as exc:
            print("unavailable:", exc)
        """,
        tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("unavailable: cannot open ClickHouse at http://u:***@127.0.0.1:9/db")


def test_chdb_is_the_embedded_extra() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert not any(d.startswith("clickhouse-connect[") for d in project["dependencies"])
    assert any(re.fullmatch(r"clickhouse-connect>=[\d.]+", d) for d in project["dependencies"])
    assert any(d.startswith("clickhouse-connect[chdb]") for d in project["optional-dependencies"]["embedded"])
    install = (ROOT / ".ci" / "install").read_text()
    pip_lines = [line for line in install.splitlines() if "pip install" in line]
    assert len(pip_lines) == 1 and "-e '.[dev,embedded]'" in pip_lines[0]


def test_dockerfile_server_target_has_no_chdb() -> None:
    text = (ROOT / "deploy" / "Dockerfile").read_text()
    stages = dict(re.findall(r"^FROM \S+ AS (\w+)\n(.*?)(?=^FROM |\Z)", text, flags=re.M | re.S))
    assert {"server", "embedded"} <= set(stages)
    installs = {name: re.findall(r"pip install (\S+)", body) for name, body in stages.items()}
    assert installs["server"] == ["."]
    assert installs["embedded"] == ["'.[embedded]'"]
    # `docker build` without --target builds the last stage: the slim server image.
    assert list(stages)[-1] == "server"
