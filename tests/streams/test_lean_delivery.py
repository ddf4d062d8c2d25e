"""The transport's conductor handler for raw topics: the events Faust's own handler would deliver."""

from __future__ import annotations

import asyncio
from typing import Any

import faust
import pytest
from faust.types import TP
from faust.types.tuples import ConsumerMessage

from typostream.streams.codecs import CODEC_NAME, register_codecs
from typostream.streams.transport import LeanDelivery


@pytest.fixture
def app() -> faust.App:
    register_codecs()
    # Never contacted: the consumer and producer objects are only built.
    app = faust.App("lean-test", broker="kafka://127.0.0.1:1", store="memory://", stream_buffer_maxsize=8)
    app.flow_control.resume()  # as when partitions are assigned (a delivery waits for it, as Faust's)
    return app


def message(offset: int, key: bytes | None, value: bytes | None, headers: Any = None) -> ConsumerMessage:
    return ConsumerMessage("t", 0, offset, 0.0, 0, headers or [], key, value, None, 0, 0, TP("t", 0))


def streams_of(app: faust.App, n: int, **serializers: Any) -> list[Any]:
    topic = app.topic("t", key_serializer="raw", value_serializer="raw", **serializers)
    return [topic.clone(is_iterator=True) for _ in range(n)]


def test_it_serves_only_raw_topic_streams(app: faust.App) -> None:
    assert LeanDelivery.serves(streams_of(app, 2))
    assert not LeanDelivery.serves([])
    json_topic = app.topic("j", key_serializer="raw", value_serializer=CODEC_NAME).clone(is_iterator=True)
    assert not LeanDelivery.serves([*streams_of(app, 1), json_topic])

    class Model(faust.Record):
        x: int

    typed = app.topic("m", value_type=Model).clone(is_iterator=True)
    assert not LeanDelivery.serves([typed])


async def test_each_stream_gets_the_event_fausts_raw_decode_makes(app: faust.App) -> None:
    channels = streams_of(app, 2)
    delivery = LeanDelivery(app.topics, TP("t", 0), channels)
    messages = [
        message(0, b"npm:a", b'{"v":1}', [("h", b"1")]),
        message(1, None, b"no key"),
        message(2, b"k", None),  # a tombstone
    ]
    assert delivery.put_now(messages[0]) and delivery.put_now(messages[1])
    await delivery(messages[2])  # Faust's handler interface
    got = [[channel.queue.get_nowait() for _ in messages] for channel in channels]
    for i, msg in enumerate(messages):
        expected = await channels[0].decode(msg)  # Faust's own decode of the same message
        first, second = got[0][i], got[1][i]
        assert first is second  # one event, shared, as Faust's conductor shares it
        assert type(first) is type(expected)
        assert (first.key, first.value, first.headers, first.message) == (
            expected.key,
            expected.value,
            expected.headers,
            expected.message,
        )
        assert msg.refcount == 2  # one reference per stream, acked by each


async def test_a_full_stream_queue_holds_the_message_until_it_drains(app: faust.App) -> None:
    [channel] = streams_of(app, 1)
    delivery = LeanDelivery(app.topics, TP("t", 0), [channel])
    messages = [message(i, b"k", b"v%d" % i) for i in range(9)]  # the queue holds 8
    assert all(delivery.put_now(m) for m in messages[:8])
    assert not delivery.put_now(messages[8]) and messages[8].refcount == 0  # nothing happened
    task = asyncio.create_task(delivery.put(messages[8]))
    await asyncio.sleep(0.05)
    assert not task.done()
    drained = [channel.queue.get_nowait().value for _ in range(8)]
    await asyncio.wait_for(task, 1)
    drained.append(channel.queue.get_nowait().value)
    assert drained == [b"v%d" % i for i in range(9)]  # in order, none lost or repeated
