"""One connection to ClickHouse, chosen by DSN, shared by the sink (writes) and analytics (reads).

The target is chosen by DSN (see :func:`parse_dsn`):

* ``chdb://`` – embedded chDB at ``settings.chdb_path``; ``chdb:///abs/path`` overrides the
  path; ``chdb://memory`` is an in-memory engine (tests).
* ``http(s)://user:pass@host:8123/db`` – a real ClickHouse server.

chDB facts this module relies on (chDB 4.4 / ClickHouse 26.9, clickhouse-connect 1.12):
the engine is opened by ``clickhouse_connect.get_client(interface="chdb", path=...)``; one
engine path per process (a second path raises while a client is open, but works once every
client is closed) and an exclusive lock on the path across processes — so one process holds one
:class:`ClickHouseConnection` and hands it to both the writer and the reader.

clickhouse-connect is blocking; call the methods via ``asyncio.to_thread``. A lock serialises
calls on the one client, so concurrent threads are safe (one statement at a time).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import clickhouse_connect
from clickhouse_connect.driver.client import Client

from typostream.agents.adapters.urls import mask_url
from typostream.agents.domain.errors import InvalidDsnError, StoreError, StoreUnavailableError
from typostream.schemas import clickhouse_ddl

__all__ = ["ClickHouseConnection", "ClickHouseTarget", "parse_dsn"]


@dataclass(frozen=True)
class ClickHouseTarget:
    """A parsed DSN. ``repr``/``str`` never show the password."""

    interface: str  # "chdb" | "http" | "https"
    path: str | None = None  # chdb only; None = in memory
    host: str = ""
    port: int = 0
    username: str = "default"
    password: str = field(default="", repr=False)
    database: str = "default"
    dsn_masked: str = ""

    def __str__(self) -> str:
        return self.dsn_masked


def parse_dsn(dsn: str, chdb_path: Path | None = None) -> ClickHouseTarget:
    """Parse ``chdb://``, ``chdb:///abs/path``, ``chdb://memory`` or ``http(s)://user:pass@host:port/db``."""
    masked = _mask(dsn)
    try:
        parts = urlsplit(dsn)
        port = parts.port
    except ValueError as exc:
        raise InvalidDsnError(f"malformed ClickHouse DSN {masked!r}") from exc
    scheme = parts.scheme.lower()
    if scheme == "chdb":
        if parts.netloc in ("memory", ":memory:"):
            return ClickHouseTarget("chdb", None, dsn_masked=masked)
        if parts.netloc:
            raise InvalidDsnError(f"chDB DSN {masked!r}: use chdb:// or chdb:///absolute/path")
        if parts.path and parts.path != "/":
            return ClickHouseTarget("chdb", parts.path, dsn_masked=masked)
        if chdb_path is None:
            raise InvalidDsnError("chdb:// needs a chdb_path (settings.chdb_path)")
        return ClickHouseTarget("chdb", str(Path(chdb_path).absolute()), dsn_masked=masked)
    if scheme in ("http", "https"):
        if not parts.hostname:
            raise InvalidDsnError(f"ClickHouse DSN {masked!r} has no host")
        database = unquote(parts.path.strip("/")) or "default"
        if "/" in database:
            raise InvalidDsnError(f"ClickHouse DSN {masked!r}: path must be a single database name")
        return ClickHouseTarget(
            scheme,
            host=parts.hostname,
            port=port or (8443 if scheme == "https" else 8123),
            username=unquote(parts.username) if parts.username else "default",
            password=unquote(parts.password) if parts.password else "",
            database=database,
            dsn_masked=masked,
        )
    raise InvalidDsnError(f"unsupported ClickHouse DSN scheme in {masked!r}; use chdb:// or http(s)://")


class ClickHouseConnection:
    """A clickhouse-connect client behind a lock, with errors turned into :class:`StoreError`."""

    def __init__(self, client: Client, target: ClickHouseTarget) -> None:
        self.client = client
        self.target = target
        self.lock = threading.RLock()
        self._closed = False

    def __repr__(self) -> str:
        return f"ClickHouseConnection({self.target.dsn_masked!r})"

    @classmethod
    def open(cls, dsn: str, chdb_path: Path) -> ClickHouseConnection:
        target = parse_dsn(dsn, chdb_path)
        try:
            if target.interface == "chdb":
                if target.path is not None:
                    Path(target.path).mkdir(parents=True, exist_ok=True)
                    client = clickhouse_connect.get_client(interface="chdb", path=target.path)
                else:
                    client = clickhouse_connect.get_client(interface="chdb")
            else:
                client = clickhouse_connect.get_client(
                    interface=target.interface,
                    host=target.host,
                    port=target.port,
                    username=target.username,
                    password=target.password,
                    database=target.database,
                )
        except Exception as exc:
            raise StoreUnavailableError(
                f"cannot open ClickHouse at {target.dsn_masked}: {_scrub(str(exc), target)}"
            ) from None
        return cls(client, target)

    def __enter__(self) -> ClickHouseConnection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def ensure_schema(self) -> None:
        """Create the tables of ``schemas/clickhouse`` if missing (idempotent)."""
        with self.lock:
            for _table, ddl in clickhouse_ddl():
                self.run(partial(self.client.command, ddl))

    def run(self, call: Callable[[], Any]) -> Any:
        if self._closed:
            raise StoreError("the ClickHouse connection is closed")
        try:
            return call()
        except StoreError:
            raise
        except Exception as exc:
            raise StoreError(
                f"ClickHouse error at {self.target.dsn_masked}: {_scrub(str(exc), self.target)}"
            ) from None

    def select(self, sql: str, settings: dict[str, Any] | None = None) -> Any:
        """Run a query under the lock; returns clickhouse-connect's result."""
        with self.lock:
            return self.run(lambda: self.client.query(sql, settings=settings))

    def rows(self, sql: str) -> list[Sequence[Any]]:
        rows: list[Sequence[Any]] = self.select(sql).result_rows
        return rows

    def close(self) -> None:
        with self.lock:
            if not self._closed:
                self._closed = True
                self.client.close()


def _mask(dsn: str) -> str:
    try:
        return str(mask_url(dsn))
    except ValueError:  # e.g. a port out of range: mask by pattern instead
        return re.sub(r"(//[^/:@]*:)[^@/]*@", r"\1***@", dsn)


def _scrub(message: str, target: ClickHouseTarget) -> str:
    if target.password:
        message = message.replace(target.password, "***")
    return message
