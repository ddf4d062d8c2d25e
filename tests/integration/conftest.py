"""Fixtures and helpers for tests that run a real worker on the embedded stack."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp import web
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from tests.conftest import SettingsFactory
from typostream.streams.config import Settings
from typostream.streams.stack.processes import free_port
from typostream.streams.topics import ensure_topics
from typostream.streams.worker_process import WorkerProcess

WorkerFactory = Callable[[Settings], WorkerProcess]


@pytest.fixture
def pipeline_settings(settings_factory: SettingsFactory, tmp_path: Path) -> Settings:
    """Settings for one worker: own topics, own chDB path (chDB locks a path per process)."""
    return settings_factory(
        clickhouse_dsn=f"chdb://{tmp_path / 'clickhouse'}",
        web_port=free_port(),
        sink_batch_seconds=0.2,
    )


@pytest.fixture
def worker_factory() -> Iterator[WorkerFactory]:
    """Start workers (ready to serve); every one still running is killed at teardown."""
    started: list[WorkerProcess] = []

    def start(settings: Settings) -> WorkerProcess:
        worker = WorkerProcess(settings).start()
        started.append(worker)
        worker.wait_ready(timeout_s=90)
        return worker

    yield start
    for worker in started:
        worker.kill()


async def produce(settings: Settings, values: Sequence[bytes]) -> None:
    await ensure_topics(settings)
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, linger_ms=5)
    await producer.start()
    try:
        futures = [await producer.send(settings.topic_input, value) for value in values]
        for future in futures:
            await future
    finally:
        await producer.stop()


async def consume_all(settings: Settings, topic: str, timeout_s: float = 5.0) -> list[Any]:
    """Every record of ``topic`` from the beginning, decoded from JSON (reads to the fetched end)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(settings.partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        values: list[Any] = []
        idle_until = time.monotonic() + timeout_s
        while time.monotonic() < idle_until:
            batch = await consumer.getmany(timeout_ms=300)
            for records in batch.values():
                values.extend(orjson.loads(r.value) for r in records)
                idle_until = time.monotonic() + 1.0  # keep reading while records flow
        return values
    finally:
        await consumer.stop()


def wait_for(worker: WorkerProcess, done: Callable[[dict[str, float]], bool], timeout_s: float = 120) -> dict:
    deadline = time.monotonic() + timeout_s
    stats: dict[str, float] = {}
    while time.monotonic() < deadline:
        assert worker.alive(), f"worker died; log: {worker.log_path.read_text()[-3000:]}"
        stats = worker.stats() or stats
        if stats and done(stats):
            return stats
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting; last stats {stats}")


def clickhouse_rows(settings: Settings, sql: str) -> list[dict[str, Any]]:
    """Query chDB in a separate process (this one may hold another chDB path)."""
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "typostream.streams.cli",
            "query",
            sql,
            "--format",
            "json",
            "--clickhouse",
            settings.clickhouse_dsn,
            "--data-dir",
            str(settings.data_dir),
        ],
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr.decode()
    return [orjson.loads(line) for line in result.stdout.splitlines() if line.strip()]


def publish(name: str, version: str, registry: str, minute: int = 0) -> bytes:
    return orjson.dumps(
        {
            "name": name,
            "version": version,
            "created_date": f"2026-11-25T10:{minute % 60:02d}:00Z",
            "type": registry,
            "artifact_id": "",
            "schema_ver": "1.1.0",
        }
    )


@contextlib.contextmanager
def serve_in_thread(app: web.Application) -> Iterator[str]:
    """Serve ``app`` on a free 127.0.0.1 port from a background thread (a worker in another process
    reaches it over real HTTP); yields its base URL and stops it on exit."""
    port = free_port()
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(app)
    started = threading.Event()

    def serve() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(runner.setup())
        loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", port).start())
        started.set()
        loop.run_forever()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    assert started.wait(10)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
