"""``typostream dlq`` / ``typostream threats`` against the real embedded broker (no worker).

DLQ- and threat-shaped records are published straight to this test's topics; the CLI runs as a
subprocess with ``--kafka`` and the topic names in the environment.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from tests.conftest import SettingsFactory
from typostream.agents.domain.errors import InvalidEventError
from typostream.agents.domain.messages import dead_letter
from typostream.streams.config import Settings
from typostream.streams.topics import ensure_topics

pytestmark = pytest.mark.integration

ORIGINALS: list[tuple[str, bytes, bytes | None]] = [
    ("not_json", b"{not json \xff", b"npm:left-pad"),
    ("schema", b'{"name": 1}', None),
    ("not_json", b"plain text", None),
    ("internal_error", b'{"name": "x", "version": "1"}', b"pypi:x"),
]


def _env(settings: Settings) -> dict[str, str]:
    return {
        **os.environ,
        "TYPOSTREAM_TOPIC_DLQ": settings.topic_dlq,
        "TYPOSTREAM_TOPIC_THREATS": settings.topic_threats,
        "TYPOSTREAM_TOPIC_INPUT": settings.topic_input,
        "COLUMNS": "200",
    }


def typostream(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "typostream.streams.cli", *args, "--kafka", settings.kafka_bootstrap],
        capture_output=True,
        text=True,
        timeout=60,
        env=_env(settings),
        cwd=settings.data_dir.parent,
    )


async def _publish(settings: Settings, topic: str, records: list[tuple[bytes | None, bytes]]) -> None:
    await ensure_topics(settings)
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, linger_ms=5)
    await producer.start()
    try:
        futures = [await producer.send(topic, value, key=key) for key, value in records]
        for future in futures:
            await future
    finally:
        await producer.stop()


async def _consume_raw(settings: Settings, topic: str, timeout_s: float = 5.0) -> list[tuple[Any, Any]]:
    """(key, value) bytes of every record of ``topic``, reading until ``timeout_s`` or idle for 1 s."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap, enable_auto_commit=False, fetch_max_wait_ms=20
    )
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(settings.partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        out: list[tuple[Any, Any]] = []
        idle_until = time.monotonic() + timeout_s
        while time.monotonic() < idle_until:
            batch = await consumer.getmany(timeout_ms=200)
            for records in batch.values():
                out.extend((r.key, r.value) for r in records)
                idle_until = min(idle_until, time.monotonic() + 1.0)
        return out
    finally:
        await consumer.stop()


@pytest.fixture
def dlq_settings(settings_factory: SettingsFactory) -> Settings:
    settings = settings_factory()
    records = [
        (
            key,
            orjson.dumps(
                dead_letter(InvalidEventError(reason, "bad"), value, key, settings.topic_input, 0, i)
            ),
        )  # type: ignore[arg-type]
        for i, (reason, value, key) in enumerate(ORIGINALS)
    ]
    asyncio.run(_publish(settings, settings.topic_dlq, [*records, (None, b"garbage")]))
    return settings


def test_dlq_table_counts_reasons(dlq_settings: Settings) -> None:
    proc = typostream(dlq_settings, "dlq")
    assert proc.returncode == 0, proc.stderr
    assert "4 dead letter(s)" in proc.stdout
    assert "not_json=2" in proc.stdout and "schema=1" in proc.stdout and "internal_error=1" in proc.stdout
    assert "1 unreadable" in proc.stdout
    assert "plain text" in proc.stdout  # original preview


def test_dlq_reason_filter_and_json_lines(dlq_settings: Settings) -> None:
    proc = typostream(dlq_settings, "dlq", "--reason", "not_json", "--format", "json")
    assert proc.returncode == 0, proc.stderr
    lines = [orjson.loads(line) for line in proc.stdout.splitlines()]
    assert {line["reason"] for line in lines} == {"not_json"} and len(lines) == 2
    assert {line["original_text"] for line in lines} == {"{not json \ufffd", "plain text"}
    for line in lines:
        assert {
            "dlq_partition",
            "dlq_offset",
            "error",
            "source_offset",
            "original_b64",
            "rejected_at",
        } <= set(line)
    assert "2 dead letter(s)" in proc.stderr and "not_json=2" in proc.stderr

    limited = typostream(dlq_settings, "dlq", "--limit", "1", "--format", "json")
    assert limited.returncode == 0 and len(limited.stdout.splitlines()) == 1
    assert "showing 1" in limited.stderr


def test_dlq_replay_dry_run_then_yes(dlq_settings: Settings) -> None:
    dry = typostream(dlq_settings, "dlq", "--replay", "--reason", "not_json")
    assert dry.returncode == 0, dry.stderr
    assert "dry run: 2 record(s) would be replayed" in dry.stdout
    assert asyncio.run(_consume_raw(dlq_settings, dlq_settings.topic_input, timeout_s=1.5)) == []

    sent = typostream(dlq_settings, "dlq", "--replay", "--yes")
    assert sent.returncode == 0, sent.stderr
    assert f"replayed 4 record(s) to {dlq_settings.topic_input}" in sent.stdout
    replayed = asyncio.run(_consume_raw(dlq_settings, dlq_settings.topic_input))
    assert sorted(replayed, key=repr) == sorted(((k, v) for _, v, k in ORIGINALS), key=repr)


def _threat(threat_id: str, severity: str, name: str, minute: int) -> dict[str, Any]:
    return {
        "id": threat_id * 32,
        "timestamp": f"2026-01-01T00:{minute:02d}:00Z",
        "type": "typosquat",
        "severity": severity,
        "source": "typostream",
        "package": {"name": name, "version": "1.0.0", "registry": "npm"},
        "threat": {
            "type": "typosquat", "target": "express", "technique": "omission", "confidence": 0.9,
            "risk_score": 60, "evidence": ["x"], "mitigations": [],
        },
        "metadata": {"detection_method": "typostream.typosquat.omission", "correlation_id": "c"},
    }  # fmt: skip


def test_threats_deduplicated_and_filtered(settings_factory: SettingsFactory) -> None:
    settings = settings_factory()
    threats = [
        _threat("a", "low", "exprss", 1),
        _threat("b", "high", "expres", 2),
        _threat("c", "critical", "acme-internal", 3),
        _threat("b", "high", "expres", 2),  # re-delivery
    ]
    asyncio.run(_publish(settings, settings.topic_threats, [(b"npm:x", orjson.dumps(t)) for t in threats]))

    proc = typostream(settings, "threats", "--format", "json")
    assert proc.returncode == 0, proc.stderr
    ids = [orjson.loads(line)["id"][0] for line in proc.stdout.splitlines()]
    assert sorted(ids) == ["a", "b", "c"]
    assert orjson.loads(proc.stdout.splitlines()[0]) == threats[0]  # the full message
    assert "1 duplicate" in proc.stderr

    high = typostream(settings, "threats", "--min-severity", "high")
    assert high.returncode == 0, high.stderr
    assert "expres@1.0.0" in high.stdout and "acme-internal@1.0.0" in high.stdout
    assert "exprss@" not in high.stdout
    assert "2 threat(s) at or above high" in high.stdout


def test_threats_follow_prints_only_new_ones(settings_factory: SettingsFactory) -> None:
    settings = settings_factory()
    old = [(None, orjson.dumps(_threat(c, "high", "old", 1))) for c in "abc"]  # one batch: Tansu's quirk
    asyncio.run(_publish(settings, settings.topic_threats, old))
    proc = subprocess.Popen(
        [sys.executable, "-m", "typostream.streams.cli", "threats", "--follow", "--format", "json",
         "--limit", "1", "--min-severity", "medium", "--kafka", settings.kafka_bootstrap],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(settings),
    )  # fmt: skip
    try:
        assert proc.stderr is not None
        assert proc.stderr.readline().startswith("following ")  # it knows where the end is
        new = [
            _threat("l", "low", "quiet", 2),
            _threat("n", "high", "new", 3),
            _threat("n", "high", "new", 3),
        ]
        asyncio.run(_publish(settings, settings.topic_threats, [(None, orjson.dumps(t)) for t in new]))
        out, err = proc.communicate(timeout=20)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert [orjson.loads(line)["package"]["name"] for line in out.splitlines()] == ["new"]


def test_missing_topic_exits_2(settings_factory: SettingsFactory) -> None:
    settings = settings_factory()
    proc = typostream(settings, "dlq")
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1] == (
        f"typostream: error: topic {settings.topic_dlq} does not exist (create it with `typostream topics`)"
    )


def test_unreachable_kafka_exits_2(settings_factory: SettingsFactory) -> None:
    settings = settings_factory(kafka_bootstrap="127.0.0.1:1")
    proc = typostream(settings, "threats")
    assert proc.returncode == 2
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith(f"typostream: error: cannot read {settings.topic_threats} from 127.0.0.1:1:")
    assert "Unclosed" not in proc.stderr
