"""``EmbeddedStack``: Tansu (Kafka protocol), redis-server and chDB for one data directory."""

from __future__ import annotations

import contextlib
import fcntl
import subprocess
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType

from typostream.agents.domain.errors import StartupError
from typostream.streams.stack import redis_server, tansu
from typostream.streams.stack.processes import (
    LOCALHOST,
    ReadyProbe,
    free_port,
    spawn,
    stop_pid,
    stop_popen,
    wait_ready,
)
from typostream.streams.stack.state import EXPECTED_BINARIES, StackState, state_path

START_ATTEMPTS = 4


class EmbeddedStack:
    """Start, inspect and stop the embedded servers recorded in ``<data_dir>/stack.json``.

    ``die_with_parent=True`` ties the servers' lives to this Python process (tests, foreground
    mode); the default leaves them running detached after the process exits (``stack up``).
    As a context manager it yields the ``StackState`` and stops on exit what it started itself.
    """

    def __init__(
        self,
        data_dir: Path,
        die_with_parent: bool = False,
        *,
        startup_timeout: float = 15.0,
        stop_timeout: float = 5.0,
    ) -> None:
        self.data_dir = Path(data_dir).resolve()
        self.die_with_parent = die_with_parent
        self.startup_timeout = startup_timeout
        self.stop_timeout = stop_timeout
        self._procs: dict[str, subprocess.Popen[bytes]] = {}
        self._started_here = False

    @property
    def state_file(self) -> Path:
        return state_path(self.data_dir)

    @property
    def logs_dir(self) -> Path:
        return self.data_dir / "logs"

    def status(self) -> StackState | None:
        """The live stack for this data dir, or ``None`` (no state file, or a server is dead)."""
        state = StackState.load(self.data_dir)
        return state if state is not None and state.is_alive() else None

    def up(self) -> StackState:
        """Start the servers and write the state file; returns the live stack if one is already up."""
        with self._lock():
            existing = StackState.load(self.data_dir)
            if existing is not None:
                if existing.is_alive():
                    return existing
                self._stop_recorded(existing)  # half-dead leftovers of a crashed stack
                self.state_file.unlink(missing_ok=True)
            redis_bin, tansu_bin = redis_server.binary(), tansu.binary()  # fail before starting anything
            redis_dir = self.data_dir / "redis"
            redis_dir.mkdir(parents=True, exist_ok=True)
            (self.data_dir / "clickhouse").mkdir(parents=True, exist_ok=True)
            logs = {"kafka": self.logs_dir / "kafka.log", "redis": self.logs_dir / "redis.log"}
            try:
                kafka_port = self._start(
                    "kafka",
                    lambda port: tansu.command(port, tansu_bin),
                    tansu.metadata_ready,
                    logs["kafka"],
                    env=tansu.environment(),
                )
                redis_port = self._start(
                    "redis",
                    lambda port: redis_server.command(port, redis_dir, redis_bin),
                    redis_server.ping_ready,
                    logs["redis"],
                    cwd=redis_dir,
                )
            except BaseException:
                self._stop_own()
                raise
            state = StackState(
                data_dir=self.data_dir,
                kafka_bootstrap=f"{LOCALHOST}:{kafka_port}",
                redis_url=redis_server.url(redis_port),
                clickhouse_dsn=f"chdb://{self.data_dir / 'clickhouse'}",
                pids={name: proc.pid for name, proc in self._procs.items()},
                logs=logs,
                started_at=datetime.now(UTC).isoformat(timespec="seconds"),
            )
            state.save()
            self._started_here = True
            return state

    def down(self) -> None:
        """Stop every server of this data dir and remove the state file; a no-op if nothing runs."""
        with self._lock():
            state = StackState.load(self.data_dir)
            if state is not None:
                self._stop_recorded(state)
            self._stop_own()
            self.state_file.unlink(missing_ok=True)
            self._started_here = False

    def __enter__(self) -> StackState:
        return self.up()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._started_here:
            self.down()

    def _start(
        self,
        name: str,
        argv_for: Callable[[int], Sequence[str]],
        probe: ReadyProbe,
        log: Path,
        *,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
    ) -> int:
        """Start on a fresh free port; if the child dies early (port race), retry on another port."""
        errors: list[str] = []
        for _ in range(START_ATTEMPTS):
            port = free_port()
            proc = spawn(argv_for(port), log, die_with_parent=self.die_with_parent, env=env, cwd=cwd)
            try:
                wait_ready(proc, port, probe, self.startup_timeout)
            except StartupError as exc:
                stop_popen(proc, self.stop_timeout)
                errors.append(f"port {port}: {exc}")
                continue
            self._procs[name] = proc
            return port
        raise StartupError(f"{name} did not start ({'; '.join(errors)}); see {log}")

    def _stop_recorded(self, state: StackState) -> None:
        ports = state.ports()
        for name, pid in state.pids.items():
            own = self._procs.pop(name, None)
            if own is not None and own.pid == pid:
                stop_popen(own, self.stop_timeout)
            else:
                stop_pid(pid, EXPECTED_BINARIES.get(name, name), ports.get(name), self.stop_timeout)

    def _stop_own(self) -> None:
        while self._procs:
            _, proc = self._procs.popitem()
            stop_popen(proc, self.stop_timeout)

    @contextlib.contextmanager
    def _lock(self) -> Iterator[None]:
        """One up/down at a time per data dir, across processes."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with open(self.data_dir / "stack.lock", "w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
