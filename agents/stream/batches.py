"""Batches of events straight from an agent's channel: ``Stream.take_events`` without its per-event cost.

``take_events`` fills its buffer through a stream processor that a passive drainer task runs for
each event, through Faust's whole per-event stream machinery (a loop iteration with ``sleep(0)``,
processors, sensors, the current-event context), and only while the agent is *not* busy with the
previous batch: the buffer waits for the batch to be consumed, then collects events one by one
until ``within`` has passed. Measured on the detect agent under load, batches came out at 50-150
events with 5-30 ms spent filling each, and Faust's per-event machinery cost as much as validating
and detecting the event.

:func:`take_batches` reads the same channel the conductor fills (``aiter(stream.channel)``, which is
what subscribes the agent's topic) and takes what is queued at once: the conductor keeps filling
the queue while the agent works, so under load a batch is ``max_`` events read in one go, and when
the queue runs dry the batch closes ``within`` seconds after its first event. What Faust does per
event is kept: each message is tracked as unacked (so a stopping worker waits for it), events of
an older consumer generation (fetched before a rebalance) are dropped without an ack (Faust's
iterator acks them, which can commit an offset that was never processed), and the
queue's pressure callbacks (which pause and resume fetching) run on every get, and the stream's
processors (typostream adds none; Faust's agent test wrapper does) see every event.

Acks are ``take_events``'s: the events of a batch are acked when the loop body is done with it,
also when the body raises (the generator is closed), so an agent hands its failures to ``dlq.halt``
(which releases the batch: its events are then marked done without an ack) before they escape.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import orjson
from faust.types import EventT, StreamT
from mode.utils.futures import maybe_async


async def take_batches(stream: StreamT, max_: int, within: float) -> AsyncIterator[list[EventT]]:
    """Lists of up to ``max_`` events; a batch closes ``within`` seconds after its first event."""
    app = stream.app
    channel: Any = aiter(stream.channel)  # the conductor delivers to this iterator's queue
    queue: Any = channel.queue
    get, get_nowait, empty = queue.get, queue.get_nowait, queue.empty
    consumer = app.consumer
    add_unacked = consumer.unacked.add
    acking_topics = app.topics.acking_topics
    flow_control = app.flow_control
    on_message_in = stream._on_message_in  # type: ignore[attr-defined]  # the sensors' hook
    processors = stream._processors  # type: ignore[attr-defined]
    loop = asyncio.get_running_loop()
    await stream.maybe_start()
    batch: list[EventT] = []
    ended = False  # Faust ends a channel by throwing StopAsyncIteration into its queue (shutdown)
    try:
        while not (ended or stream.should_stop):
            try:
                item = await get()
            except StopAsyncIteration:
                return
            deadline = loop.time() + within
            while True:
                if _accept(item, app, flow_control, acking_topics, add_unacked, on_message_in):
                    batch.append(item)
                    for processor in processors:  # none in typostream's agents; run as take_events does
                        await maybe_async(processor(item.value))
                if len(batch) >= max_:
                    break
                try:
                    if not empty():
                        item = get_nowait()
                        continue
                    remaining = deadline - loop.time()
                    if remaining <= 0:
                        break
                    item = await asyncio.wait_for(get(), remaining)  # returns a result that raced the timeout
                except TimeoutError:
                    break
                except StopAsyncIteration:
                    ended = True
                    break
            if not batch:
                continue
            try:
                yield batch
            finally:
                _ack(stream, consumer, batch)
                batch = []
    finally:
        stream._channel_stop_iteration(channel)  # type: ignore[attr-defined]


def _ack(stream: StreamT, consumer: Any, batch: list[EventT]) -> None:
    """``await stream.ack(event)`` for each event, without its two coroutine hops per event."""
    on_event_out = stream._on_stream_event_out  # type: ignore[attr-defined]  # the sensors' hooks
    on_message_out = stream._on_message_out  # type: ignore[attr-defined]
    for event in batch:
        message = event.message
        last = message.ack(consumer)  # what Event.ack does
        tp, offset = message.tp, message.offset
        on_event_out(tp, offset, stream, event)
        if last:
            on_message_out(tp, offset, message)


def _accept(
    item: Any, app: Any, flow_control: Any, acking_topics: Any, add_unacked: Any, on_message_in: Any
) -> bool:
    """Track ``item``'s message as Faust's stream iterator does; False for what must not be processed."""
    if not isinstance(item, EventT):
        return False
    message = item.message
    if not flow_control.is_active() or message.generation_id != app.consumer_generation_id:
        # Fetched before a rebalance: the partition is read again from its commit. Done without
        # an ack (as ``dlq.release``): not committed, and no stopping worker waits for it.
        message.acked = True
        return False
    if message.topic in acking_topics and not message.tracked:
        message.tracked = True
        add_unacked(message)
        on_message_in(message.tp, message.offset, message)
    return True


def json_value(event: EventT) -> dict[str, Any]:
    """The JSON object an event of a typostream topic carries.

    The JSON topics are read as raw bytes and decoded here, once, with orjson: Faust's own value
    decoding also looks for a Faust model in every decoded dict (a ``KeyError`` raised and caught per
    message), ~10 % of the store process's CPU. Raises ``ValueError`` (``orjson.JSONDecodeError``)
    or ``TypeError`` for a record that is not a JSON object; an in-memory channel (tests) may hand
    over the object itself. Agents must not modify the object: agents reading the same message
    get the same one.
    """
    decoded = getattr(event, _DECODED, None)
    if decoded is not None:  # the store process's agents share one event per message: decode once
        return decoded  # type: ignore[no-any-return]
    value = event.value
    if isinstance(value, dict):
        return value
    decoded = orjson.loads(value)  # type: ignore[arg-type]
    if not isinstance(decoded, dict):
        raise TypeError(f"expected a JSON object, got {type(decoded).__name__}")
    setattr(event, _DECODED, decoded)  # read-only for every agent: none of them changes it
    return decoded


_DECODED = "_typostream_json"
