"""The embedded stack: a Tansu Kafka-protocol broker, redis-server and in-process chDB.

``EmbeddedStack(data_dir).up()`` starts the servers on free 127.0.0.1 ports and records them in
``<data_dir>/stack.json``; ``read_urls(data_dir)`` lets ``Settings`` find a running stack.
"""

from __future__ import annotations

from typostream.agents.domain.errors import BinaryNotFoundError, StackError, StartupError
from typostream.streams.stack.manager import EmbeddedStack
from typostream.streams.stack.state import StackState, read_urls

__all__ = ["BinaryNotFoundError", "EmbeddedStack", "StackError", "StackState", "StartupError", "read_urls"]
