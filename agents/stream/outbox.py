"""The sends of one batch: queued on the producer as the batch is processed, awaited together at its end.

``app.producer.send`` only appends the record to the producer's accumulator and returns the future
of its delivery, so queueing a batch's records costs a few microseconds each instead of Faust's
per-message ``Topic.send`` machinery. :meth:`Outbox.flush` then waits for every delivery and raises
the first failure: an agent acks its batch only after ``flush`` returned (``take_events`` acks when
the loop body is done with a batch), and on a failure it :func:`~.dlq.halt`\\ s with the whole batch
unhandled, so a record that never reached Kafka is never committed (at least once: the records of
that batch that did land are sent again after the restart, and every consumer de-duplicates by id).

Values are serialised here with orjson, the codec of every JSON topic (``streams/codecs.py``); keys
are the raw bytes of the package key, as Faust's ``raw`` key serializer sends them.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any

import orjson
from faust.types import AppT, Message

from typostream.agents.adapters import metrics
from typostream.agents.domain.errors import InvalidEventError
from typostream.agents.domain.messages import dead_letter, dead_letter_key
from typostream.agents.stream.dlq import _bytes

Headers = list[tuple[str, bytes]]


class Outbox:
    """Records for Kafka, queued now and confirmed by :meth:`flush`."""

    __slots__ = ("_pending", "_rejected", "_send")

    def __init__(self, app: AppT) -> None:
        self._send = app.producer.send
        self._pending: list[Awaitable[Any]] = []
        self._rejected: list[str] = []

    def __len__(self) -> int:
        return len(self._pending)

    async def send(self, topic: str, key: bytes | None, value: bytes, headers: Headers | None = None) -> None:
        """Queue ``value`` (already serialised) for ``topic``; raises only if the producer refuses it."""
        self._pending.append(await self._send(topic, key, value, None, None, headers))

    async def send_json(
        self, topic: str, key: bytes | None, value: Any, headers: Headers | None = None
    ) -> None:
        await self.send(topic, key, orjson.dumps(value), headers)

    async def dead_letter(
        self, topic: str, error: InvalidEventError, message: Message, value: bytes | None = None
    ) -> None:
        """Queue the bounded DLQ record of ``message`` (``value`` replaces its original bytes if given)."""
        original = _bytes(message.value if value is None else value)
        record = dead_letter(error, original, message.key, message.topic, message.partition, message.offset)
        await self.send_json(topic, dead_letter_key(message.key), record)
        self._rejected.append(error.reason)

    async def flush(self) -> None:
        """Wait until every queued record is delivered; the first failure is raised."""
        pending, self._pending = self._pending, []
        for delivery in pending:
            await delivery
        rejected, self._rejected = self._rejected, []
        for reason in rejected:
            metrics.EVENTS_REJECTED.labels(reason).inc()
