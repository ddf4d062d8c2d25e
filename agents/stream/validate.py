"""Agent ``validate``: raw ``registry.publish`` → ``typostream.events`` (valid) or the DLQ (invalid)."""

from __future__ import annotations

import asyncio

from faust import StreamT

from typostream.agents.adapters import metrics
from typostream.agents.domain.errors import InvalidEventError, internal_error
from typostream.agents.domain.events import parse_publish
from typostream.agents.domain.messages import event_message, utc_now_iso
from typostream.agents.stream.context import StreamContext
from typostream.agents.stream.dlq import halt, release, send_to_dlq

BATCH = 500
BATCH_WAIT_S = 0.005  # a lone publish waits at most 5 ms for company


def register(ctx: StreamContext, max_bytes: int) -> None:
    app, topics = ctx.app, ctx.topics

    @app.agent(topics.input, name="validate")
    async def validate(stream: StreamT) -> None:
        # take_events acks a batch once the loop body is done with it (at-least-once), and also when
        # the body raises: so every message is forwarded or dead-lettered, and a failure to do
        # either halts the worker with the rest of the batch released, not acked (see dlq.py).
        # StreamT's stub lacks take_events; the runtime faust.Stream has it.
        async for batch in stream.take_events(BATCH, within=BATCH_WAIT_S):  # type: ignore[attr-defined]
            received_at = utc_now_iso()
            for index, event in enumerate(batch):
                msg = event.message
                try:
                    try:
                        publish = parse_publish(msg.value, max_bytes)
                        key = publish.key
                        value = event_message(publish, msg.partition, msg.offset, received_at)
                    except Exception as exc:  # invalid input, or a bug: dead-letter it either way
                        error = exc if isinstance(exc, InvalidEventError) else internal_error(exc)
                        await send_to_dlq(topics.dlq, error, msg)
                        continue
                    await topics.events.send(key=key, value=value)
                except asyncio.CancelledError:
                    release(batch[index:])
                    raise
                except Exception as exc:  # the DLQ or the events topic refused a send
                    await halt(app, [stream], topics.input, batch[index:], exc)
                    return
                metrics.EVENTS_VALIDATED.inc()
