"""Child-process plumbing for the embedded servers: spawn, readiness, pid checks, stop.

Children get their own session (Ctrl-C in a terminal does not reach them directly) and, with
``die_with_parent``, ``prctl(PR_SET_PDEATHSIG, SIGTERM)`` so that they die even when the Python
process that started them is SIGKILLed. Pids are only trusted or signalled after checking
``/proc/<pid>/cmdline``, so a recycled pid is never killed by mistake.

Note: the kernel sends PDEATHSIG when the *thread* that forked the child exits, so start a
``die_with_parent`` stack from a long-lived thread (the main thread), not a worker thread.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from typostream.agents.domain.errors import StartupError

LOCALHOST = "127.0.0.1"
_PR_SET_PDEATHSIG = 1

ReadyProbe = Callable[[int], bool]
"""Takes the port, returns True once the server answers its protocol ping."""


def free_port(host: str = LOCALHOST) -> int:
    """A port that was free a moment ago (bind port 0); callers retry if they lose the race."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def tcp_open(port: int, host: str = LOCALHOST, timeout: float = 0.2) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _die_with_parent_hook() -> Callable[[], None]:
    """A ``preexec_fn`` that asks the kernel to SIGTERM the child when this process dies."""
    if not sys.platform.startswith("linux"):
        raise OSError("die_with_parent needs Linux prctl(PR_SET_PDEATHSIG)")
    libc = ctypes.CDLL("libc.so.6", use_errno=True)  # loaded before fork: no dlopen in the child
    parent = os.getpid()

    def hook() -> None:
        if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) != 0:
            os._exit(121)
        if os.getppid() != parent:  # the parent died between fork and prctl
            os._exit(122)

    return hook


def spawn(
    argv: Sequence[str],
    log_path: Path,
    *,
    die_with_parent: bool = False,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> subprocess.Popen[bytes]:
    """Start ``argv`` in a new session with stdout and stderr appended to ``log_path``."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        log.write(f"\n--- {time.strftime('%Y-%m-%dT%H:%M:%S')} {' '.join(argv)}\n".encode())
        log.flush()
        return subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_die_with_parent_hook() if die_with_parent else None,
            env=dict(env) if env is not None else None,
            cwd=cwd,
            close_fds=True,
        )


def wait_ready(proc: subprocess.Popen[bytes], port: int, probe: ReadyProbe, timeout: float) -> None:
    """Poll TCP connect + ``probe`` until it answers; raise ``StartupError`` if the child exits first."""
    deadline = time.monotonic() + timeout
    delay = 0.005
    while True:
        code = proc.poll()
        if code is not None:
            raise StartupError(f"exited with code {code} before it was ready")
        if tcp_open(port) and _safe_probe(probe, port) and proc.poll() is None:
            return
        if time.monotonic() > deadline:
            raise StartupError(f"not ready on port {port} after {timeout:.0f}s")
        time.sleep(delay)
        delay = min(delay * 2, 0.1)


def _safe_probe(probe: ReadyProbe, port: int) -> bool:
    try:
        return probe(port)
    except Exception:
        return False


def read_cmdline(pid: int) -> list[str]:
    """``/proc/<pid>/cmdline`` split into arguments; ``[]`` for a missing pid or a zombie."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def pid_matches(pid: int, binary: str, port: int | None = None) -> bool:
    """Is ``pid`` alive, running ``binary`` (argv[0] basename) and, if given, serving ``port``?

    redis-server rewrites its title to ``redis-server 127.0.0.1:PORT`` and tansu keeps
    ``--listener-url tcp://127.0.0.1:PORT``, so the port check works for both.
    """
    if pid <= 0:
        return False
    args = read_cmdline(pid)
    if not args or not os.path.basename(args[0]).startswith(binary):
        return False
    return port is None or f"{LOCALHOST}:{port}" in " ".join(args)


def pid_exists(pid: int) -> bool:
    """True while ``/proc/<pid>`` exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def stop_pid(pid: int, binary: str, port: int | None = None, timeout: float = 5.0) -> bool:
    """SIGTERM, wait up to ``timeout``, then SIGKILL. Only signals a pid that still matches.

    Returns True if a matching process was found (and is now gone).
    """
    if not pid_matches(pid, binary, port):
        _reap(pid)
        return False
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    if _wait_gone(pid, timeout):
        return True
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    if not _wait_gone(pid, 5.0):
        raise OSError(f"pid {pid} ({binary}) survived SIGKILL")
    return True


def stop_popen(proc: subprocess.Popen[bytes], timeout: float = 5.0) -> None:
    """Stop a child we started ourselves (and reap it)."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5.0)


def _wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        _reap(pid)
        if not pid_exists(pid):
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
