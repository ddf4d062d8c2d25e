"""``typostream guard``: install-time checks against a local index on 127.0.0.1.

One fixture server plays both registries: a PEP 503 simple index with the PyPI JSON API
(``/simple/``, ``/files/``, ``/pypi/<name>/<version>/json``) and an npm registry under ``/npm/``
(packuments with ``time``, tarballs). The packages (``tests/fixtures/guard/packages.json``) are
real, tiny wheels, sdists and npm tarballs built here; the real pip (this venv's) and npm run
against it. The pure parsers of :mod:`typostream.agents.domain.resolution` are tested at the end.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import pty
import re
import shutil
import subprocess
import sys
import tarfile
import threading
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest

from typostream.agents.adapters.registry import RegistryClient
from typostream.agents.domain.errors import ResolutionError
from typostream.agents.domain.resolution import (
    age_days,
    installer_error_line,
    npm_local_path,
    npm_manifest_local_paths,
    npm_plan,
    npm_publish_time,
    npm_resolution_argv,
    parse_install_command,
    parse_npm_lock,
    parse_pip_report,
    pip_requested,
    pip_resolution_argv,
    pypi_upload_time,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "guard"
EXE = Path(sys.executable).with_name("typostream")
NPM = shutil.which("npm")
needs_exe = pytest.mark.skipif(not EXE.exists(), reason="typostream entry point not installed")
needs_npm = pytest.mark.skipif(NPM is None, reason="npm is not installed")


# --- the fixture index -----------------------------------------------------------------------------
def _normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _published(days: float | None) -> str | None:
    if days is None:
        return None
    return (datetime.now(UTC) - timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _wheel(name: str, version: str, requires: list[str]) -> tuple[str, bytes]:
    dist = re.sub(r"[-_.]+", "_", name)
    info = f"{dist}-{version}.dist-info"
    metadata = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
    metadata += "".join(f"Requires-Dist: {r}\n" for r in requires)
    files = {
        f"{dist}/__init__.py": f"NAME = {name!r}\n".encode(),
        f"{info}/METADATA": metadata.encode(),
        f"{info}/WHEEL": b"Wheel-Version: 1.0\nGenerator: typostream-tests\nRoot-Is-Purelib: true\n"
        b"Tag: py3-none-any\n",
    }
    record = "".join(
        f"{path},sha256={base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b'=').decode()},"
        f"{len(data)}\n"
        for path, data in files.items()
    )
    files[f"{info}/RECORD"] = (record + f"{info}/RECORD,,\n").encode()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path, data in files.items():
            archive.writestr(path, data)
    return f"{dist}-{version}-py3-none-any.whl", buffer.getvalue()


def _tar(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for path, data in files.items():
            member = tarfile.TarInfo(path)
            member.size = len(data)
            member.mode = 0o644
            archive.addfile(member, io.BytesIO(data))
    return buffer.getvalue()


def _sdist(name: str, version: str) -> tuple[str, bytes]:
    """A source distribution whose in-tree build backend marks that it ran."""
    base = f"{re.sub(r'[-_.]+', '_', name)}-{version}"
    return f"{base}.tar.gz", _tar(
        {
            f"{base}/pyproject.toml": b'[build-system]\nrequires = []\nbuild-backend = "marker_backend"\n'
            b'backend-path = ["."]\n',
            f"{base}/marker_backend.py": (FIXTURES / "marker_backend.py").read_bytes(),
            f"{base}/PKG-INFO": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode(),
        }
    )


@dataclass
class Index:
    """The served files and documents, and every path requested (to see what an installer fetched)."""

    files: dict[str, bytes] = field(default_factory=dict)
    simple: dict[str, list[str]] = field(default_factory=dict)
    pypi_json: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    packuments: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[str] = field(default_factory=list)
    url: str = ""


def _build_index() -> Index:
    spec = json.loads((FIXTURES / "packages.json").read_text())
    index = Index()
    for package in spec["pypi"]:
        name, version = package["name"], package["version"]
        if package["kind"] == "wheel":
            filename, data = _wheel(name, version, package["requires"])
        else:
            filename, data = _sdist(name, version)
        index.files[f"/files/{filename}"] = data
        index.simple.setdefault(_normalize(name), []).append(filename)
        uploaded = _published(package["published_days_ago"])
        if uploaded is not None:
            index.pypi_json[(_normalize(name), version)] = {
                "info": {"name": name, "version": version, "summary": ""},
                "urls": [
                    {
                        "filename": filename,
                        "packagetype": "bdist_wheel" if filename.endswith(".whl") else "sdist",
                        "upload_time_iso_8601": uploaded,
                        "url": f"BASE/files/{filename}",
                    }
                ],
            }
    for package in spec["npm"]:
        name, version = package["name"], package["version"]
        manifest = {"name": name, "version": version, "dependencies": package["dependencies"]}
        tarball = _tar(
            {
                "package/package.json": json.dumps(manifest).encode(),
                "package/index.js": b"module.exports = 1;\n",
            }
        )
        path = f"/npm/{name}/-/{name.rsplit('/', 1)[-1]}-{version}.tgz"
        index.files[path] = tarball
        packument = index.packuments.setdefault(
            name, {"name": name, "dist-tags": {}, "versions": {}, "time": {}}
        )
        packument["versions"][version] = {
            **manifest,
            "dist": {
                "tarball": f"BASE{path}",
                "shasum": hashlib.sha1(tarball).hexdigest(),
                "integrity": "sha512-" + base64.b64encode(hashlib.sha512(tarball).digest()).decode(),
            },
        }
        packument["dist-tags"]["latest"] = version
        published = _published(package["published_days_ago"])
        if published is not None:
            packument["time"][version] = published
    return index


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _json(self, doc: Any) -> None:
        self._send(200, json.dumps(doc).replace("BASE", self.server.index.url).encode(), "application/json")

    def do_GET(self) -> None:
        index = self.server.index
        path = unquote(self.path.split("?", 1)[0])
        index.requests.append(path)
        parts = [p for p in path.split("/") if p]
        if path in index.files:
            return self._send(200, index.files[path], "application/octet-stream")
        if len(parts) == 2 and parts[0] == "simple" and parts[1] in index.simple:
            digests = {
                f: hashlib.sha256(index.files[f"/files/{f}"]).hexdigest() for f in index.simple[parts[1]]
            }
            links = "".join(
                f'<a href="{index.url}/files/{f}#sha256={d}">{f}</a><br/>' for f, d in digests.items()
            )
            return self._send(200, f"<!DOCTYPE html><html><body>{links}</body></html>".encode(), "text/html")
        if len(parts) == 4 and parts[0] == "pypi" and parts[3] == "json":
            doc = index.pypi_json.get((_normalize(parts[1]), parts[2]))
            if doc is not None:
                return self._json(doc)
        if parts[:1] == ["npm"] and path.removeprefix("/npm/") in index.packuments:
            return self._json(index.packuments[path.removeprefix("/npm/")])
        self._send(404, b'{"error": "not found"}', "application/json")


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, index: Index) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.index = index
        index.url = f"http://127.0.0.1:{self.server_address[1]}"


@pytest.fixture(scope="module")
def index() -> Iterator[Index]:
    served = _build_index()
    server = _Server(served)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield served
    finally:
        server.shutdown()
        server.server_close()


# --- running the guard -----------------------------------------------------------------------------
@dataclass
class Guard:
    index: Index
    tmp: Path

    @property
    def env(self) -> dict[str, str]:
        """No machine configuration: pip, npm and typostream settings only from here."""
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.upper().startswith(("PIP_", "TYPOSTREAM_", "NPM_CONFIG_"))
        }
        (self.tmp / "npmrc").touch()
        (self.tmp / "global-npmrc").touch()
        return {
            **env,
            "PIP_CONFIG_FILE": os.devnull,
            "PIP_DISABLE_PIP_VERSION_CHECK": "1",
            "PIP_NO_INPUT": "1",
            "TYPOSTREAM_PYPI_URL": self.index.url,
            "TYPOSTREAM_NPM_REGISTRY_URL": f"{self.index.url}/npm",
            "npm_config_globalconfig": str(self.tmp / "global-npmrc"),
            "npm_config_update_notifier": "false",
            "GUARD_MARKER": str(self.tmp / "marker"),
        }

    def pip(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "pip", "install", "--index-url", f"{self.index.url}/simple/",
                "--no-cache-dir", "--target", str(self.tmp / "target"), *args]  # fmt: skip

    def npm(self, *args: str) -> list[str]:
        assert NPM is not None
        return [NPM, "install", "--prefix", str(self.tmp / "project"), "--registry", f"{self.index.url}/npm/",
                "--cache", str(self.tmp / "npm-cache"), "--userconfig", str(self.tmp / "npmrc"),
                "--no-audit", "--no-fund", *args]  # fmt: skip

    def run(self, *options: str, command: list[str]) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(EXE), "guard", *options, "--", *command],
            capture_output=True,
            text=True,
            encoding="utf-8",
            timeout=60,
            cwd=self.tmp,
            env=self.env,
        )

    def run_on_terminal(self, *options: str, command: list[str]) -> tuple[int, str, str]:
        """``(exit code, stdout as a terminal shows it, stderr)`` with stdout on a pseudo-terminal."""
        main, child = pty.openpty()
        with subprocess.Popen(
            [str(EXE), "guard", *options, "--", *command],
            stdout=child,
            stderr=subprocess.PIPE,
            cwd=self.tmp,
            env={**self.env, "COLUMNS": "200"},
        ) as proc:
            os.close(child)
            chunks = []
            while True:
                try:
                    chunk = os.read(main, 65536)
                except OSError:  # EIO: the child closed the terminal
                    break
                if not chunk:
                    break
                chunks.append(chunk)
            assert proc.stderr is not None
            stderr = proc.stderr.read().decode()
            code = proc.wait(timeout=60)
        os.close(main)
        return code, re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", b"".join(chunks).decode()), stderr


@pytest.fixture
def guard(index: Index, tmp_path: Path) -> Guard:
    index.requests.clear()
    (tmp_path / "project").mkdir()
    return Guard(index, tmp_path)


def _lines(proc: subprocess.CompletedProcess[str]) -> list[dict[str, Any]]:
    return [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]


def _one_error_line(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert proc.stdout == ""  # nothing that could read as a clean report
    return lines[0]


@needs_exe
class TestGuardPip:
    def test_install_below_fail_on_runs_and_installs(self, guard: Guard) -> None:
        proc = guard.run(
            "--json", "--fail-on", "critical", "--min-age-days", "30",
            command=guard.pip("guardfix-clean", "guardfix-app"),
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        found = {(f["name"], f["version"]): f["verdict"] for f in _lines(proc)}
        assert found == {
            ("guardfix-clean", "1.0.0"): "clean",
            ("guardfix-app", "1.0.0"): "clean",
            ("reqests", "1.0.0"): "suspicious",  # high: below --fail-on critical
        }
        assert "Successfully installed" in proc.stdout  # the real pip ran, after the findings
        for module in ("guardfix_clean", "guardfix_app", "reqests"):
            assert (guard.tmp / "target" / module / "__init__.py").is_file()

    def test_squat_dependency_and_malicious_version_block_the_install(self, guard: Guard) -> None:
        sarif = guard.tmp / "guard.sarif"
        # neither is named with a version: pip resolves reqests (a dependency) and ctx 0.2.2
        proc = guard.run(
            "--format", "sarif", "--output", str(sarif), command=guard.pip("guardfix-app", "ctx")
        )
        assert proc.returncode == 1, proc.stderr
        assert not (guard.tmp / "target").exists()
        results = json.loads(sarif.read_text())["runs"][0]["results"]
        assert sorted(r["ruleId"].split(".")[0] for r in results) == ["malicious_package", "typosquat"]
        assert "reqests 1.0.0: typosquat (high) requests" in proc.stderr
        assert "ctx 0.2.2: malicious_package (critical) TYPOSTREAM-SEED-7" in proc.stderr
        assert "not running" in proc.stderr and proc.stdout == ""

    def test_named_squat_is_refused_before_pip_runs_its_code(self, guard: Guard) -> None:
        # the defect this guards against: resolving an sdist runs its build backend
        control = subprocess.run(
            [*guard.pip("reqeusts"), "--dry-run", "--quiet"], capture_output=True, text=True, env=guard.env
        )
        assert control.returncode != 0 and (guard.tmp / "marker").exists()
        (guard.tmp / "marker").unlink()
        proc = guard.run("--json", command=guard.pip("reqeusts"))
        assert proc.returncode == 1, proc.stderr
        assert not (guard.tmp / "marker").exists()
        assert "pip was not run" in proc.stderr
        assert [(f["name"], f["verdict"]) for f in _lines(proc)] == [("reqeusts", "malicious")]

    def test_requirements_file_squat_is_reported_with_its_line(self, guard: Guard) -> None:
        (guard.tmp / "reqs.txt").write_text("# deps\nguardfix-clean==1.0.0\nreqeusts>=1  # typo\n")
        proc = guard.run("--json", command=guard.pip("-r", "reqs.txt"))
        assert proc.returncode == 1, proc.stderr
        found = {f["name"]: (f["file"], f["line"], f["verdict"]) for f in _lines(proc)}
        assert found == {"guardfix-clean": ("reqs.txt", 2, "clean"), "reqeusts": ("reqs.txt", 3, "malicious")}
        assert not (guard.tmp / "marker").exists()

    def test_release_younger_than_min_age_blocks(self, guard: Guard) -> None:
        code, shown, stderr = guard.run_on_terminal(
            "--min-age-days", "7", command=guard.pip("guardfix-fresh")
        )
        assert code == 1, stderr
        assert re.search(r"guardfix-fresh 1\.0\.0 was published 1\.0 days ago .*--min-age-days 7", stderr)
        assert not (guard.tmp / "target").exists()
        # a terminal gets the table (no --format given)
        assert "typostream scan" in shown and re.search(r"guardfix-fresh\s*│\s*1\.0\.0\s*│\s*pypi", shown)

    def test_unknown_release_time_is_exit_2_not_clean(self, guard: Guard) -> None:
        line = _one_error_line(
            guard.run("--json", "--min-age-days", "1", command=guard.pip("guardfix-undated"))
        )
        assert "cannot check the age of guardfix-undated 1.0.0" in line
        assert not (guard.tmp / "target").exists()

    def test_unresolvable_install_is_exit_2_with_pips_reason(self, guard: Guard) -> None:
        line = _one_error_line(guard.run(command=guard.pip("guardfix-missing")))
        assert line.startswith("typostream: error: pip could not resolve the install (exit 1): ERROR:")
        assert "guardfix-missing" in line

    def test_a_command_it_cannot_guard_is_exit_2(self, guard: Guard) -> None:
        line = _one_error_line(guard.run(command=["uv", "pip", "install", "reqeusts"]))
        assert line == (
            "typostream: error: cannot guard 'uv pip install': typostream guard runs 'pip install ...', "
            "'python -m pip install ...' or 'npm install ...'"
        )


@needs_exe
@needs_npm
class TestGuardNpm:
    def test_clean_install_runs_with_aliases_resolved(self, guard: Guard) -> None:
        proc = guard.run(
            "--json", "--min-age-days", "30",
            command=guard.npm("guardfix-thing", "padder@npm:left-pad@1.3.0", "@guardfix/scoped"),
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        found = sorted((f["name"], f["version"], f["verdict"]) for f in _lines(proc))
        # the alias is checked as the package it installs (npm's dry-run JSON would say "padder")
        assert found == [("@guardfix/scoped", "2.0.0", "clean"), ("guardfix-thing", "1.0.0", "clean"),
                         ("left-pad", "1.3.0", "clean")]  # fmt: skip
        modules = guard.tmp / "project" / "node_modules"
        assert (modules / "padder" / "package.json").is_file()
        assert (modules / "left-pad" / "package.json").is_file()
        assert (modules / "@guardfix" / "scoped" / "package.json").is_file()

    def test_malicious_dependencies_block_and_leave_the_project_alone(self, guard: Guard) -> None:
        project = guard.tmp / "project"
        manifest = '{"name": "app", "version": "1.0.0", "dependencies": {"ua-parser-js": "0.7.29"}}\n'
        (project / "package.json").write_text(manifest)
        proc = guard.run("--json", command=guard.npm("event-stream"))
        assert proc.returncode == 1, proc.stderr
        malicious = sorted((f["name"], f["version"]) for f in _lines(proc) if f["verdict"] == "malicious")
        # one pulled in by the package named, one the project already depends on
        assert malicious == [("flatmap-stream", "0.1.1"), ("ua-parser-js", "0.7.29")]
        assert sorted(p.name for p in project.iterdir()) == ["package.json"]  # no lock, no node_modules
        assert (project / "package.json").read_text() == manifest
        assert not [r for r in guard.index.requests if r.endswith(".tgz")]  # nothing downloaded

    def test_dependencies_of_local_packages_in_the_project_are_checked(self, guard: Guard) -> None:
        # regression: the temporary copy lacked the project's local folders, so npm resolved
        # `file:./sub` and `./tools` without their dependencies and the guard said "0 checked"
        project = guard.tmp / "project"
        for folder, dependency in (("sub", "rc"), ("tools", "coa")):
            (project / folder).mkdir()
            version = {"rc": "1.2.9", "coa": "2.0.3"}[dependency]
            (project / folder / "package.json").write_text(
                json.dumps({"name": folder, "version": "1.0.0", "dependencies": {dependency: version}})
            )
        (project / "package.json").write_text('{"name": "app", "dependencies": {"sub": "file:./sub"}}')
        proc = guard.run("--json", command=guard.npm(str(project / "tools")))
        assert proc.returncode == 1, proc.stderr
        malicious = sorted((f["name"], f["version"]) for f in _lines(proc) if f["verdict"] == "malicious")
        assert malicious == [("coa", "2.0.3"), ("rc", "1.2.9")]
        assert "node_modules/sub: from git or a local folder" in proc.stderr
        assert not (project / "node_modules").exists()

    def test_release_younger_than_min_age_blocks(self, guard: Guard) -> None:
        proc = guard.run("--json", "--min-age-days", "3", command=guard.npm("guardfix-fresh"))
        assert proc.returncode == 1, proc.stderr
        assert "guardfix-fresh 1.0.0 was published 1.0 days ago" in proc.stderr
        assert not (guard.tmp / "project" / "node_modules").exists()

    def test_unresolvable_and_workspaces_are_exit_2(self, guard: Guard) -> None:
        line = _one_error_line(guard.run(command=guard.npm("guardfix-missing")))
        assert line.startswith("typostream: error: npm could not resolve the install (exit 1): 404 Not Found")
        (guard.tmp / "project" / "package.json").write_text('{"name": "mono", "workspaces": ["packages/*"]}')
        assert "workspaces" in _one_error_line(guard.run(command=guard.npm("left-pad")))


class TestReleaseTime:
    """``RegistryClient.release_time`` against the fixture registry (real HTTP)."""

    async def test_pypi_and_npm_times(self, index: Index) -> None:
        async with RegistryClient(npm_base=f"{index.url}/npm", pypi_base=index.url, retries=0) as client:
            pypi = await client.release_time("pypi", "guardfix-fresh", "1.0.0")
            npm = await client.release_time("npm", "guardfix-fresh", "1.0.0")
            scoped = await client.release_time("npm", "@guardfix/scoped", "2.0.0")
            assert await client.release_time("pypi", "guardfix-undated", "1.0.0") is None  # 404
            assert await client.release_time("npm", "left-pad", "9.9.9") is None  # no such version
            assert await client.release_time("npm", "guardfix-nothing", "1.0.0") is None  # 404
        now = datetime.now(UTC)
        assert pypi is not None and npm is not None and scoped is not None
        assert 0.99 < age_days(pypi, now) < 1.01 and 0.99 < age_days(npm, now) < 1.01
        assert 399 < age_days(scoped, now) < 401


# --- pure parsing ----------------------------------------------------------------------------------
class TestCommands:
    def test_recognized_commands(self) -> None:
        assert parse_install_command(["pip", "install", "x"]).sub == 1
        assert (
            parse_install_command(["/venv/bin/pip3.11", "--cache-dir", "/c", "-q", "install", "x"]).sub == 4
        )
        assert parse_install_command(["python3", "-m", "pip", "--isolated", "install"]).sub == 4
        assert parse_install_command(["npm", "i", "x"]).tool == "npm"
        assert parse_install_command(["npm", "--loglevel=warn", "add", "x"]).sub == 2

    @pytest.mark.parametrize(
        ("argv", "message"),
        [
            ([], "give the install command"),
            (["pip", "download", "x"], "found 'download'"),
            (["pip"], "found nothing"),
            (["npm", "--registry", "http://r", "install"], "put npm options after 'install'"),
            (["python", "pip", "install"], "cannot guard"),
            (["yarn", "add", "x"], "cannot guard"),
        ],
    )
    def test_refused_commands(self, argv: list[str], message: str) -> None:
        with pytest.raises(ResolutionError, match=re.escape(message)):
            parse_install_command(argv)

    def test_pip_requested_names_and_files(self) -> None:
        command = parse_install_command(
            ["pip", "install", "-r", "a.txt", "-Urb.txt", "--requirement=c.txt", "--requirem", "d.txt",
             "-i", "http://idx/simple", "--index-url", "idx", "-e", "./local", "--target", "t",
             "reqeusts==1.0", "requests[socks]>=2", "./pkg", "dist/x-1.0-py3-none-any.whl", "x.tar.gz",
             "git+https://h/r", "-c", "constraints.txt", "--", "late"]
        )  # fmt: skip
        requested = pip_requested(command)
        assert requested.files == ("a.txt", "b.txt", "c.txt", "d.txt")
        assert requested.specs == ("reqeusts==1.0", "requests[socks]>=2", "late")

    def test_resolving_argv_keeps_ours_before_a_separator(self) -> None:
        command = parse_install_command(["pip", "install", "--report", "mine.json", "x", "--", "y"])
        assert pip_resolution_argv(command, "R") == [
            "pip", "install", "--report", "mine.json", "x", "--dry-run", "--report", "R", "--quiet", "--", "y"
        ]  # fmt: skip

    def test_npm_plan(self) -> None:
        plan = npm_plan(
            parse_install_command(
                ["npm", "install", "--prefix", "proj", "--no-save", "--dry-run", "-D", "x@1"]
            )
        )
        assert plan.project == "proj" and plan.argv == ("npm", "install", "-D", "x@1")
        assert npm_resolution_argv(plan, "/tmp/t")[-6:] == [
            "--package-lock-only", "--ignore-scripts", "--no-audit", "--no-fund", "--prefix", "/tmp/t"
        ]  # fmt: skip
        assert npm_plan(parse_install_command(["npm", "i", "-C=here", "x"])).project == "here"
        assert npm_plan(parse_install_command(["npm", "i", "-g", "x"])).project == ""
        assert npm_plan(parse_install_command(["npm", "i", "--location", "global", "x"])).argv == (
            "npm",
            "i",
            "x",
        )
        assert npm_plan(parse_install_command(["npm", "i", "x"])).project is None
        local = npm_plan(parse_install_command(["npm", "i", "./a", "x", "file:../b.tgz", "--cache", "/c"]))
        assert [local.argv[i] for i in local.paths] == ["./a", "file:../b.tgz", "/c"]
        with pytest.raises(ResolutionError, match="workspaces"):
            npm_plan(parse_install_command(["npm", "i", "-w", "a", "x"]))


class TestReports:
    def test_pip_report_v1(self) -> None:
        report = {
            "version": "1",
            "pip_version": "24.0",
            "install": [
                {"metadata": {"name": "Requests", "version": "2.31.0"}, "is_direct": False, "requested": True,
                 "download_info": {"url": "https://files/requests-2.31.0-py3-none-any.whl"}},
                {"metadata": {"name": "local", "version": "0.1"}, "is_direct": True,
                 "download_info": {"url": "file:///src/local"}},
            ],
        }  # fmt: skip
        first, second = parse_pip_report(report)
        assert (first.registry, first.name, first.version, first.release) == (
            "pypi",
            "Requests",
            "2.31.0",
            True,
        )
        assert first.artifact == "https://files/requests-2.31.0-py3-none-any.whl"
        assert (second.name, second.release) == ("local", False)
        assert parse_pip_report({"version": "1", "install": []}) == []

    @pytest.mark.parametrize(
        ("doc", "message"),
        [
            ([], "not a JSON object"),
            ({"version": "0", "install": []}, "version '0'"),
            ({"install": []}, "version None"),
            ({"version": "1"}, "no 'install' array"),
            ({"version": "1", "install": [{"metadata": {"name": "x"}}]}, r"install\[0\]"),
        ],
    )
    def test_pip_report_refused(self, doc: Any, message: str) -> None:
        with pytest.raises(ResolutionError, match=message):
            parse_pip_report(doc)

    def test_npm_lock(self) -> None:
        lock = {
            "lockfileVersion": 3,
            "packages": {
                "": {"name": "app", "dependencies": {"alias": "npm:real@^1"}},
                "node_modules/alias": {
                    "name": "real",
                    "version": "1.0.0",
                    "resolved": "http://r/real-1.0.0.tgz",
                },
                "node_modules/a": {"version": "2.0.0"},
                "node_modules/a/node_modules/@s/b": {"version": "3.0.0"},
                "node_modules/c/node_modules/a": {"version": "2.0.0"},
                "node_modules/bundled": {"version": "1.0.0", "inBundle": True},
                "node_modules/mine": {"resolved": "packages/mine", "link": True},
                "node_modules/fromgit": {"version": "1.0.0", "resolved": "git+ssh://git@h/r.git#abc"},
                "packages/mine": {"name": "mine", "version": "0.0.1"},
            },
        }
        packages, local = parse_npm_lock(lock)
        assert [(p.name, p.version, p.release) for p in packages] == [
            ("real", "1.0.0", True),
            ("a", "2.0.0", True),
            ("@s/b", "3.0.0", True),
            ("bundled", "1.0.0", False),
        ]
        assert local == ["node_modules/mine", "node_modules/fromgit"]
        with pytest.raises(ResolutionError, match="npm 7 or later"):
            parse_npm_lock({"lockfileVersion": 1, "dependencies": {}})
        with pytest.raises(ResolutionError, match="no name/version"):
            parse_npm_lock({"lockfileVersion": 3, "packages": {"node_modules/x": {}}})

    def test_npm_local_paths(self) -> None:
        specs = ("file:sub", "file:../x.tgz", "file:///abs", "./a", "~/b", ".")
        assert [npm_local_path(s) for s in specs] == ["sub", "../x.tgz", "/abs", "./a", "~/b", "."]
        for spec in (
            "^1.0.0",
            "latest",
            "npm:real@1",
            "github:o/r",
            "git+https://h/r.git",
            "https://h/x.tgz",
        ):
            assert npm_local_path(spec) is None
        manifest = {"dependencies": {"a": "file:a", "b": "^1"}, "devDependencies": {"c": "../c"}, "x": "./no"}
        assert npm_manifest_local_paths(manifest) == ["a", "../c"]
        with pytest.raises(ResolutionError, match="could not read the local package 'sub'"):
            parse_npm_lock(
                {"lockfileVersion": 3, "packages": {"": {}, "node_modules/sub": {"link": True}, "sub": {}}}
            )
        # outside the project npm does not install a linked folder's dependencies: nothing missed
        assert parse_npm_lock({"lockfileVersion": 3, "packages": {"../lib": {}}}) == ([], [])

    def test_release_times(self) -> None:
        doc = {"urls": [
            {"filename": "x-1.0.tar.gz", "upload_time_iso_8601": "2024-01-01T00:00:00.000000Z"},
            {"filename": "x-1.0-py3-none-any.whl", "upload_time_iso_8601": "2024-06-01T12:00:00.123456Z"},
        ]}  # fmt: skip
        assert pypi_upload_time(doc, "x-1.0.tar.gz") == datetime(2024, 1, 1, tzinfo=UTC)
        assert pypi_upload_time(doc, "other.whl") == datetime(
            2024, 6, 1, 12, 0, 0, 123456, tzinfo=UTC
        )  # newest
        assert pypi_upload_time({"urls": []}) is None
        with pytest.raises(ValueError, match="urls"):
            pypi_upload_time({"info": {}})
        packument = {"time": {"created": "2020-01-01T00:00:00Z", "1.0.0": "2021-02-03T04:05:06.789Z"}}
        assert npm_publish_time(packument, "1.0.0") == datetime(2021, 2, 3, 4, 5, 6, 789000, tzinfo=UTC)
        assert npm_publish_time(packument, "2.0.0") is None
        assert npm_publish_time({"name": "x"}, "1.0.0") is None
        with pytest.raises(ValueError, match="time"):
            npm_publish_time({"time": []}, "1.0.0")

    def test_installer_error_lines(self) -> None:
        pip_err = (
            "Looking in indexes: x\nERROR: Could not find a version\nERROR: No matching distribution for y"
        )
        assert installer_error_line("pip", pip_err) == "ERROR: No matching distribution for y"
        npm_err = "npm error code E404\nnpm error 404 Not Found - GET http://r/y - Not found\nnpm error 404\n"
        assert installer_error_line("npm", npm_err) == "404 Not Found - GET http://r/y - Not found"
        assert installer_error_line("npm", "") == "no error output"
