"""A worker in a child process: used by the demo and by the restart tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import fields
from pathlib import Path
from typing import Any

import orjson

from typostream.streams.config import ENV_PREFIX, Settings
from typostream.streams.stack.processes import spawn


def settings_env(settings: Settings) -> dict[str, str]:
    """The settings as TYPOSTREAM_* variables, so the child resolves exactly the same config.

    Built from the real values (not ``masked()``): the child needs the credentials; the
    environment of a child process is not logged.
    """
    env = dict(os.environ)
    for f in fields(settings):
        value = getattr(settings, f.name)
        if value is not None:
            env[ENV_PREFIX + f.name.upper()] = str(value)
    return env


class WorkerProcess:
    """``typostream worker`` as a subprocess with its own data dir and web port."""

    def __init__(self, settings: Settings, log_path: Path | None = None) -> None:
        self.settings = settings
        self.log_path = log_path or settings.data_dir / "logs" / "worker.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://{self.settings.web_host}:{self.settings.web_port}"

    def start(self) -> WorkerProcess:
        """Spawn the worker; it gets SIGTERM from the kernel if this process dies (no orphans)."""
        self.process = spawn(
            [sys.executable, "-m", "typostream.streams.cli", "worker"],
            self.log_path,
            die_with_parent=True,
            env=settings_env(self.settings),
        )
        return self

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def get(self, path: str, timeout: float = 5.0) -> Any:
        token = self.settings.api_token
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        request = urllib.request.Request(self.base_url + path, headers=headers)
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return orjson.loads(response.read())

    def stats(self) -> dict[str, float] | None:
        """Pipeline counters, or None while the web server is not up yet."""
        try:
            return self.get("/api/v1/stats")
        except (urllib.error.URLError, ConnectionError, TimeoutError, orjson.JSONDecodeError):
            return None

    def wait_ready(self, timeout_s: float = 60.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not self.alive():
                raise RuntimeError(f"worker exited early (code {self.returncode}); see {self.log_path}")
            if self.stats() is not None:
                return
            time.sleep(0.2)
        raise TimeoutError(f"worker not ready after {timeout_s:.0f}s; see {self.log_path}")

    @property
    def returncode(self) -> int | None:
        return None if self.process is None else self.process.poll()

    def stop(self, sig: int = signal.SIGTERM, timeout_s: float = 60.0) -> int | None:
        """Signal the worker and wait; escalates to SIGKILL if a graceful stop hangs."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        return self.process.returncode

    def kill(self) -> int | None:
        return self.stop(signal.SIGKILL)
