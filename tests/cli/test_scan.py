"""CLI contract of ``typostream scan`` (subprocess of the installed entry point)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

EXE = Path(sys.executable).with_name("typostream")


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(EXE), "scan", *args], capture_output=True, text=True, timeout=120)


@pytest.mark.skipif(not EXE.exists(), reason="typostream entry point not installed")
class TestScanCli:
    def test_json_lines_and_exit_0(self) -> None:
        proc = run("--registry", "npm", "--format", "json", "lodahs", "react")
        assert proc.returncode == 0, proc.stderr
        lines = [json.loads(line) for line in proc.stdout.splitlines()]
        assert [x["name"] for x in lines] == ["lodahs", "react"]
        assert lines[0]["verdict"] == "suspicious" and lines[0]["threats"][0]["target"] == "lodash"
        assert lines[1] == {"name": "react", "registry": "npm", "verdict": "clean", "threats": []}

    def test_fail_on_and_json_alias(self) -> None:
        assert run("--registry", "pypi", "--json", "--fail-on", "high", "reqeusts").returncode == 1
        assert run("--registry", "pypi", "--json", "--fail-on", "critical", "requests").returncode == 0

    def test_usage_errors_exit_2(self, tmp_path: Path) -> None:
        for args in (
            ["--registry", "cargo", "x"],
            ["--registry", "npm"],
            ["--registry", "npm", "--file", "/nope"],
        ):
            proc = run(*args)
            assert proc.returncode == 2 and proc.stderr.strip().count("\n") == 0, proc.stderr
        bad = tmp_path / "package.json"
        bad.write_text("{not json")
        assert run("--registry", "npm", "--file", str(bad)).returncode == 2

    def test_requirements_and_package_json(self, tmp_path: Path) -> None:
        req = tmp_path / "requirements.txt"
        req.write_text("requests==2.31\nreqeusts>=1\n-e .\n")
        names = [json.loads(x)["name"] for x in run("-r", "pypi", "--file", str(req)).stdout.splitlines()]
        assert names == ["requests", "reqeusts"]
        pkg = tmp_path / "package.json"
        pkg.write_text(json.dumps({"dependencies": {"lodahs": "1"}, "devDependencies": {"jest": "1"}}))
        out = [json.loads(x) for x in run("-r", "npm", "--file", str(pkg)).stdout.splitlines()]
        assert [x["name"] for x in out] == ["lodahs", "jest"] and out[0]["verdict"] != "clean"

    def test_sarif_shape(self) -> None:
        proc = run("--registry", "npm", "--format", "sarif", "lodahs")
        log = json.loads(proc.stdout)
        assert log["version"] == "2.1.0" and log["runs"][0]["tool"]["driver"]["name"] == "typostream"
        result = log["runs"][0]["results"][0]
        rule_ids = {r["id"] for r in log["runs"][0]["tool"]["driver"]["rules"]}
        assert result["ruleId"] in rule_ids and result["level"] in {"note", "warning", "error"}

    def test_table(self) -> None:
        proc = run("--registry", "npm", "--format", "table", "lodahs")
        assert proc.returncode == 0 and "lodash" in proc.stdout


def test_known_malicious_package_is_reported_and_fails_the_gate() -> None:
    proc = run("--registry", "npm", "--json", "--fail-on", "critical", "crossenv")
    assert proc.returncode == 1, proc.stderr
    [line] = proc.stdout.splitlines()
    result = json.loads(line)
    assert result["verdict"] == "malicious"
    assert result["threats"][0]["type"] == "malicious_package"
    assert any(t["type"] == "typosquat" and t["target"] == "cross-env" for t in result["threats"])
