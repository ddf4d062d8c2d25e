"""The embedded stack against the real servers: Tansu, redis-server and chDB."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import clickhouse_connect
import pytest
import redis
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

import typostream.streams.stack as stack_pkg
from typostream.agents.domain.errors import BinaryNotFoundError
from typostream.streams.config import Settings
from typostream.streams.stack import EmbeddedStack, StackState, read_urls
from typostream.streams.stack import manager as manager_mod
from typostream.streams.stack.processes import pid_exists, pid_matches

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[3]
TYPOSTREAM = REPO / ".venv" / "bin" / "typostream"


def _wait_gone(pids: list[int], timeout: float = 5.0) -> list[int]:
    """Pids still alive after ``timeout`` (a zombie counts as gone: it no longer runs)."""
    deadline = time.monotonic() + timeout
    while True:
        alive = [pid for pid in pids if pid_exists(pid)]
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(0.05)


def _processes_mentioning(text: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if text in cmdline:
                found.append(int(entry.name))
    return found


def test_public_names() -> None:
    assert set(stack_pkg.__all__) >= {"EmbeddedStack", "StackState", "read_urls"}
    for name in stack_pkg.__all__:
        assert hasattr(stack_pkg, name)


async def test_kafka_roundtrip_with_keys_and_headers(embedded_stack: StackState) -> None:
    topic = f"stack-test-{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=embedded_stack.kafka_bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])
    finally:
        await admin.close()

    producer = AIOKafkaProducer(bootstrap_servers=embedded_stack.kafka_bootstrap)
    await producer.start()
    try:
        for i in range(3):
            await producer.send_and_wait(
                topic, f"value-{i}".encode(), key=f"key-{i}".encode(), headers=[("source", b"npm")]
            )
    finally:
        await producer.stop()

    consumer = AIOKafkaConsumer(bootstrap_servers=embedded_stack.kafka_bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        await consumer.seek_to_beginning(tp)
        got = []
        deadline = time.monotonic() + 10
        while len(got) < 3 and time.monotonic() < deadline:
            batch = await consumer.getmany(tp, timeout_ms=500)
            got.extend(batch.get(tp, []))
    finally:
        await consumer.stop()
    assert [(m.key, m.value, list(m.headers)) for m in got] == [
        (f"key-{i}".encode(), f"value-{i}".encode(), [("source", b"npm")]) for i in range(3)
    ]


def test_redis_set_get(embedded_stack: StackState) -> None:
    client = redis.Redis.from_url(embedded_stack.redis_url)
    try:
        key = f"stack-test:{uuid.uuid4().hex}"
        client.set(key, "hello", ex=60)
        assert client.get(key) == b"hello"
        assert client.config_get("save") == {"save": ""}
        assert client.config_get("appendonly") == {"appendonly": "no"}
    finally:
        client.close()


def test_chdb_through_clickhouse_connect(embedded_stack: StackState) -> None:
    assert embedded_stack.clickhouse_dsn == f"chdb://{embedded_stack.data_dir / 'clickhouse'}"
    table = f"t_{uuid.uuid4().hex[:8]}"
    client = clickhouse_connect.get_client(interface="chdb", path=str(embedded_stack.chdb_path))
    try:
        client.command(f"CREATE TABLE {table} (id UInt32, name String) ENGINE = MergeTree ORDER BY id")
        client.insert(table, [[1, "react"], [2, "reakt"]], column_names=["id", "name"])
        assert client.query(f"SELECT id, name FROM {table} ORDER BY id").result_rows == [
            (1, "react"),
            (2, "reakt"),
        ]
    finally:
        client.close()
    # The DSN alone selects the same embedded engine.
    client = clickhouse_connect.get_client(dsn=embedded_stack.clickhouse_dsn)
    try:
        assert client.query(f"SELECT count() FROM {table}").result_rows == [(2,)]
        client.command(f"DROP TABLE {table}")
    finally:
        client.close()


def test_read_urls_status_and_settings_find_the_stack(embedded_stack: StackState) -> None:
    assert read_urls(embedded_stack.data_dir) == embedded_stack.urls()
    assert EmbeddedStack(embedded_stack.data_dir).status() == embedded_stack
    assert embedded_stack.is_alive()
    settings = Settings.from_env(environ={}, data_dir=embedded_stack.data_dir)
    assert settings.kafka_bootstrap == embedded_stack.kafka_bootstrap
    assert settings.redis_url == embedded_stack.redis_url
    assert settings.clickhouse_dsn == embedded_stack.clickhouse_dsn


def test_up_twice_is_idempotent(embedded_stack: StackState) -> None:
    again = EmbeddedStack(embedded_stack.data_dir).up()
    assert again == embedded_stack
    assert again.pids == embedded_stack.pids


def test_settings_factory_isolates_tests(
    settings_factory, embedded_stack: StackState, tmp_path: Path
) -> None:
    first, second = settings_factory(), settings_factory(partitions=4)
    assert first.kafka_bootstrap == embedded_stack.kafka_bootstrap
    assert first.data_dir == tmp_path / "typostream"
    assert second.partitions == 4
    assert first.topic_input.startswith("registry.publish-")
    assert first.topic_input == second.topic_input  # same test, same names


def test_up_down_lifecycle_leaves_nothing(tmp_path: Path) -> None:
    stack = EmbeddedStack(tmp_path, die_with_parent=True)
    state = stack.up()
    pids = list(state.pids.values())
    assert (tmp_path / "stack.json").is_file()
    assert StackState.load(tmp_path) == state
    assert all(pid_exists(pid) for pid in pids)

    stack.down()
    assert _wait_gone(pids) == []
    assert not (tmp_path / "stack.json").exists()
    assert _processes_mentioning(f"127.0.0.1:{state.kafka_port}") == []
    assert _processes_mentioning(f"127.0.0.1:{state.redis_port}") == []
    assert stack.status() is None
    assert read_urls(tmp_path) == {}
    stack.down()  # safe when nothing runs


def test_context_manager_stops_what_it_started(tmp_path: Path) -> None:
    with EmbeddedStack(tmp_path, die_with_parent=True) as state:
        assert read_urls(tmp_path) == state.urls()
    assert _wait_gone(list(state.pids.values())) == []
    assert read_urls(tmp_path) == {}


def test_half_dead_stack_is_not_running_and_up_replaces_it(tmp_path: Path) -> None:
    stack = EmbeddedStack(tmp_path, die_with_parent=True)
    first = stack.up()
    try:
        os.kill(first.pids["redis"], signal.SIGKILL)
        assert _wait_gone([first.pids["redis"]]) == []
        assert stack.status() is None
        assert read_urls(tmp_path) == {}
        second = stack.up()
        assert second.is_alive()
        assert _wait_gone([first.pids["kafka"]]) == []  # the leftover broker was stopped
    finally:
        stack.down()


def test_port_race_retries_on_another_port(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = busy.getsockname()[1]
        ports = iter([taken])
        real = manager_mod.free_port
        monkeypatch.setattr(manager_mod, "free_port", lambda: next(ports, None) or real())
        stack = EmbeddedStack(tmp_path, die_with_parent=True)
        try:
            state = stack.up()
            assert state.kafka_port != taken
            assert state.is_alive()
        finally:
            stack.down()


def test_missing_redis_server_says_how_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    with pytest.raises(BinaryNotFoundError, match="apt-get install redis-server"):
        EmbeddedStack(tmp_path).up()
    assert not (tmp_path / "stack.json").exists()


def test_recycled_pid_is_not_trusted() -> None:
    assert not pid_matches(os.getpid(), "tansu")
    assert not pid_matches(os.getpid(), "redis-server")
    assert not pid_matches(2**22 + 1, "tansu")


def test_cli_up_status_down(tmp_path: Path) -> None:
    data_dir = tmp_path / "cli"
    run = lambda *args: subprocess.run(  # noqa: E731
        [str(TYPOSTREAM), "stack", *args, "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    up = run("up")
    assert up.returncode == 0, up.stderr
    exports = dict(
        line.removeprefix("export ").split("=", 1)
        for line in up.stdout.splitlines()
        if line.startswith("export ")
    )
    state = StackState.load(data_dir)
    assert state is not None
    try:
        assert exports["TYPOSTREAM_KAFKA_BOOTSTRAP"] == state.kafka_bootstrap
        assert exports["TYPOSTREAM_REDIS_URL"] == state.redis_url
        assert "kafka" in up.stderr and state.kafka_bootstrap in up.stderr  # the rich table

        status = run("status")
        assert status.returncode == 0, status.stderr
        assert run("up").stdout == up.stdout  # idempotent
    finally:
        down = run("down")
    assert down.returncode == 0, down.stderr
    assert _wait_gone(list(state.pids.values())) == []
    assert not (data_dir / "stack.json").exists()
    assert run("status").returncode == 1


CHILD = """
import json, sys, time
from pathlib import Path
from typostream.streams.stack import EmbeddedStack
state = EmbeddedStack(Path(sys.argv[1]), die_with_parent=True).up()
print(json.dumps(state.pids), flush=True)
time.sleep(60)
"""


def test_servers_die_when_their_parent_is_sigkilled(tmp_path: Path) -> None:
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        pids = json.loads(child.stdout.readline())
        assert all(pid_exists(pid) for pid in pids.values())
    finally:
        child.kill()
        child.wait()
    assert _wait_gone(list(pids.values())) == []
    assert read_urls(tmp_path) == {}


# --- broker storage: memory vs durable (Tansu on the local S3-compatible object store) -------------


def test_this_tansu_build_has_memory_and_s3_storage_only(tmp_path: Path) -> None:
    """Why the durable stack uses s3:// on objectstore: postgres:// and sqlite:// are not compiled in."""
    from typostream.streams.stack import tansu

    for url, feature in [("postgres://u:p@127.0.0.1:1/x", "postgres"), ("sqlite:///tmp/x.db", "libsql")]:
        port = manager_mod.free_port()
        argv = tansu.command(port, storage=url)
        out = subprocess.run(argv, capture_output=True, text=True, timeout=30, env=tansu.environment())
        assert f'FeatureNotEnabled {{ feature: "{feature}"' in out.stdout + out.stderr


def _http(
    method: str, url: str, body: bytes | None = None, **headers: str
) -> tuple[int, dict[str, str], bytes]:
    import urllib.error
    import urllib.request

    request = urllib.request.Request(url, data=body, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


@pytest.fixture(scope="module")
def durable_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedStack]:
    stack = EmbeddedStack(tmp_path_factory.mktemp("durable"), die_with_parent=True, durable=True)
    stack.up()
    yield stack
    stack.down()


def test_object_store_compare_and_swap_conditional_get_list_and_delete(durable_stack: EmbeddedStack) -> None:
    state = durable_stack.status()
    assert state is not None and state.durable and state.is_alive()
    base = f"{state.objects_url}/test-{uuid.uuid4().hex[:6]}"
    status, headers, _ = _http("PUT", f"{base}/a/x.json", b"one", **{"If-None-Match": "*"})
    etag = headers["ETag"]
    assert status == 200 and etag.startswith('"')
    assert _http("PUT", f"{base}/a/x.json", b"two", **{"If-None-Match": "*"})[0] == 412  # exists
    assert _http("PUT", f"{base}/a/x.json", b"two", **{"If-Match": '"stale"'})[0] == 412  # lost the race
    status, headers, _ = _http("PUT", f"{base}/a/x.json", b"two", **{"If-Match": etag})
    assert status == 200 and headers["ETag"] != etag
    assert _http("GET", f"{base}/a/x.json", **{"If-None-Match": headers["ETag"]})[0] == 304
    status, got, body = _http("GET", f"{base}/a/x.json")
    assert (status, body) == (200, b"two") and "Last-Modified" in got
    assert _http("GET", f"{base}/a/x.json", Range="bytes=1-")[2] == b"wo"
    assert _http("GET", f"{base}/a/missing")[0] == 404
    _http("PUT", f"{base}/a/x.json/under", b"both a key and a prefix")
    _http("PUT", f"{base}/b", b"3")
    listing = _http("GET", f"{base}?list-type=2&prefix=a/")[2].decode()
    assert (
        "<Key>a/x.json</Key>" in listing
        and "<Key>a/x.json/under</Key>" in listing
        and "<Key>b</Key>" not in listing
    )
    top = _http("GET", f"{base}?list-type=2&delimiter=/")[2].decode()
    assert "<Prefix>a/</Prefix>" in top and "<Key>b</Key>" in top
    page = _http("GET", f"{base}?list-type=2&max-keys=1")[2].decode()
    assert (
        "<IsTruncated>true</IsTruncated>" in page
        and "<NextContinuationToken>a/x.json</NextContinuationToken>" in page
    )
    assert _http("DELETE", f"{base}/a/x.json")[0] == 204
    delete = b"<Delete><Object><Key>a/x.json/under</Key></Object><Object><Key>b</Key></Object></Delete>"
    assert "<Deleted><Key>b</Key></Deleted>" in _http("POST", f"{base}?delete", delete)[2].decode()
    assert "<Key>" not in _http("GET", f"{base}?list-type=2")[2].decode()
    assert _http("PUT", f"{base}/../escape", b"x")[0] in (400, 404)


async def _produce_and_commit(bootstrap: str, topic: str, n: int, group: str, offset: int) -> None:
    from aiokafka.structs import OffsetAndMetadata

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])
    finally:
        await admin.close()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
    await producer.start()
    try:
        for future in [await producer.send(topic, b"v%d" % i, partition=0) for i in range(n)]:
            await future
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign([TopicPartition(topic, 0)])
        await consumer.commit({TopicPartition(topic, 0): OffsetAndMetadata(offset, "")})
    finally:
        await consumer.stop()


async def _read_back(bootstrap: str, topic: str, group: str) -> tuple[list[str], int | None, list[bytes]]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        topics = await admin.list_topics()
    finally:
        await admin.close()
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    await consumer.start()
    values: list[bytes] = []
    try:
        tp = TopicPartition(topic, 0)
        committed = await consumer.committed(tp) if topic in topics else None
        if topic in topics:
            consumer.assign([tp])
            await consumer.seek_to_beginning(tp)
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                batch = await consumer.getmany(tp, timeout_ms=300)
                values.extend(m.value for m in batch.get(tp, []) if m.value is not None)
                if batch:
                    deadline = time.monotonic() + 1
    finally:
        await consumer.stop()
    return topics, committed, values


def test_durable_broker_keeps_records_and_offsets_across_restart_and_down_up(
    durable_stack: EmbeddedStack,
) -> None:
    state = durable_stack.status()
    assert state is not None
    topic, group = f"durable-{uuid.uuid4().hex[:6]}", f"g-{uuid.uuid4().hex[:6]}"
    asyncio.run(_produce_and_commit(state.kafka_bootstrap, topic, 1000, group, 640))
    restarted = durable_stack.restart_broker()
    assert (
        restarted.kafka_bootstrap == state.kafka_bootstrap and restarted.pids["kafka"] != state.pids["kafka"]
    )
    topics, committed, values = asyncio.run(_read_back(restarted.kafka_bootstrap, topic, group))
    assert topic in topics and committed == 640 and values == [b"v%d" % i for i in range(1000)]

    durable_stack.down()
    again = EmbeddedStack(durable_stack.data_dir, die_with_parent=True, durable=True).up()
    durable_stack._procs.clear()  # the new manager owns the servers now; down() finds them by pid
    _topics, committed, values = asyncio.run(_read_back(again.kafka_bootstrap, topic, group))
    assert committed == 640 and len(values) == 1000


def test_memory_broker_restart_keeps_the_topic_layout_but_not_records(tmp_path: Path) -> None:
    with EmbeddedStack(tmp_path, die_with_parent=True) as state:
        topic, group = f"mem-{uuid.uuid4().hex[:6]}", "g"
        asyncio.run(_produce_and_commit(state.kafka_bootstrap, topic, 100, group, 50))
        stack = EmbeddedStack(tmp_path, die_with_parent=True)
        restarted = stack.restart_broker()
        try:
            topics, committed, values = asyncio.run(_read_back(restarted.kafka_bootstrap, topic, group))
            assert topic in topics and committed is None and values == []
        finally:
            stack._stop_own()


def test_cli_up_durable_says_where_broker_data_lives(tmp_path: Path) -> None:
    data_dir = tmp_path / "cli-durable"
    run = lambda *args: subprocess.run(  # noqa: E731
        [str(TYPOSTREAM), "stack", *args, "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    up = run("up", "--durable")
    try:
        assert up.returncode == 0, up.stderr
        assert f"broker storage: durable, kept in {data_dir / 'broker'}" in up.stderr
        state = StackState.load(data_dir)
        assert state is not None and state.durable and set(state.pids) == {"kafka", "redis", "objects"}
        assert "kafka storage" in run("status").stderr
    finally:
        assert run("down").returncode == 0
    assert _wait_gone(list(state.pids.values())) == []
    assert (data_dir / "broker").is_dir()  # kept for the next `stack up --durable`
