"""Agent ``validate``: raw ``registry.publish`` → ``typostream.events`` (valid) or the DLQ (invalid)."""

from __future__ import annotations

from faust import StreamT

from typostream.agents.dlq import send_to_dlq
from typostream.agents.exceptions import InvalidEventError, internal_error
from typostream.agents.records import event_message, utc_now_iso
from typostream.agents.validation import parse_publish
from typostream.streams import metrics
from typostream.streams.pipeline import Pipeline

BATCH = 500
BATCH_WAIT_S = 0.005  # a lone publish waits at most 5 ms for company


def register(pipeline: Pipeline) -> None:
    topics, max_bytes = pipeline.topics, pipeline.settings.max_event_bytes

    @pipeline.app.agent(topics.input, name="validate")
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
