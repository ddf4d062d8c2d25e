"""The embedded stack: a Tansu Kafka-protocol broker, redis-server and in-process chDB.

``EmbeddedStack(data_dir).up()`` starts the servers on free 127.0.0.1 ports and records them in
``<data_dir>/stack.json``; ``read_urls(data_dir)`` lets ``Settings`` find a running stack.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from typostream.agents.domain.errors import BinaryNotFoundError, StackError, StartupError
from typostream.streams.stack.state import StackState, read_urls

if TYPE_CHECKING:
    from typostream.streams.stack.manager import EmbeddedStack

__all__ = ["BinaryNotFoundError", "EmbeddedStack", "StackError", "StackState", "StartupError", "read_urls"]


def __getattr__(name: str) -> object:
    """``EmbeddedStack``, imported on first use: ``Settings`` reads ``read_urls`` from this package
    on every start (``typostream scan`` too), and the manager imports the servers' clients."""
    if name == "EmbeddedStack":
        from typostream.streams.stack.manager import EmbeddedStack

        return EmbeddedStack
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
