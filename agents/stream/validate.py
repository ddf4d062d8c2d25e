"""Agent ``validate``: raw ``registry.publish`` → ``typostream.events`` (valid) or the DLQ (invalid)."""

from __future__ import annotations

from faust import StreamT

from typostream.agents.adapters import metrics
from typostream.agents.domain.errors import InvalidEventError, internal_error
from typostream.agents.domain.events import parse_publish
from typostream.agents.domain.messages import event_message, utc_now_iso
from typostream.agents.stream.context import StreamContext
from typostream.agents.stream.dlq import send_to_dlq

BATCH = 500
BATCH_WAIT_S = 0.005  # a lone publish waits at most 5 ms for company


def register(ctx: StreamContext, max_bytes: int) -> None:
    topics = ctx.topics

    @ctx.app.agent(topics.input, name="validate")
    async def validate(stream: StreamT) -> None:
        # Batches are acked only after every message in them was forwarded (at-least-once).
        # StreamT's stub lacks take_events; the runtime faust.Stream has it.
        async for batch in stream.take_events(BATCH, within=BATCH_WAIT_S):  # type: ignore[attr-defined]
            received_at = utc_now_iso()
            for event in batch:
                msg = event.message
                try:
                    publish = parse_publish(msg.value, max_bytes)
                except Exception as exc:  # invalid input, or a bug: dead-letter it either way
                    error = exc if isinstance(exc, InvalidEventError) else internal_error(exc)
                    await send_to_dlq(topics.dlq, error, msg)
                    continue
                value = event_message(publish, msg.partition, msg.offset, received_at)
                await topics.events.send(key=publish.key, value=value)
                metrics.EVENTS_VALIDATED.inc()
