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
        assert lines[1] == {
            "name": "react",
            "version": None,
            "registry": "npm",
            "verdict": "clean",
            "threats": [],
        }

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
        out = [json.loads(x) for x in run("-r", "pypi", "--file", str(req)).stdout.splitlines()]
        assert [(x["name"], x["version"], x["line"]) for x in out] == [
            ("requests", "2.31", 1),
            ("reqeusts", None, 2),
        ]
        pkg = tmp_path / "package.json"
        pkg.write_text(json.dumps({"dependencies": {"lodahs": "1"}, "devDependencies": {"jest": "1"}}))
        out = [json.loads(x) for x in run("-r", "npm", "--file", str(pkg)).stdout.splitlines()]
        assert [x["name"] for x in out] == ["lodahs", "jest"] and out[0]["verdict"] != "clean"
        assert out[0]["file"] == "package.json" and out[0]["line"] == 1

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

    def test_json_output(self) -> None:
        """Captured from ``scan`` before output formats became plug-ins, plus the version (issue 11)."""
        proc = run("--registry", "npm", "--format", "json", "lodahs", "react")
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout == (
            '{"name": "lodahs", "version": null, "registry": "npm", "verdict": "suspicious", "threats": '
            '[{"type": "typosquat", "target": "lodash", "technique": "transposition", "score": 0.78, '
            '"severity": "high", "evidence": "transposition: \'lodahs\' swaps \'sh\' at position 5 (target '
            "'lodash', popular npm package #145)\"}]}\n"
            '{"name": "react", "version": null, "registry": "npm", "verdict": "clean", "threats": []}\n'
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
            assert other == {
                "name": "rails",
                "version": None,
                "registry": "rubygems",
                "verdict": "clean",
                "threats": [],
            }

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


# --- issue 11: versions, manifests and lockfiles, project walks, SARIF ---------------------------
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "manifests"
SARIF_SCHEMA = json.loads((FIXTURES.parent / "sarif" / "sarif-schema-2.1.0.json").read_text())


def json_lines(proc: subprocess.CompletedProcess[str]) -> list[dict]:
    return [json.loads(line) for line in proc.stdout.splitlines()]


@pytest.mark.skipif(not EXE.exists(), reason="typostream entry point not installed")
class TestVersions:
    @pytest.mark.parametrize("name", ["requirements.txt", "deps.txt"])
    def test_a_pinned_malicious_version_in_a_requirements_file(self, tmp_path: Path, name: str) -> None:
        """Reported clean before: the pin was thrown away (and ``deps.txt`` read ``ctx==0.2.6`` as a name)."""
        path = tmp_path / name
        path.write_text("requests>=2\nctx==0.2.6\n")
        proc = run("--registry", "pypi", "--file", str(path), "--fail-on", "critical")
        assert proc.returncode == 1, proc.stderr
        ctx = json_lines(proc)[1]
        assert (ctx["name"], ctx["version"], ctx["verdict"], ctx["file"], ctx["line"]) == (
            "ctx", "0.2.6", "malicious", name, 2
        )  # fmt: skip
        assert ctx["threats"][0]["target"] == "TYPOSTREAM-SEED-7"

    def test_a_malicious_exact_version_in_package_json(self, tmp_path: Path) -> None:
        (tmp_path / "package.json").write_text(
            '{\n  "dependencies": {\n    "ua-parser-js": "0.7.29"\n  }\n}\n'
        )
        proc = run(str(tmp_path / "package.json"), "--fail-on", "critical")
        assert proc.returncode == 1, proc.stderr
        [result] = json_lines(proc)
        assert (result["version"], result["verdict"], result["line"]) == ("0.7.29", "malicious", 3)

    @pytest.mark.parametrize(
        ("registry", "spec", "version", "verdict"),
        [
            ("npm", "ua-parser-js@0.7.29", "0.7.29", "malicious"),
            ("npm", "ua-parser-js@0.7.30", "0.7.30", "clean"),
            ("npm", "@types/node@20.11.30", "20.11.30", "clean"),
            ("pypi", "ctx==0.2.6", "0.2.6", "malicious"),
            ("pypi", "ctx==0.2.7", "0.2.7", "clean"),
            ("pypi", "ctx>=0.2", None, "clean"),
        ],
    )
    def test_versions_on_the_command_line(
        self, registry: str, spec: str, version: str | None, verdict: str
    ) -> None:
        proc = run("--registry", registry, spec)
        assert proc.returncode == 0, proc.stderr
        [result] = json_lines(proc)
        assert (result["version"], result["verdict"]) == (version, verdict)
        assert "file" not in result

    def test_a_bad_spec_is_one_line(self) -> None:
        assert "not a PyPI requirement" in error_line(run("--registry", "pypi", "requests >="))


@pytest.mark.skipif(not EXE.exists(), reason="typostream entry point not installed")
class TestManifests:
    def test_a_lockfile_yields_its_packages_not_its_syntax(self, tmp_path: Path) -> None:
        """``package-lock.json`` used to yield "names" like ``{`` and report them clean."""
        proc = run(str(FIXTURES / "npm-v3" / "package-lock.json"))
        assert proc.returncode == 0, proc.stderr
        found = {(r["name"], r["version"]): r for r in json_lines(proc)}
        assert set(found) == {
            ("@types/node", "20.11.30"), ("express", "4.18.2"), ("debug", "2.6.9"), ("crossenv", "6.1.1"),
            ("ua-parser-js", "0.7.29"), ("undici-types", "5.26.5"),
        }  # fmt: skip
        assert found[("crossenv", "6.1.1")]["verdict"] == "malicious"
        assert found[("ua-parser-js", "0.7.29")]["line"] == 65

    def test_a_squat_inside_a_lockfile_is_found(self) -> None:
        proc = run(str(FIXTURES / "yarn-v1" / "yarn.lock"), "--fail-on", "high")
        assert proc.returncode == 1, proc.stderr
        lodahs = next(r for r in json_lines(proc) if r["name"] == "lodahs")
        assert lodahs["threats"][0]["target"] == "lodash" and lodahs["line"] == 23

    @pytest.mark.parametrize(
        "fixture",
        sorted(p.relative_to(FIXTURES / "malformed").as_posix() for p in (FIXTURES / "malformed").rglob("*")
               if p.is_file() and p.name != "b.txt"),
    )  # fmt: skip
    def test_an_unparsable_file_exits_2_naming_it(self, fixture: str) -> None:
        line = error_line(run(str(FIXTURES / "malformed" / fixture)))
        assert line.startswith("typostream: error: ")
        assert Path(fixture).name in line or "b.txt" in line  # the cycle is seen in the included file

    def test_a_deeply_nested_package_json_is_one_line(self, tmp_path: Path) -> None:
        """Issue 9: a RecursionError traceback was printed (and the exit code was 1)."""
        path = tmp_path / "package.json"
        path.write_text('{"dependencies":' * 100_000 + "1" + "}" * 100_000)
        for args in ([str(path)], ["--registry", "npm", "--file", str(path)]):
            line = error_line(run(*args))
            assert "package.json: not valid JSON: depth limit exceeded" in line
            assert "Traceback" not in line

    def test_format_in_and_registry_conflicts(self, tmp_path: Path) -> None:
        path = tmp_path / "deps.lst"
        path.write_text("pkg==1.0\n")
        proc = run("--file", str(path), "--format-in", "requirements")
        assert proc.returncode == 0, proc.stderr
        assert json_lines(proc)[0]["version"] == "1.0"
        assert "is a pypi manifest" in error_line(
            run("--registry", "npm", "--file", str(FIXTURES / "pip" / "requirements-base.txt"))
        )
        assert "--format-in applies to files" in error_line(run(str(tmp_path), "--format-in", "requirements"))
        assert "is a path" in error_line(run("--registry", "npm", "."))


@pytest.mark.skipif(not EXE.exists(), reason="typostream entry point not installed")
class TestProjectWalk:
    @pytest.fixture
    def project(self, tmp_path: Path) -> Path:
        root = tmp_path / "proj"
        files = {
            "package.json": (
                '{\n  "dependencies": {\n    "lodahs": "^4.17.21",\n    "react": "18.2.0"\n  }\n}\n'
            ),
            "services/api/requirements.txt": "# api\nflask==3.0.2\nctx==0.2.6\n",
            "services/api/pyproject.toml": '[project]\nname = "api"\ndependencies = [\n  "reqeusts>=2",\n]\n',
            "node_modules/evil/package.json": '{"dependencies": {"crossenv": "1.0.0"}}',
            ".venv/pyvenv.cfg": "home = /usr/bin\n",
            ".venv/requirements.txt": "colourama\n",
            ".gitignore": "generated/\n",
            "generated/requirements.txt": "jeIlyfish\n",
        }
        for rel, text in files.items():
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / rel).write_text(text)
        return root

    def test_every_manifest_with_its_file_and_line(self, project: Path) -> None:
        proc = run(str(project))
        assert proc.returncode == 0, proc.stderr
        assert [
            (r["file"], r["line"], r["registry"], r["name"], r["version"], r["verdict"])
            for r in json_lines(proc)
        ] == [
            ("package.json", 3, "npm", "lodahs", None, "suspicious"),
            ("package.json", 4, "npm", "react", "18.2.0", "clean"),
            ("services/api/pyproject.toml", 4, "pypi", "reqeusts", None, "malicious"),
            ("services/api/requirements.txt", 2, "pypi", "flask", "3.0.2", "clean"),
            ("services/api/requirements.txt", 3, "pypi", "ctx", "0.2.6", "malicious"),
        ]  # node_modules, the virtualenv and the .gitignored folder are skipped

    def test_sarif_for_code_scanning(self, project: Path) -> None:
        from jsonschema import Draft4Validator

        proc = subprocess.run(
            [str(EXE), "scan", ".", "--format", "sarif"],
            capture_output=True,
            text=True,
            cwd=project,
            timeout=120,
        )
        assert proc.returncode == 0, proc.stderr
        log = json.loads(proc.stdout)
        Draft4Validator(SARIF_SCHEMA).validate(log)
        run_ = log["runs"][0]
        rule_ids = {r["id"] for r in run_["tool"]["driver"]["rules"]}
        assert {"malicious_package.known_malicious", "typosquat.omission"} <= rule_ids
        assert any(r.startswith("suspicious_pattern.") for r in rule_ids)
        locations = [
            (r["ruleId"], r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
             r["locations"][0]["physicalLocation"]["region"]["startLine"])
            for r in run_["results"]
        ]  # fmt: skip
        assert ("malicious_package.known_malicious", "services/api/requirements.txt", 3) in locations
        assert all(not uri.startswith("/") and "://" not in uri for _, uri, _ in locations)
        assert run_["originalUriBaseIds"]["%SRCROOT%"]["uri"] == project.resolve().as_uri() + "/"
        assert all(
            r["ruleId"] in rule_ids and r["partialFingerprints"]["typostream/v1"] for r in run_["results"]
        )

    def test_a_directory_without_manifests_is_an_error(self, tmp_path: Path) -> None:
        (tmp_path / "README.md").write_text("nothing here\n")
        assert "no manifest or lockfile found" in error_line(run(str(tmp_path)))
        assert "no such file or directory" in error_line(run(str(tmp_path / "missing")))

    def test_table_escapes_terminal_sequences(self) -> None:
        """Issue 9: ``scan --format table`` printed raw terminal escape sequences found in names."""
        proc = run("--registry", "npm", "--format", "table", "lod\x1b[31mahs\x1b]0;pwned\x07")
        assert proc.returncode == 0, proc.stderr
        assert "\x1b" not in proc.stdout and "\x07" not in proc.stdout
        assert "lod\\x1b[31mahs\\x1b]0;pwned\\x07" in proc.stdout
