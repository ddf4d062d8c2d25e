"""Shared fixtures: the real embedded stack (once per session) and per-test ``Settings``."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import fields
from pathlib import Path
from typing import Any

import pytest

from typostream.streams.config import Settings
from typostream.streams.stack import EmbeddedStack, StackState

SettingsFactory = Callable[..., Settings]


@pytest.fixture(scope="session")
def embedded_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackState]:
    """Tansu + redis-server + chDB for the whole session; the servers die with pytest even on SIGKILL."""
    stack = EmbeddedStack(tmp_path_factory.mktemp("stack"), die_with_parent=True)
    state = stack.up()
    try:
        yield state
    finally:
        stack.down()


@pytest.fixture
def settings_factory(embedded_stack: StackState, tmp_path: Path) -> SettingsFactory:
    """``(**overrides) -> Settings`` on the session stack, with this test's own data dir and topics.

    Kafka and Redis are the shared stack's; ``clickhouse_dsn`` is the stack's chDB path too (chDB
    allows one engine path per process), so pass ``clickhouse_dsn=f"chdb://{tmp_path}/ch"`` to a
    test that hands chDB to a worker subprocess. Topic names and ``app_id`` end in a short uuid.
    """
    suffix = uuid.uuid4().hex[:8]
    base: dict[str, Any] = {
        "data_dir": tmp_path / "typostream",
        "kafka_bootstrap": embedded_stack.kafka_bootstrap,
        "redis_url": embedded_stack.redis_url,
        "clickhouse_dsn": embedded_stack.clickhouse_dsn,
        "app_id": f"typostream-{suffix}",
        # Every topic_* field, so topics added to Settings later are isolated too.
        **{f.name: f"{f.default}-{suffix}" for f in fields(Settings) if f.name.startswith("topic_")},
    }

    def make(**overrides: Any) -> Settings:
        return Settings(**{**base, **overrides})

    return make
