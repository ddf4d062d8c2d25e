"""CLI contract of ``typostream scan`` (subprocess of the installed entry point)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

EXE = Path(sys.executable).with_name("typostream")
# settings scan reads from the environment: unset unless a test sets them
SCAN_ENV = ("TYPOSTREAM_WATCHLIST_FILE", "TYPOSTREAM_ALLOWLIST_FILE", "TYPOSTREAM_KNOWN_MALICIOUS_PATHS")


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if k not in SCAN_ENV}
    return subprocess.run(
        [str(EXE), "scan", *args],
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=120,
        env={**environ, **(env or {})},
    )


def error_line(proc: subprocess.CompletedProcess[str]) -> str:
    """The one stderr line of a usage/input error (exit 2)."""
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    return lines[0]


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

    def test_json_output_unchanged(self) -> None:
        """Captured from ``scan`` before output formats became plug-ins (streams/reports)."""
        proc = run("--registry", "npm", "--format", "json", "lodahs", "react")
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout == (
            '{"name": "lodahs", "registry": "npm", "verdict": "suspicious", "threats": [{"type": '
            '"typosquat", "target": "lodash", "technique": "transposition", "score": 0.78, "severity": '
            '"high", "evidence": "transposition: \'lodahs\' swaps \'sh\' at position 5 (target '
            "'lodash', popular npm package #145)\"}]}\n"
            '{"name": "react", "registry": "npm", "verdict": "clean", "threats": []}\n'
        )

    def test_unknown_format_and_severity_are_usage_errors(self) -> None:
        assert run("--registry", "npm", "--format", "xml", "x").returncode == 2
        assert run("--registry", "npm", "--fail-on", "severe", "x").returncode == 2


class TestSettingsReachScan:
    """``scan`` reads the worker's settings (TYPOSTREAM_*), so both answer a name the same way."""

    NAME = "acme-internal-utlis"

    def test_watchlist_from_the_environment(self, tmp_path: Path) -> None:
        watchlist = tmp_path / "internal.txt"
        watchlist.write_text("acme-internal-utils\n")
        clean = run("--registry", "npm", self.NAME)
        assert clean.returncode == 0, clean.stderr
        assert json.loads(clean.stdout)["verdict"] == "clean"
        proc = run("--registry", "npm", self.NAME, env={"TYPOSTREAM_WATCHLIST_FILE": str(watchlist)})
        assert proc.returncode == 0, proc.stderr
        result = json.loads(proc.stdout)
        assert result["verdict"] != "clean"
        assert result["threats"][0]["target"] == "acme-internal-utils"

    def test_the_flag_overrides_the_environment(self, tmp_path: Path) -> None:
        (tmp_path / "internal.txt").write_text("acme-internal-utils\n")
        (tmp_path / "other.txt").write_text("something-else-entirely\n")
        env = {"TYPOSTREAM_WATCHLIST_FILE": str(tmp_path / "internal.txt")}
        proc = run("--registry", "npm", "--watchlist", str(tmp_path / "other.txt"), self.NAME, env=env)
        assert proc.returncode == 0, proc.stderr
        assert json.loads(proc.stdout)["verdict"] == "clean"

    def test_allowlist_from_the_environment(self, tmp_path: Path) -> None:
        allowlist = tmp_path / "allow.txt"
        allowlist.write_text("lodahs\n")
        proc = run("--registry", "npm", "lodahs", env={"TYPOSTREAM_ALLOWLIST_FILE": str(allowlist)})
        assert proc.returncode == 0, proc.stderr
        assert json.loads(proc.stdout)["verdict"] == "clean"

    def test_unreadable_watchlist_from_the_environment_is_one_line(self, tmp_path: Path) -> None:
        env = {"TYPOSTREAM_WATCHLIST_FILE": str(tmp_path / "missing.txt")}
        assert "missing.txt" in error_line(run("--registry", "npm", "x", env=env))


class TestWatchlistOnlyRegistry:
    """rubygems has no bundled popular-name index: scan refuses it rather than answer "clean"."""

    def test_without_a_watchlist_exit_2_with_one_line(self) -> None:
        line = error_line(run("--registry", "rubygems", "rails"))
        assert line == "typostream: error: rubygems has no bundled popular-name index; pass --watchlist FILE"

    def test_with_an_empty_watchlist_exit_2(self, tmp_path: Path) -> None:
        empty = tmp_path / "gems.txt"
        empty.write_text("# nothing yet\n")
        line = error_line(run("--registry", "rubygems", "--watchlist", str(empty), "rails"))
        assert "rubygems" in line and "lists no names" in line

    def test_with_a_watchlist_it_scans(self, tmp_path: Path) -> None:
        watchlist = tmp_path / "gems.txt"
        watchlist.write_text("acme-gem\n")
        for args, env in (
            (["--watchlist", str(watchlist)], None),
            ([], {"TYPOSTREAM_WATCHLIST_FILE": str(watchlist)}),
        ):
            proc = run("--registry", "rubygems", *args, "--fail-on", "high", "acme-gen", "rails", env=env)
            assert proc.returncode == 1, proc.stderr
            squat, other = (json.loads(line) for line in proc.stdout.splitlines())
            assert squat["registry"] == "rubygems" and squat["threats"][0]["target"] == "acme-gem"
            assert other == {"name": "rails", "registry": "rubygems", "verdict": "clean", "threats": []}

    def test_help_lists_registries_from_the_vocabulary(self) -> None:
        proc = run("--help")
        assert proc.returncode == 0 and "rubygems" in proc.stdout and "pypi" in proc.stdout


def test_known_malicious_package_is_reported_and_fails_the_gate() -> None:
    proc = run("--registry", "npm", "--json", "--fail-on", "critical", "crossenv")
    assert proc.returncode == 1, proc.stderr
    [line] = proc.stdout.splitlines()
    result = json.loads(line)
    assert result["verdict"] == "malicious"
    assert result["threats"][0]["type"] == "malicious_package"
    assert any(t["type"] == "typosquat" and t["target"] == "cross-env" for t in result["threats"])
