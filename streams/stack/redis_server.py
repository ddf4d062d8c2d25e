"""A private ``redis-server`` (Debian package) with persistence off, bound to 127.0.0.1."""

from __future__ import annotations

import shutil
from pathlib import Path

import redis

from typostream.agents.domain.errors import BinaryNotFoundError
from typostream.streams.stack.processes import LOCALHOST

NAME = "redis-server"


def binary() -> Path:
    found = shutil.which("redis-server")
    if found is None:
        raise BinaryNotFoundError(
            "redis-server was not found on PATH: install it with `apt-get install redis-server`"
        )
    return Path(found)


def command(port: int, workdir: Path, redis_server: Path | None = None) -> list[str]:
    return [
        str(redis_server or binary()),
        "--port",
        str(port),
        "--bind",
        LOCALHOST,
        "--save",
        "",
        "--appendonly",
        "no",
        "--daemonize",
        "no",
        "--dir",
        str(workdir),
    ]


def url(port: int) -> str:
    return f"redis://{LOCALHOST}:{port}/0"


def ping_ready(port: int, timeout: float = 1.0) -> bool:
    client = redis.Redis(host=LOCALHOST, port=port, socket_timeout=timeout, socket_connect_timeout=timeout)
    try:
        return bool(client.ping())
    finally:
        client.close()
