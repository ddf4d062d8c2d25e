"""Bad configuration or unreachable servers: the CLI exits 2 with one readable line."""

from __future__ import annotations

import asyncio
import gzip
import os
import subprocess
import sys
import zlib
from pathlib import Path

import orjson
import pytest

from tests.conftest import SettingsFactory
from tests.integration.conftest import consume_all
from typostream.streams.config import Settings
from typostream.streams.stack import StackState
from typostream.streams.topics import ensure_topics


def typostream(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "typostream.streams.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
    )


def test_worker_with_unreachable_kafka_exits_2(tmp_path: Path) -> None:
    proc = typostream("worker", "--data-dir", str(tmp_path), "--kafka", "127.0.0.1:1")
    assert proc.returncode == 2
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("typostream: error: cannot start the worker:") and "bootstrap" in last


@pytest.mark.integration
def test_worker_with_missing_advisory_path_exits_2(tmp_path: Path, embedded_stack: StackState) -> None:
    env = {"TYPOSTREAM_KNOWN_MALICIOUS_PATHS": str(tmp_path / "missing")}
    proc = typostream(
        "worker", "--data-dir", str(tmp_path), "--kafka", embedded_stack.kafka_bootstrap, env=env
    )
    assert proc.returncode == 2
    last = proc.stderr.strip().splitlines()[-1]
    reason = f"no such advisory file or directory: {tmp_path / 'missing'}"
    assert last == f"typostream: error: cannot start the worker: {reason}"


def test_bad_env_value_is_one_line(tmp_path: Path) -> None:
    proc = typostream("config", "--data-dir", str(tmp_path), env={"TYPOSTREAM_PARTITIONS": "many"})
    assert proc.returncode == 2
    assert proc.stderr.strip() == "typostream: error: TYPOSTREAM_PARTITIONS='many' is not a valid int"


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"TYPOSTREAM_WEB_PORT": "abc"}, "TYPOSTREAM_WEB_PORT='abc' is not a valid int"),
        ({"TYPOSTREAM_WEB_PORT": "99999"}, "TYPOSTREAM_WEB_PORT=99999: port out of range 0-65535"),
        (
            {"TYPOSTREAM_CLICKHOUSE_DSN": "https://default:hunter2@ch:99999/db"},
            "TYPOSTREAM_CLICKHOUSE_DSN='https://default:***@ch:99999/db': port out of range 0-65535",
        ),
    ],
)
def test_config_with_an_invalid_port_is_one_line_exit_2(
    tmp_path: Path, env: dict[str, str], expected: str
) -> None:
    proc = typostream("config", "--data-dir", str(tmp_path), env=env)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip() == f"typostream: error: {expected}"
    assert proc.stdout == "" and "hunter2" not in proc.stderr


def test_produce_missing_file_is_one_line(tmp_path: Path) -> None:
    proc = typostream("produce", "--file", str(tmp_path / "nope.jsonl"), "--data-dir", str(tmp_path))
    assert proc.returncode == 2
    assert proc.stderr.strip().startswith("typostream: error: cannot read")


def test_query_rejects_writes(tmp_path: Path) -> None:
    proc = typostream("query", "DROP TABLE events", "--data-dir", str(tmp_path))
    assert proc.returncode == 2
    assert "read-only" in proc.stderr


def event_line(i: int) -> bytes:
    doc = {"name": f"pkg-{i}", "version": "1.0.0", "created_date": "2026-11-25T10:00:00Z", "type": "npm"}
    return orjson.dumps(doc)


def produce_cli(settings: Settings, file: Path) -> subprocess.CompletedProcess[str]:
    asyncio.run(ensure_topics(settings))
    env = {"TYPOSTREAM_TOPIC_INPUT": settings.topic_input}
    return typostream(
        "produce",
        "--file",
        str(file),
        "--kafka",
        settings.kafka_bootstrap,
        "--data-dir",
        str(settings.data_dir),
        env=env,
    )


def sent_names(settings: Settings) -> list[str]:
    return sorted(r["name"] for r in asyncio.run(consume_all(settings, settings.topic_input, timeout_s=3)))


@pytest.mark.integration
def test_produce_truncated_gzip_is_one_line_naming_the_file_and_how_many_were_sent(
    tmp_path: Path, settings_factory: SettingsFactory
) -> None:
    settings = settings_factory()
    whole = b"".join(event_line(i) + b"\n" for i in range(3000))
    packed = gzip.compress(whole, mtime=0)
    file = tmp_path / "events.jsonl.gz"
    file.write_bytes(packed[: len(packed) * 2 // 3])  # cut mid-stream: no end-of-stream marker
    readable = zlib.decompressobj(wbits=31).decompress(file.read_bytes())
    complete = readable.count(b"\n")
    assert 0 < complete < 3000

    proc = produce_cli(settings, file)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and "Aborted" not in proc.stderr
    assert proc.stderr.strip() == (
        f"typostream: error: {file}: truncated gzip file (it ends without its end-of-stream marker "
        f"after line {complete}); sent {complete} line(s) to {settings.topic_input} before it stopped"
    )
    assert sent_names(settings) == sorted(f"pkg-{i}" for i in range(complete))  # nothing lost, no extra


@pytest.mark.integration
def test_produce_not_a_gzip_file_is_one_line(tmp_path: Path, settings_factory: SettingsFactory) -> None:
    settings = settings_factory()
    file = tmp_path / "events.jsonl.gz"
    file.write_bytes(event_line(1) + b"\n")  # plain text with a .gz name
    proc = produce_cli(settings, file)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith(f"typostream: error: {file}: not a gzip file")
    assert proc.stderr.strip().endswith(f"sent 0 line(s) to {settings.topic_input} before it stopped")
    assert len(proc.stderr.strip().splitlines()) == 1


@pytest.mark.integration
def test_produce_stops_at_a_line_kafka_refuses_and_says_how_many_it_sent(
    tmp_path: Path, settings_factory: SettingsFactory
) -> None:
    settings = settings_factory()
    file = tmp_path / "events.jsonl"
    lines = [event_line(i) for i in range(10)] + [b"x" * 2_000_000] + [event_line(i) for i in range(10, 15)]
    file.write_bytes(b"\n".join(lines) + b"\n")
    proc = produce_cli(settings, file)
    assert proc.returncode == 2, proc.stderr
    [line] = proc.stderr.strip().splitlines()
    where = f"(stopped at line 11 of {file})"
    assert line.startswith(f"typostream: error: cannot produce to {settings.kafka_bootstrap} {where}: ")
    assert "2000" in line and "max_request_size" in line
    assert line.endswith(f"; sent 10 line(s) to {settings.topic_input} before it stopped")
    assert sent_names(settings) == sorted(f"pkg-{i}" for i in range(10))


@pytest.mark.integration
def test_produce_whole_file_reports_the_count(tmp_path: Path, settings_factory: SettingsFactory) -> None:
    settings = settings_factory()
    file = tmp_path / "events.jsonl.gz"
    file.write_bytes(gzip.compress(b"".join(event_line(i) + b"\n\n" for i in range(2500))))
    proc = produce_cli(settings, file)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"sent 2500 event(s) to {settings.topic_input}"
    assert len(sent_names(settings)) == 2500
