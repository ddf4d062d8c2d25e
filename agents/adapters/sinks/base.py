"""What every sink is: a consumer of one or more output streams that writes batches idempotently.

A sink plugs in with one file (a :class:`Sink` subclass), one line in the composition root's
sink factories (``streams/components.py``) and its test. The ``sink`` agent gives each sink its
own Faust agent per stream, batches records, retries transient failures with backoff and
dead-letters a record the sink rejects as :class:`~typostream.agents.domain.errors.InvalidRowError`.

Processing is at least once: a batch may be written again after a crash, so ``write`` must be
idempotent (key by the records' deterministic ``event_id`` / ``id``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Literal

__all__ = ["Sink", "StreamName"]

StreamName = Literal["events", "threats"]
"""``events``: analysed events (``typostream.analysed``); ``threats``: threat events."""


class Sink(ABC):
    id: ClassVar[str]
    """Stable name: the agent is ``sink_<stream>`` for ClickHouse, ``sink_<id>_<stream>`` otherwise."""
    streams: ClassVar[tuple[StreamName, ...]]
    """The output streams this sink consumes."""

    def ensure_schema(self) -> None:  # noqa: B027  (optional hook)
        """Prepare the target (create tables...) before the worker starts; blocking, idempotent."""

    @abstractmethod
    async def write(self, stream: StreamName, records: Sequence[Mapping[str, Any]]) -> None:
        """Write one batch of ``stream``'s records (message values as they are on the topic).

        Raise ``InvalidRowError`` when a record itself can't be written (it is dead-lettered alone);
        any other exception is treated as transient and the batch is retried.
        """

    async def close(self) -> None:  # noqa: B027  (optional hook)
        """Release connections on worker shutdown."""
