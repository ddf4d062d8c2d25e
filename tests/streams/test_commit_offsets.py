"""Commits never pass a message that was not acked (``streams/transport.py``, item 3).

Faust's ``Consumer._new_offset`` lets the commit jump over one un-acked message at the committed
offset: with committed = 10 and acked = [11, 12, 13] it commits 14, so message 10 is never
delivered again after a crash. The unit tests call the offset computation of the consumer our
transport builds; the integration test holds one message in flight in a real worker on the
embedded broker and reads the group's committed offset from the broker.
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from faust.types import TP

from tests.conftest import SettingsFactory
from typostream.streams.app import faust_app
from typostream.streams.config import Settings
from typostream.streams.stack.processes import free_port, spawn
from typostream.streams.topics import ensure_topics
from typostream.streams.transport import Consumer
from typostream.streams.worker_process import WorkerProcess, settings_env

TP0 = TP("t", 0)


@pytest.fixture
def consumer(tmp_path: Path) -> Consumer:
    app = faust_app(Settings(data_dir=tmp_path), store="memory://")
    built = app.consumer
    assert isinstance(built, Consumer)  # the typostream+kafka:// transport's consumer
    return built


def acked(consumer: Consumer, committed: int | None, offsets: list[int], first_read: int = 0) -> None:
    consumer._committed_offset[TP0] = committed
    consumer._first_read(TP0, committed if committed is not None else first_read, True)
    consumer._acked[TP0] = list(offsets)
    consumer._acked_index[TP0] = set(offsets)


def test_an_unacked_message_at_the_committed_offset_holds_the_commit(consumer: Consumer) -> None:
    acked(consumer, 10, [11, 12, 13])
    assert consumer._new_offset(TP0) is None  # Faust 0.15.3 answers 14: offset 10 would be skipped
    consumer._acked[TP0].append(10)
    assert consumer._new_offset(TP0) == 14


def test_with_nothing_committed_the_first_offset_read_is_the_head(consumer: Consumer) -> None:
    acked(consumer, None, [1, 2], first_read=0)
    assert consumer._new_offset(TP0) is None  # Faust answers 3 without looking at offset 0
    acked(consumer, None, [0, 1, 2], first_read=0)
    assert consumer._new_offset(TP0) == 3


def test_a_gap_in_the_middle_still_commits_up_to_it(consumer: Consumer) -> None:
    acked(consumer, 10, [10, 11, 13])
    assert consumer._new_offset(TP0) == 12
    assert consumer._acked[TP0] == [13]


def test_offsets_missing_from_the_log_count_as_acked(consumer: Consumer) -> None:
    # committed 10, but the first record read after the seek is 12 (10 and 11 were compacted away
    # or are transaction markers): acking 12 and 13 commits 14 instead of waiting forever.
    consumer._committed_offset[TP0] = 10
    consumer._first_read(TP0, 12, True)
    consumer._acked[TP0] = [12, 13]
    assert consumer._new_offset(TP0) == 14


def test_a_gap_inside_the_log_does_not_cover_the_record_after_it(consumer: Consumer) -> None:
    # read 20, then 23 (21 and 22 are missing): 23 itself is a real record, still in flight.
    consumer._committed_offset[TP0] = 20
    consumer._mark_gap(TP0, 21, 23)
    consumer._acked[TP0] = [20, 24]
    assert consumer._new_offset(TP0) == 23  # 20 and the missing 21, 22; not past 23
    consumer._acked[TP0].append(23)
    consumer._committed_offset[TP0] = 23
    assert consumer._new_offset(TP0) == 25


# -- on the embedded broker --------------------------------------------------------------------

HOLDING_WORKER = """
import asyncio
from typostream.streams.app import faust_app
from typostream.streams.config import Settings
from typostream.streams.worker import Worker

settings = Settings.from_env()
app = faust_app(settings, store="memory://")
topic = app.topic(settings.topic_input, key_serializer="raw", value_serializer="raw")


@app.agent(topic, concurrency=4)
async def hold(stream):
    # Several actors share the topic, as the enrich agent's do: one message stays in flight
    # (a slow registry, a retried write) while the others are acked behind it.
    async for value in stream:
        if value == b"hold":
            print("holding", flush=True)
            await asyncio.Event().wait()


Worker(app, loglevel="warning", quiet=True, redirect_stdouts=False).execute_from_commandline()
"""


class HoldingWorker(WorkerProcess):
    def start(self) -> HoldingWorker:
        argv = [sys.executable, "-c", HOLDING_WORKER]
        self.process = spawn(argv, self.log_path, die_with_parent=True, env=settings_env(self.settings))
        return self


async def send(settings: Settings, values: list[bytes]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap)
    await producer.start()
    try:
        for value in values:
            await producer.send_and_wait(settings.topic_input, value, partition=0)
    finally:
        await producer.stop()


async def committed(settings: Settings) -> int | None:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap, group_id=settings.app_id, enable_auto_commit=False
    )
    await consumer.start()
    try:
        return await consumer.committed(TopicPartition(settings.topic_input, 0))
    finally:
        await consumer.stop()


@pytest.mark.integration
def test_a_message_in_flight_at_the_committed_offset_is_not_committed_past(
    settings_factory: SettingsFactory,
) -> None:
    settings = settings_factory(partitions=1, web_port=free_port())
    asyncio.run(ensure_topics(settings))
    worker = HoldingWorker(settings).start()
    try:
        asyncio.run(send(settings, [b"ok-%d" % i for i in range(10)]))
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and asyncio.run(committed(settings)) != 10:
            assert worker.alive(), worker.log_path.read_text()[-3000:]
            time.sleep(0.5)
        assert asyncio.run(committed(settings)) == 10, worker.log_path.read_text()[-3000:]

        asyncio.run(send(settings, [b"hold", b"ok-11", b"ok-12", b"ok-13"]))  # offsets 10..13
        deadline = time.monotonic() + 30
        while "holding" not in worker.log_path.read_text() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert "holding" in worker.log_path.read_text()
        time.sleep(7)  # two commit intervals (2.8 s): 11..13 are acked, 10 is not
        assert worker.alive()
        offset = asyncio.run(committed(settings))
        print(f"\n[held offset 10] committed offset {offset}")
        assert offset == 10  # Faust's own consumer commits 14 here: offset 10 is lost on a crash
    finally:
        worker.kill()
