"""Feeds → the real embedded Kafka-protocol broker: events validate, the cursor blocks replays, and
``typostream feed`` (a subprocess, as deployed) serves its metrics and loses nothing in an outage
longer than PyPI's RSS window."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from fixture_feeds import NPM_EXPECTED, PYPI_EXPECTED, Registries, pep503

from tests.conftest import SettingsFactory
from typostream.agents.adapters.feeds import (
    CursorStore,
    FeedHTTP,
    FeedSource,
    NpmSource,
    PypiSource,
    run_feed,
)
from typostream.agents.domain.events import parse_publish
from typostream.streams.config import Settings
from typostream.streams.topics import ensure_topics

pytestmark = pytest.mark.integration


async def _records(settings: Settings, timeout_s: float = 3.0) -> list[tuple[bytes | None, bytes]]:
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        tps = [TopicPartition(settings.topic_input, p) for p in range(settings.partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        out: list[tuple[bytes | None, bytes]] = []
        idle_until = time.monotonic() + timeout_s
        while time.monotonic() < idle_until:
            batch = await consumer.getmany(timeout_ms=200)
            for records in batch.values():
                out.extend((r.key, r.value) for r in records if r.value is not None)
                idle_until = time.monotonic() + 0.5
        return out
    finally:
        await consumer.stop()


async def _feed_once(settings: Settings, source: FeedSource, store: CursorStore) -> int:
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all")
    await producer.start()

    async def send(values: Sequence[bytes]) -> None:
        futures = [await producer.send(settings.topic_input, value=v, key=None) for v in values]
        for future in futures:
            await future

    try:
        return (await run_feed(source, send, store, once=True, limit=100)).sent
    finally:
        await producer.stop()
        await source.close()


async def test_feeds_publish_valid_events_once(
    settings_factory: SettingsFactory, feed_server: TestServer, tmp_path: Path
) -> None:
    settings = settings_factory()
    await ensure_topics(settings)
    base = str(feed_server.make_url("")).rstrip("/")

    def sources() -> list[tuple[FeedSource, CursorStore]]:
        http = FeedHTTP(timeout_s=2, retries=2, backoff_s=0.01)
        return [
            (NpmSource(base, base, http, start="0"), CursorStore.for_registry(settings.data_dir, "npm")),
            (PypiSource(base, FeedHTTP(timeout_s=2)), CursorStore.for_registry(settings.data_dir, "pypi")),
        ]

    sent = [await _feed_once(settings, source, store) for source, store in sources()]
    assert sent == [len(NPM_EXPECTED), len(PYPI_EXPECTED)]
    records = await _records(settings)
    assert all(key is None for key, _ in records)  # package-feeds convention: no key
    events = [parse_publish(value, settings.max_event_bytes) for _, value in records]
    assert {(e.name, e.version, e.created_date) for e in events} == NPM_EXPECTED | PYPI_EXPECTED
    assert len(events) == len(NPM_EXPECTED) + len(PYPI_EXPECTED)

    # Second run (fresh sources, as after a restart): the saved cursors publish nothing new.
    assert [await _feed_once(settings, source, store) for source, store in sources()] == [0, 0]
    assert len(await _records(settings, timeout_s=1.5)) == len(events)


def _labels(text: str, name: str) -> dict[str, float]:
    """``{'<labels>': value}`` of one metric in Prometheus' text format."""
    found: dict[str, float] = {}
    for line in text.splitlines():
        match = re.fullmatch(rf"{name}\{{(.*)\}} (\S+)", line)
        if match:
            found[match.group(1)] = float(match.group(2))
    return found


async def _scrape(url: str) -> str:
    async with aiohttp.ClientSession() as http, http.get(url) as resp:
        assert resp.status == 200
        return await resp.text()


async def _wait_for(settings: Settings, count: int, timeout_s: float) -> list[tuple[bytes | None, bytes]]:
    deadline = time.monotonic() + timeout_s
    records: list[tuple[bytes | None, bytes]] = []
    while time.monotonic() < deadline:
        records = await _records(settings, timeout_s=1.0)
        if len(records) >= count:
            return records
        await asyncio.sleep(0.5)
    return records


async def test_feed_command_outage_longer_than_the_rss_window_and_metrics(
    settings_factory: SettingsFactory, feed_server: TestServer, registries: Registries, tmp_path: Path
) -> None:
    """``typostream feed --registry pypi --metrics-port 0`` against the fixture PyPI: the three
    published releases, then a full outage during which 150 releases (> the 100 in RSS) appear,
    then recovery: every release is on the topic exactly once; /metrics shows the polls, the
    errors, the events and the lag."""
    settings = settings_factory()
    await ensure_topics(settings)
    base = str(feed_server.make_url("")).rstrip("/")
    env = {**os.environ, "TYPOSTREAM_TOPIC_INPUT": settings.topic_input}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "typostream.streams.cli", "feed", "--registry", "pypi",
        "--interval", "0.2", "--metrics-port", "0", "--pypi-url", base,
        "--data-dir", str(settings.data_dir), "--kafka", settings.kafka_bootstrap,
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        assert proc.stderr is not None
        line = (await asyncio.wait_for(proc.stderr.readline(), timeout=30)).decode()
        match = re.search(r"metrics on (http://127\.0\.0\.1:\d+/metrics)", line)
        assert match, line
        metrics_url = match.group(1)

        seeded = await _wait_for(settings, 3, timeout_s=30)
        assert len(seeded) == 3

        registries.down.add("/")  # everything answers 503
        start = int(time.time()) - 600
        expected: set[tuple[str, str]] = set()
        for n in range(150):
            name = f"Outage.Release_{n:03d}"
            registries.pypi.release(name, "2.0", start + 3 * n)
            expected.add((pep503(name), "2.0"))
        failing: dict[str, float] = {}
        deadline = time.monotonic() + 40
        while not failing.get('outcome="unavailable",registry="pypi"') and time.monotonic() < deadline:
            await asyncio.sleep(0.5)  # a poll gives up after its retries (~3.5 s per source)
            failing = _labels(await _scrape(metrics_url), "typostream_feed_polls_total")
        registries.down.clear()
        recovered = time.monotonic()

        records = await _wait_for(settings, 3 + 150, timeout_s=40)
        took = time.monotonic() - recovered
        print(f"recovery -> all {len(records)} on the topic: {took:.1f} s")
        # RSS at once, the journal at most 10 s after its last failed attempt, ~1 s of polling
        assert took < 25
        events = [parse_publish(value, settings.max_event_bytes) for _, value in records]
        assert len(events) == 3 + 150 and len({e.event_id for e in events}) == 3 + 150
        got = {(e.name, e.version) for e in events}
        assert expected <= got and {(n, v) for n, v, _ in PYPI_EXPECTED} <= got

        text = await _scrape(metrics_url)
        polls = _labels(text, "typostream_feed_polls_total")
        assert failing.get('outcome="unavailable",registry="pypi"', 0) >= 1
        assert polls['outcome="ok",registry="pypi"'] >= 2
        assert _labels(text, "typostream_feed_events_total") == {'registry="pypi"': 153.0}
        errors = _labels(text, "typostream_feed_errors_total")
        assert errors.get('kind="unavailable",registry="pypi"', 0) >= 1
        assert 'registry="pypi"' in _labels(text, "typostream_feed_lag_seconds")
        assert 'registry="pypi"' in _labels(text, "typostream_feed_last_success_timestamp_seconds")
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(proc.wait(), timeout=30)
    assert code == 0
    assert proc.stdout is not None
    assert "sent 153 event(s)" in (await proc.stdout.read()).decode()


async def test_feed_command_npm_once(
    settings_factory: SettingsFactory, feed_server: TestServer, registries: Registries
) -> None:
    """The composition root's npm factory: ``--npm-since 0`` replays the fixture's changes once."""
    settings = settings_factory()
    await ensure_topics(settings)
    base = str(feed_server.make_url("")).rstrip("/")
    env = {**os.environ, "TYPOSTREAM_TOPIC_INPUT": settings.topic_input}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "typostream.streams.cli", "feed", "--registry", "npm", "--once",
        "--npm-replicate-url", base, "--npm-registry-url", base, "--npm-since", "0",
        "--data-dir", str(settings.data_dir), "--kafka", settings.kafka_bootstrap,
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode == 0, err.decode()
    assert "npm: sent 4 event(s)" in out.decode()
    events = [parse_publish(value, settings.max_event_bytes) for _, value in await _records(settings)]
    assert {(e.name, e.version, e.created_date) for e in events} == NPM_EXPECTED
    assert {e.schema_ver for e in events} == {"1.1"}
