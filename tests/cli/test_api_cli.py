"""``typostream api``: the scan endpoint, health and metrics served without Kafka (a real process).

Issue 13: the scan API could only be served by a worker, which needs a broker; the load benchmark
(and a scan-only deployment) needs it on its own. Same contract as ``test_scan_api.py`` (the
worker's), same limits and guard.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

EXE = Path(sys.executable).with_name("typostream")
FORM = "application/x-www-form-urlencoded"


@dataclass
class Api:
    proc: subprocess.Popen[str]
    url: str
    data_dir: Path


def env_for(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TYPOSTREAM_")}
    return {**env, "TYPOSTREAM_DATA_DIR": str(data_dir), **extra}


def start(data_dir: Path, *args: str, **extra: str) -> Api:
    proc = subprocess.Popen(
        [str(EXE), "api", "--port", "0", *args],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
        env=env_for(data_dir, **extra),
    )
    assert proc.stderr is not None
    deadline = time.monotonic() + 120
    seen = []
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line:
            break
        seen.append(line)
        found = re.search(r"scan API on (http://\S+)", line)
        if found:
            return Api(proc, found.group(1), data_dir)
    proc.kill()
    raise AssertionError(f"typostream api did not start: {''.join(seen)}")


def stop(api: Api) -> int:
    api.proc.send_signal(signal.SIGTERM)
    return api.proc.wait(timeout=20)


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    server = start(tmp_path_factory.mktemp("api"))
    try:
        yield server
    finally:
        if server.proc.poll() is None:
            stop(server)


def request(
    url: str, body: bytes | None = None, content_type: str = "application/json", **headers: str
) -> tuple[int, dict[str, str], bytes]:
    req = urllib.request.Request(url, data=body, method="POST" if body is not None else "GET")
    if body is not None:
        req.add_header("Content-Type", content_type)
    for name, value in headers.items():
        req.add_header(name.replace("_", "-"), value)
    try:
        with urllib.request.urlopen(req, timeout=10) as answer:
            return answer.status, dict(answer.headers), answer.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def scan(api: Api, body: bytes, content_type: str = "application/json", **headers: str) -> tuple[int, Any]:
    status, _, raw = request(api.url + "/api/v1/scan", body, content_type, **headers)
    return status, json.loads(raw)


def test_scan_contract_as_the_worker_answers_it(api: Api) -> None:
    seed = {"package_name": "ua-parser-js", "version": "0.7.29"}
    for status, answer in (
        scan(api, json.dumps(seed).encode()),
        scan(api, urlencode(seed).encode(), FORM),  # what k6 sends for a plain object
    ):
        assert status == 200, answer
        (result,) = answer["results"]
        assert (result["name"], result["version"], result["registry"], result["verdict"]) == (
            "ua-parser-js",
            "0.7.29",
            "npm",
            "malicious",
        )
        assert result["threats"][0]["target"] == "TYPOSTREAM-SEED-3"
    status, answer = scan(api, json.dumps({"registry": "pypi", "names": ["ctx==0.2.6", "reqeusts"]}).encode())
    assert status == 200
    ctx, squat = answer["results"]
    assert (ctx["name"], ctx["version"], ctx["verdict"]) == ("ctx", "0.2.6", "malicious")
    assert squat["threats"][0]["target"] == "requests"
    status, answer = scan(api, urlencode({"registry": "pypi", "names": "requests,ctx==0.2.6"}).encode(), FORM)
    assert status == 200 and [r["name"] for r in answer["results"]] == ["requests", "ctx"]


def test_bad_bodies_get_400_with_a_message(api: Api) -> None:
    for body, content_type in (
        (b"{not json", "application/json"),
        (b"[1, 2]", "application/json"),
        (json.dumps({"registry": "cargo", "names": ["x"]}).encode(), "application/json"),
        (json.dumps({"names": ["a"], "package_name": "b"}).encode(), "application/json"),
        (b"\xff\xfe", FORM),
    ):
        status, answer = scan(api, body, content_type)
        assert status == 400, (body, answer)
        assert isinstance(answer["error"], str) and answer["error"]
    status, answer = scan(api, json.dumps({"names": ["react"]}).encode())  # still serving after them
    assert status == 200 and answer["results"][0]["verdict"] == "clean"


def test_health_readiness_and_metrics(api: Api) -> None:
    status, _, raw = request(api.url + "/healthz")
    assert status == 200 and json.loads(raw)["status"] == "ok"
    status, _, raw = request(api.url + "/readyz")
    assert status == 200 and json.loads(raw) == {"ready": True, "checks": {"api": True}}
    scan(api, json.dumps({"names": ["react"]}).encode())
    status, headers, raw = request(api.url + "/metrics")
    assert status == 200 and headers["Content-Type"].startswith("text/plain; version=")
    text = raw.decode()
    counted = re.search(
        r'typostream_http_requests_total\{endpoint="/api/v1/scan",method="POST",status="200"\} (\d+)', text
    )
    assert counted is not None and int(float(counted.group(1))) >= 1, text[:2000]


def test_limits_and_guard_apply(api: Api) -> None:
    status, _ = scan(api, json.dumps({"names": ["react"]}).encode(), Host="evil.example")  # DNS rebinding
    assert status == 403
    too_big = json.dumps({"names": ["a" * 100] * 11_000}).encode()  # > 1 MiB
    status, _, _ = request(api.url + "/api/v1/scan", too_big)
    assert status == 413
    status, _ = scan(api, json.dumps({"names": ["x"] * 1001}).encode())
    assert status == 400


def test_token_is_required_when_set_and_sigterm_stops_cleanly(api: Api) -> None:
    server = start(api.data_dir, TYPOSTREAM_API_TOKEN="s3cret")
    try:
        body = json.dumps({"names": ["react"]}).encode()
        status, _ = scan(server, body)
        assert status == 401
        status, answer = scan(server, body, Authorization="Bearer s3cret")
        assert status == 200 and answer["results"][0]["name"] == "react"
        status, _, _ = request(server.url + "/healthz")  # probes send no token
        assert status == 200
    finally:
        assert stop(server) == 0


def test_a_public_address_without_token_is_refused_before_loading(tmp_path: Path) -> None:
    started = time.monotonic()
    proc = subprocess.run(
        [str(EXE), "api", "--host", "0.0.0.0", "--port", "0"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env_for(tmp_path),
    )
    assert proc.returncode == 2
    assert "not a loopback address" in proc.stderr and "TYPOSTREAM_API_TOKEN" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert not (tmp_path / "cache").exists()  # refused before building any index
    assert time.monotonic() - started < 30


def test_a_port_in_use_is_one_line_and_exit_2(api: Api) -> None:
    port = api.url.rsplit(":", 1)[1]
    proc = subprocess.run(
        [str(EXE), "api", "--port", port],
        capture_output=True,
        text=True,
        timeout=120,
        env=env_for(api.data_dir),
    )
    assert proc.returncode == 2, proc.stderr
    assert f"--port {port}: cannot listen on 127.0.0.1" in proc.stderr
