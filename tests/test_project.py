"""Guards that keep docs, packaging and config from drifting apart."""

from __future__ import annotations

import re
import tomllib
from dataclasses import fields
from pathlib import Path

from typostream.streams.config import Settings

ROOT = Path(__file__).resolve().parent.parent
PACKAGE_ROOTS = {"streams", "agents", "schemas", "data"}


def test_every_package_dir_is_listed_in_pyproject() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(config["packages"])
    on_disk = {
        "typostream." + ".".join(init.parent.relative_to(ROOT).parts)
        for root in PACKAGE_ROOTS
        for init in (ROOT / root).rglob("__init__.py")
    }
    assert on_disk == listed
    assert set(config["package-dir"]) == {f"typostream.{r}" for r in PACKAGE_ROOTS}


def test_readme_documents_every_setting() -> None:
    readme = (ROOT / "README.md").read_text()
    documented = set(re.findall(r"TYPOSTREAM_([A-Z_]+)", readme))
    settings = {f.name.upper() for f in fields(Settings)}
    assert settings - documented == set()
    # test-harness switches (fault suite profile, full live run) are documented but are not settings
    assert documented - settings - {"FAULTS", "FULL_E2E"} == set()


def test_readme_opens_with_the_commands_ci_runs() -> None:
    readme = (ROOT / "README.md").read_text()
    commands = re.search(r"```bash\n(.*?)```", readme, re.S)
    assert commands is not None
    install_and_demo, tests = [line.split("#")[0].strip() for line in commands.group(1).strip().splitlines()]
    assert install_and_demo == "bash .ci/install && .venv/bin/typostream demo"
    ci = (ROOT / ".ci" / "run").read_text()
    assert "bash .ci/install" in ci
    assert tests in ci


def test_readme_detector_table_is_generated_from_the_registry() -> None:
    from typostream.streams.cli.detectors import markdown_table

    readme = (ROOT / "README.md").read_text()
    block = re.search(r"<!-- detectors:start -->\n(.*?)\n<!-- detectors:end -->", readme, re.S)
    assert block is not None
    assert block.group(1).strip() == markdown_table()


def test_readme_context_detector_table_is_generated_from_the_registry() -> None:
    from typostream.streams.cli.detectors import context_markdown_table

    readme = (ROOT / "README.md").read_text()
    block = re.search(
        r"<!-- context-detectors:start -->\n(.*?)\n<!-- context-detectors:end -->", readme, re.S
    )
    assert block is not None
    assert block.group(1).strip() == context_markdown_table()


def test_wheel_ships_every_data_file(tmp_path: Path) -> None:
    """``pip install .`` (not editable) must carry schemas, DDL, snapshots and the sample feed."""
    import shutil
    import subprocess
    import sys
    import zipfile

    tracked = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    source = tmp_path / "src"  # a clean copy: an in-tree build/ would hide missing package data
    for path in tracked:
        if (ROOT / path).is_file():
            (source / path).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / path, source / path)
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(tmp_path), str(source)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    [wheel] = tmp_path.glob("typostream-*.whl")
    shipped = set(zipfile.ZipFile(wheel).namelist())
    expected = {f"typostream/{path}" for path in tracked if path.split("/")[0] in PACKAGE_ROOTS}
    assert expected - shipped == set()
    assert not [name for name in shipped if name.split("/")[0] in PACKAGE_ROOTS]  # nothing bare
