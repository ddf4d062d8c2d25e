"""``EmbeddedStack``: Tansu (Kafka protocol), redis-server and chDB for one data directory."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import fcntl
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType

from typostream.agents.domain.errors import StackError, StartupError
from typostream.streams.stack import objectstore, redis_server, tansu, topics_layout
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

    ``durable=False`` runs Tansu on ``memory://`` storage: fast, and everything in the broker is
    lost when it stops. ``durable=True`` also starts ``objectstore`` (an S3-compatible store on
    files under ``<data_dir>/broker``) and runs Tansu on ``s3://``, so broker restarts and
    ``down``/``up`` keep topics, records and committed offsets.
    """

    def __init__(
        self,
        data_dir: Path,
        die_with_parent: bool = False,
        *,
        startup_timeout: float = 15.0,
        stop_timeout: float = 5.0,
        durable: bool = False,
    ) -> None:
        self.data_dir = Path(data_dir).resolve()
        self.durable = durable
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

    @property
    def broker_dir(self) -> Path:
        """Where a durable stack's broker keeps its data (kept by ``down``)."""
        return self.data_dir / "broker"

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
            objects_url = ""
            try:
                storage, kafka_env = tansu.MEMORY_STORAGE, tansu.environment()
                if self.durable:
                    logs["objects"] = self.logs_dir / "objects.log"
                    objects_port = self._start(
                        "objects",
                        lambda port: objectstore.command(port, self.broker_dir),
                        objectstore.ping_ready,
                        logs["objects"],
                    )
                    objects_url = objectstore.url(objects_port)
                    storage = tansu.S3_STORAGE
                    kafka_env = objectstore.tansu_environment(objects_port, kafka_env)
                kafka_port = self._start(
                    "kafka",
                    lambda port: tansu.command(port, tansu_bin, storage),
                    tansu.metadata_ready,
                    logs["kafka"],
                    env=kafka_env,
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
                durable=self.durable,
                objects_url=objects_url,
            )
            state.save()
            self._started_here = True
            return state

    def restart_broker(self, *, pause_s: float = 0.0) -> StackState:
        """Stop the broker and start it again on the same port and storage (``pause_s`` apart).

        With memory storage the broker comes back without records and committed offsets, but
        with its topics recreated (same partitions and configs, see ``topics_layout``); a durable
        one keeps everything. Clients keep their bootstrap address. Returns the updated state.
        """
        with self._lock():
            state = StackState.load(self.data_dir)
            if state is None or not state.is_alive():
                raise StackError(f"no running stack in {self.data_dir}")
            port = state.kafka_port
            layout = [] if state.durable else asyncio.run(topics_layout.snapshot(state.kafka_bootstrap))
            self._stop_one("kafka", state.pids["kafka"], port)
            time.sleep(pause_s)
            env = tansu.environment()
            storage = tansu.MEMORY_STORAGE
            if state.durable:
                env = objectstore.tansu_environment(state.ports()["objects"], env)
                storage = tansu.S3_STORAGE
            log = state.logs.get("kafka", self.logs_dir / "kafka.log")
            argv = tansu.command(port, tansu.binary(), storage)
            proc = self._start_on(port, argv, tansu.metadata_ready, log, env)
            self._procs["kafka"] = proc
            if layout:
                asyncio.run(topics_layout.restore(state.kafka_bootstrap, layout))
            restarted = dataclasses.replace(state, pids={**state.pids, "kafka": proc.pid})
            restarted.save()
            return restarted

    def _start_on(
        self,
        port: int,
        argv: Sequence[str],
        probe: ReadyProbe,
        log: Path,
        env: dict[str, str],
    ) -> subprocess.Popen[bytes]:
        """Start on a given port; a port still held by the old process is retried for a while."""
        deadline = time.monotonic() + self.startup_timeout
        while True:
            proc = spawn(argv, log, die_with_parent=self.die_with_parent, env=env)
            try:
                wait_ready(proc, port, probe, self.startup_timeout)
                return proc
            except StartupError:
                stop_popen(proc, self.stop_timeout)
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

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
        # The broker first (it writes to the object store), the object store last.
        for name, pid in sorted(state.pids.items(), key=lambda item: item[0] == "objects"):
            self._stop_one(name, pid, ports.get(name))

    def _stop_one(self, name: str, pid: int, port: int | None) -> None:
        own = self._procs.pop(name, None)
        if own is not None and own.pid == pid:
            stop_popen(own, self.stop_timeout)
        else:
            stop_pid(pid, EXPECTED_BINARIES.get(name, name), port, self.stop_timeout)

    def _stop_own(self) -> None:
        for name in sorted(self._procs, key=lambda n: n == "objects"):
            stop_popen(self._procs.pop(name), self.stop_timeout)

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
