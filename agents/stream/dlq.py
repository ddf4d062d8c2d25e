"""What an agent does with a message it cannot process, and when it cannot even dead-letter one.

How Faust acks (faust-streaming 0.15, ``streams.py``): ``take_events`` acks every event of a batch
in the ``finally`` of its generator, and ``async for`` over a stream (``events()``) acks the current
event in a ``finally`` when the loop moves on *or is left*. Both run when the agent raises: the
exception closes the generators. Acked offsets are committed at the next commit or when the worker
stops, and the supervisor restarts the actor on the same stream, whose passive drainer (behind
``take_events``) goes on consuming meanwhile with acks re-enabled and no processor. So an exception
escaping an agent commits messages nobody handled: the rest of a ``detect`` batch, a sink batch
that was never written.

So every agent (1) handles or dead-letters every message (:func:`send_to_dlq`, or an
:class:`~.outbox.Outbox`'s ``dead_letter`` for a batch): a message's own
problem never escapes; (2) on a failure it cannot handle (the DLQ send itself fails, an output
topic refuses a send) calls :func:`halt`; (3) a sink agent whose write still fails when the worker
stops calls :func:`let_go`. Both *release* the messages not handled: marked done without an ack,
Faust neither commits them nor waits for them at shutdown, and the next worker gets them again.
Everything else consumed from the same topic and not acked yet is released too, and the agent's
stream is stopped, so nothing behind them is acked either. (Faust's own commit skips a gap of one
message at the committed offset, ``Consumer._new_offset`` checks ``min(acked) - committed > 1``;
typostream's transport fixes that, ``streams/transport.py``, and stopping the stream keeps this safe
on any transport.)
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence

import orjson
from faust.types import AppT, EventT, Message, StreamT, TopicT

from typostream.agents.adapters import metrics
from typostream.agents.domain.errors import InvalidEventError
from typostream.agents.domain.messages import dead_letter, dead_letter_key

log = logging.getLogger("typostream.dlq")


async def send_to_dlq(
    dlq: TopicT, error: InvalidEventError, message: Message, value: bytes | None = None
) -> None:
    """Dead-letter ``message`` with its reason; ``value`` replaces the original bytes if given.

    The record is bounded (see :func:`~typostream.agents.domain.messages.dead_letter`), so it fits
    the producer's message limit whatever the original's size. Returns once the record is
    delivered; if it cannot be, the exception propagates: the caller must :func:`halt`, not ack.
    (Agents working in batches queue their dead letters on an :class:`~.outbox.Outbox` instead.)
    """
    original = _bytes(message.value if value is None else value)
    record = dead_letter(error, original, message.key, message.topic, message.partition, message.offset)
    await (await dlq.send(key=dead_letter_key(message.key), value=record))
    metrics.EVENTS_REJECTED.labels(error.reason).inc()


def _bytes(value: object) -> bytes | None:
    """The original as bytes: Kafka gives bytes; an in-memory channel (tests) may give the object."""
    if value is None or isinstance(value, bytes):
        return value
    return orjson.dumps(value)


def release(events: Iterable[EventT]) -> None:
    """Mark the events' messages done *without* acking them: never committed, redelivered after a restart.

    Faust's own ``ack`` then does nothing for them, and ``wait_empty`` (shutdown, rebalance) no
    longer waits for them. Synchronous, so it is safe in a cancellation handler.
    """
    _release(event.message for event in events)


def _release(messages: Iterable[Message]) -> None:
    for message in messages:
        message.acked = True


async def let_go(app: AppT, streams: Iterable[StreamT], source: TopicT, unhandled: Sequence[EventT]) -> None:
    """Stop consuming ``source`` in this agent, leaving ``unhandled`` uncommitted (the worker stops)."""
    release(unhandled)
    names = set(source.topics)
    _release([m for m in list(app.consumer.unacked) if m.topic in names])
    for stream in streams:
        await stream.stop()


async def halt(
    app: AppT, streams: Iterable[StreamT], source: TopicT, unhandled: Sequence[EventT], exc: BaseException
) -> None:
    """A failure the agent cannot handle: :func:`let_go` of ``unhandled``, then crash the worker.

    The worker stops without committing anything from ``unhandled`` on and exits with code 1; its
    supervisor (systemd, Kubernetes...) restarts it and ``unhandled`` is delivered again.
    """
    first = unhandled[0].message if unhandled else None
    where = f"{first.topic}[{first.partition}]@{first.offset}" if first else "-"
    log.critical(
        "cannot handle %s (%d message(s) from it left uncommitted), stopping the worker: %r",
        where, len(unhandled), exc,
    )  # fmt: skip
    await let_go(app, streams, source, unhandled)
    await app.crash(exc)
