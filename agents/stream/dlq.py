"""Send a message that cannot be processed to the dead-letter topic (never drop, never crash)."""

from __future__ import annotations

from faust.types import Message, TopicT

from typostream.agents.adapters import metrics
from typostream.agents.domain.errors import InvalidEventError
from typostream.agents.domain.messages import dead_letter


async def send_to_dlq(
    dlq: TopicT, error: InvalidEventError, message: Message, value: bytes | None = None
) -> None:
    """Dead-letter ``message`` with its reason; ``value`` replaces the original bytes if given."""
    original = message.value if value is None else value
    record = dead_letter(error, original, message.key, message.topic, message.partition, message.offset)
    await dlq.send(key=message.key, value=record)
    metrics.EVENTS_REJECTED.labels(error.reason).inc()
