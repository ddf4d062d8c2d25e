"""deploy/advisories_sync.py, the stack's advisory download, against a 127.0.0.1 archive server.

The archives are shaped like GitHub's zip of ossf/malicious-packages (one top folder, ``osv/malicious``
next to ``osv/withdrawn`` and docs) and hold real OSV records; the worker's own loader
(``components.load_known``) must read the synced tree.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from typostream.streams.components import load_known

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "deploy" / "advisories_sync.py"
TOP = "malicious-packages-main"


def osv(ecosystem: str, name: str, mal_id: str, versions: list[str] | None = None) -> dict[str, Any]:
    affected: dict[str, Any] = {"package": {"ecosystem": ecosystem, "name": name}}
    if versions is None:
        affected["ranges"] = [{"type": "SEMVER", "events": [{"introduced": "0"}]}]
    else:
        affected["versions"] = versions
    return {
        "schema_version": "1.5.0",
        "id": mal_id,
        "modified": "2025-01-02T03:04:05Z",
        "summary": f"Malicious code in {name} ({ecosystem})",
        "affected": [affected],
    }


def archive(advisories: dict[str, dict[str, Any]], extra: dict[str, bytes] | None = None) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(f"{TOP}/", b"")
        zf.writestr(f"{TOP}/README.md", b"# malicious-packages\n")
        zf.writestr(
            f"{TOP}/osv/withdrawn/npm/old/MAL-2000-1.json", json.dumps(osv("npm", "old", "MAL-2000-1"))
        )
        for path, record in advisories.items():
            zf.writestr(f"{TOP}/osv/malicious/{path}", json.dumps(record))
        for path, data in (extra or {}).items():
            zf.writestr(path, data)
    return buf.getvalue()


FIRST = {
    "npm/crossenv/MAL-2022-1.json": osv("npm", "crossenv", "MAL-2022-1"),
    "pypi/colourama/MAL-2022-2.json": osv("PyPI", "colourama", "MAL-2022-2", ["0.1.0"]),
}
SECOND = {**FIRST, "npm/evil-pkg/MAL-2026-9.json": osv("npm", "evil-pkg", "MAL-2026-9")}


@dataclass
class ArchiveServer:
    body: bytes = b""
    status: int = 200
    hits: list[int] = field(default_factory=list)
    url: str = ""

    @property
    def etag(self) -> str:
        return '"' + hashlib.sha256(self.body).hexdigest()[:16] + '"'


@pytest.fixture
def server() -> Iterator[ArchiveServer]:
    state = ArchiveServer()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if state.status != 200:
                code = state.status
            elif self.headers.get("If-None-Match") == state.etag:
                code = 304
            else:
                code = 200
            state.hits.append(code)
            self.send_response(code)
            if code == 200:
                self.send_header("ETag", state.etag)
                self.send_header("Content-Type", "application/zip")
                self.send_header("Content-Length", str(len(state.body)))
                self.end_headers()
                self.wfile.write(state.body)
            else:
                self.send_header("Content-Length", "0")
                self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{httpd.server_address[1]}/archive/refs/heads/main.zip"
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()


def run(root: Path, url: str, *args: str) -> subprocess.CompletedProcess[str]:
    """The script as the containers run it: a fresh interpreter, settings from the environment."""
    env = {**os.environ, "ADVISORIES_URL": url, "ADVISORIES_DIR": str(root)}
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=60, env=env
    )


def tree(root: Path) -> Path:
    return root / "current" / "osv" / "malicious"


def files(root: Path) -> set[str]:
    return {p.relative_to(tree(root)).as_posix() for p in tree(root).rglob("*") if p.is_file()}


def releases(root: Path) -> list[str]:
    return sorted(p.name for p in (root / "releases").iterdir())


def test_sync_extracts_only_osv_malicious_and_the_worker_loads_it(
    server: ArchiveServer, tmp_path: Path
) -> None:
    root = tmp_path / "advisories"
    server.body = archive(FIRST)
    result = run(root, server.url)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "synced: 2 advisories (osv/malicious)" in result.stdout
    assert files(root) == set(FIRST)  # no withdrawn advisories, no README
    state = json.loads((root / "state.json").read_text())
    assert state["etag"] == server.etag and state["files"] == 2 and state["url"] == server.url
    # What the stack sets: TYPOSTREAM_KNOWN_MALICIOUS_PATHS=<dir>/current/osv/malicious
    known = load_known(str(tree(root)))
    assert ("npm", "crossenv") in known and ("pypi", "colourama") in known
    assert ("npm", "old") not in known


def test_unchanged_archive_is_a_conditional_304(server: ArchiveServer, tmp_path: Path) -> None:
    root = tmp_path / "advisories"
    server.body = archive(FIRST)
    assert run(root, server.url).returncode == 0
    before = os.readlink(root / "current")
    result = run(root, server.url)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "unchanged: 2 advisories" in result.stdout
    assert server.hits == [200, 304]
    assert os.readlink(root / "current") == before


def test_new_archive_swaps_current_and_keeps_the_previous_release(
    server: ArchiveServer, tmp_path: Path
) -> None:
    root = tmp_path / "advisories"
    bodies = [
        archive(FIRST),
        archive(SECOND),
        archive({**SECOND, **FIRST, "npm/x/MAL-2026-10.json": osv("npm", "x", "MAL-2026-10")}),
    ]
    seen: list[str] = []
    for body in bodies:
        server.body = body
        result = run(root, server.url)
        assert result.returncode == 0, result.stdout + result.stderr
        seen.append(os.readlink(root / "current"))
        time.sleep(1.01)  # release ids are per second (+ pid)
    assert files(root) == set(SECOND) | {"npm/x/MAL-2026-10.json"}
    assert len(set(seen)) == 3
    # --keep 2: the current release and the one before it (a worker may still be reading it).
    assert releases(root) == sorted(Path(s).name for s in seen[1:])
    assert ("npm", "evil-pkg") in load_known(str(tree(root)))


@pytest.mark.parametrize(
    ("name", "body", "error"),
    [
        ("traversal", archive(FIRST, {f"{TOP}/osv/malicious/../../../escape.json": b"{}"}), "unsafe path"),
        ("no advisories", archive({}), "no osv/malicious/**/*.json in the archive"),
        ("not a zip", b"<html>rate limited</html>", "not a zip archive"),
    ],
)
def test_bad_archive_fails_and_leaves_the_current_tree(
    server: ArchiveServer, tmp_path: Path, name: str, body: bytes, error: str
) -> None:
    root = tmp_path / "advisories"
    server.body = archive(FIRST)
    assert run(root, server.url).returncode == 0
    before = (os.readlink(root / "current"), files(root))
    server.body = body
    result = run(root, server.url)
    assert result.returncode == 1, name
    assert f"failed: {error}" in result.stdout and "the current tree is unchanged" in result.stdout
    assert (os.readlink(root / "current"), files(root)) == before
    assert not (tmp_path / "escape.json").exists() and not (root / "escape.json").exists()
    assert [p.name for p in root.iterdir() if p.name.startswith(".")] == []  # no partial download left
    assert releases(root) == [Path(before[0]).name]


def test_server_error_and_unreachable_fail_without_touching_the_tree(
    server: ArchiveServer, tmp_path: Path
) -> None:
    root = tmp_path / "advisories"
    server.status = 503
    result = run(root, server.url)
    assert result.returncode == 1
    assert "failed: http://127.0.0.1:" in result.stdout and "HTTP 503" in result.stdout
    assert not (root / "current").exists()
    result = run(root, "http://127.0.0.1:9/main.zip")  # discard port: nothing listens
    assert result.returncode == 1 and "failed: http://127.0.0.1:9/main.zip" in result.stdout


def test_max_age_skips_a_fresh_tree(server: ArchiveServer, tmp_path: Path) -> None:
    root = tmp_path / "advisories"
    server.body = archive(FIRST)
    assert run(root, server.url, "--max-age", "3600").returncode == 0  # nothing yet: downloads
    result = run(root, server.url, "--max-age", "3600")
    assert result.returncode == 0 and "fresh: 2 advisories" in result.stdout
    assert server.hits == [200]


def test_every_keeps_retrying_until_sigterm(server: ArchiveServer, tmp_path: Path) -> None:
    root = tmp_path / "advisories"
    server.status = 500  # the first attempts fail; the loop must not exit
    env = {**os.environ, "ADVISORIES_URL": server.url, "ADVISORIES_DIR": str(root)}
    proc = subprocess.Popen(
        [sys.executable, str(SCRIPT), "--every", "0.2"], stdout=subprocess.PIPE, text=True, env=env
    )
    try:
        deadline = time.monotonic() + 30
        while len(server.hits) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        server.body, server.status = archive(FIRST), 200
        while not (root / "current").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert files(root) == set(FIRST)
        assert proc.poll() is None
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out
    assert out.count("failed: ") >= 2 and "synced: 2 advisories" in out


def test_allow_stale_starts_on_an_earlier_tree_but_not_on_none(server: ArchiveServer, tmp_path: Path) -> None:
    """The init containers' mode: a registry outage must not keep a worker down, a missing tree must."""
    root = tmp_path / "advisories"
    server.status = 503
    result = run(root, server.url, "--allow-stale")
    assert result.returncode == 1, result.stdout  # nothing to fall back on: the worker would not start
    server.status, server.body = 200, archive(FIRST)
    assert run(root, server.url).returncode == 0
    server.status = 503
    result = run(root, server.url, "--allow-stale")
    assert result.returncode == 0, result.stdout
    assert "HTTP 503" in result.stdout and "--allow-stale: release " in result.stdout
    assert files(root) == set(FIRST)
