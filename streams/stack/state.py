"""The embedded stack's state file: ``<data_dir>/stack.json`` with pids, URLs and log paths."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from typostream.streams.stack.processes import pid_matches

STATE_FILE = "stack.json"
# The binary name each pid must run, checked against /proc/<pid>/cmdline before trusting or signalling it.
EXPECTED_BINARIES = {"kafka": "tansu", "redis": "redis-server", "objects": "python"}
REQUIRED = frozenset({"kafka", "redis"})
"""Servers every stack runs; a durable stack also runs ``objects`` (the broker's object store)."""


@dataclass(frozen=True)
class StackState:
    """What ``EmbeddedStack.up()`` started; URLs are what clients connect to."""

    data_dir: Path
    kafka_bootstrap: str
    redis_url: str
    clickhouse_dsn: str
    pids: dict[str, int] = field(default_factory=dict, hash=False)
    logs: dict[str, Path] = field(default_factory=dict, hash=False)
    started_at: str = ""
    # Durable: Tansu stores its data in the object store at ``objects_url`` (``<data_dir>/broker``).
    durable: bool = False
    objects_url: str = ""

    @property
    def storage(self) -> str:
        return "durable" if self.durable else "memory"

    @property
    def path(self) -> Path:
        return state_path(self.data_dir)

    @property
    def kafka_port(self) -> int:
        return int(self.kafka_bootstrap.rsplit(":", 1)[1])

    @property
    def redis_port(self) -> int:
        return int(self.redis_url.rsplit(":", 1)[1].split("/", 1)[0])

    @property
    def chdb_path(self) -> Path:
        return Path(self.clickhouse_dsn.removeprefix("chdb://"))

    def ports(self) -> dict[str, int]:
        ports = {"kafka": self.kafka_port, "redis": self.redis_port}
        if self.objects_url:
            ports["objects"] = int(self.objects_url.rsplit(":", 1)[1])
        return ports

    def urls(self) -> dict[str, str]:
        return {
            "kafka_bootstrap": self.kafka_bootstrap,
            "redis_url": self.redis_url,
            "clickhouse_dsn": self.clickhouse_dsn,
        }

    def alive(self) -> dict[str, bool]:
        """Per server: is its pid running the expected binary on the expected port?"""
        ports = self.ports()
        return {
            name: pid_matches(pid, EXPECTED_BINARIES.get(name, name), ports.get(name))
            for name, pid in self.pids.items()
        }

    def is_alive(self) -> bool:
        status = self.alive()
        required = REQUIRED | ({"objects"} if self.durable else set())
        return set(status) == required and all(status.values())

    def to_json(self) -> dict[str, Any]:
        return {
            "data_dir": str(self.data_dir),
            "kafka_bootstrap": self.kafka_bootstrap,
            "redis_url": self.redis_url,
            "clickhouse_dsn": self.clickhouse_dsn,
            "pids": dict(self.pids),
            "logs": {k: str(v) for k, v in self.logs.items()},
            "started_at": self.started_at,
            "durable": self.durable,
            "objects_url": self.objects_url,
        }

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> StackState:
        return cls(
            data_dir=Path(raw["data_dir"]),
            kafka_bootstrap=str(raw["kafka_bootstrap"]),
            redis_url=str(raw["redis_url"]),
            clickhouse_dsn=str(raw["clickhouse_dsn"]),
            pids={str(k): int(v) for k, v in raw.get("pids", {}).items()},
            logs={str(k): Path(v) for k, v in raw.get("logs", {}).items()},
            started_at=str(raw.get("started_at", "")),
            durable=bool(raw.get("durable", False)),
            objects_url=str(raw.get("objects_url", "")),
        )

    def save(self) -> None:
        """Write atomically (temp file + rename) so readers never see half a file."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(f".tmp{os.getpid()}")
        tmp.write_text(json.dumps(self.to_json(), indent=2) + "\n", encoding="utf-8")
        tmp.replace(self.path)

    @classmethod
    def load(cls, data_dir: Path) -> StackState | None:
        """The recorded state, alive or not; ``None`` if there is no readable state file."""
        try:
            raw = json.loads(state_path(data_dir).read_text(encoding="utf-8"))
            return cls.from_json(raw)
        except (OSError, ValueError, KeyError, TypeError, IndexError):
            return None


def state_path(data_dir: Path) -> Path:
    return Path(data_dir).resolve() / STATE_FILE


def read_urls(data_dir: Path) -> dict[str, str]:
    """URLs of the stack running for ``data_dir``, or ``{}`` if none is running there.

    Returns ``{"kafka_bootstrap", "redis_url", "clickhouse_dsn"}`` only when the state file exists
    and both server processes are alive; ``Settings.from_env`` uses it to find a running stack.
    """
    state = StackState.load(Path(data_dir))
    if state is None or not state.is_alive():
        return {}
    return state.urls()
