"""Pipeline benchmark: worker throughput end to end into ClickHouse, publish → threat latency, worker RSS.

Everything runs on the embedded stack (Tansu, chDB) brought up for the run, and every figure is
measured in the same run as the baselines it is compared with:

* **raw same-work baseline**: one asyncio process with aiokafka and no Faust doing the worker's
  work per event: validate, detect, build and produce the analysed record (keyed, with the threat
  header) and the threats, fold the package state into RocksDB (rocksdict, one write per package
  per batch) and produce its changelog record, insert events and threats into chDB through the same
  :class:`ClickHouseSink` in batches, committing offsets after each batch is delivered.
* **raw pass-through**: the previous baseline (validate + detect + produce only), for continuity.
* **worker**: ``typostream worker`` (``--processes N`` for each N of ``--processes``) consuming the
  same events; the clock runs from the first publish to the last event row in ClickHouse (the
  store's ``typostream_sink_rows_total{table="events",sink="clickhouse"}``, polled every 0.25 s,
  then confirmed by a ``count() FINAL``), after a warm-up batch has gone through every process.
* **latency**: on a warmed-up worker of its own (fresh topics; the throughput run gets another
  one), a paced producer publishes squats (every publish yields a threat: twice the records of a
  normal mix) at each offered rate; each threat is timed from its publish to its arrival on
  ``typostream.threats`` by a consumer polling with a 5 ms fetch wait. The same rates in the same
  order are first timed against a **raw echo**: aiokafka consuming the input, validate + detect,
  producing the threats (no Faust, no agents) on topics of its own. It is the floor the embedded
  broker sets: Tansu answers a fetch more slowly the more record batches a partition holds (a
  paced publisher makes one batch per publish), so every figure worsens along a run, the raw
  echo's too.
* **RSS and CPU**: the peak resident memory of each worker process during the run, and the CPU
  time each spent per event during the throughput run (/proc).

    .venv/bin/python benchmarks/pipeline.py                          # 200k events, all parts
    .venv/bin/python benchmarks/pipeline.py --events 50000 --processes 2 --skip-latency
    .venv/bin/python benchmarks/pipeline.py --only latency --rates 100,1000
    .venv/bin/python benchmarks/pipeline.py --smoke                  # seconds: CI checks it runs

Results are printed as markdown tables and written to ``benchmarks/results/pipeline.md``
(``--output``; ``--smoke`` writes nothing unless asked).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import socket
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.partitioner import murmur2
from aiokafka.structs import OffsetAndMetadata

from typostream.agents.adapters.clickhouse import ClickHouseConnection
from typostream.agents.adapters.sinks.clickhouse import ClickHouseSink
from typostream.agents.domain.assess import Assessor
from typostream.agents.domain.errors import InvalidEventError
from typostream.agents.domain.events import parse_publish
from typostream.agents.domain.messages import (
    analysed_message,
    event_message,
    threat_event,
    update_package_state,
    utc_now_iso,
    with_last_threat,
)
from typostream.agents.stream.detect import LAST_THREAT_HEADER
from typostream.streams import components
from typostream.streams.config import Settings
from typostream.streams.demo import sample_feed_path
from typostream.streams.producer import produce_lines, read_lines
from typostream.streams.stack import EmbeddedStack
from typostream.streams.topics import ensure_topics
from typostream.streams.worker_process import WorkerProcess

RESULTS = Path(__file__).resolve().parent / "results" / "pipeline.md"
PROBE_FETCH_WAIT_MS = 5
RAW_ECHO_LABEL = "raw echo baseline (aiokafka consume → detect → produce threats, 1 process)"
PARTS = ("raw", "throughput", "latency")


# -- events ------------------------------------------------------------------------------------


def _valid(line: bytes) -> bool:
    try:
        parse_publish(line, 1 << 16)
    except InvalidEventError:
        return False
    return True


def make_events(n: int, tag: str = "") -> list[bytes]:
    """The sample feed's valid publishes with distinct versions: every event is a new one."""
    base = [orjson.loads(line) for line in read_lines(sample_feed_path()) if _valid(line)]
    out = []
    for i in range(n):
        doc = dict(base[i % len(base)])
        doc["version"] = f"{doc['version']}.{tag}{i // len(base)}"
        out.append(orjson.dumps(doc))
    return out


SQUATS = (("reqeusts", "pypi"), ("expresss", "npm"), ("lodahs", "npm"), ("djnago", "pypi"))


def squat(i: int, run: str) -> tuple[bytes, str]:
    """A publish the detector flags, with a version unique to this probe: (message, version)."""
    name, registry = SQUATS[i % len(SQUATS)]
    version = f"9.{run}.{i}"
    doc = {"name": name, "version": version, "created_date": utc_now_iso(), "type": registry}
    return orjson.dumps(doc), version


# -- the raw baselines -------------------------------------------------------------------------


@dataclass
class RawResult:
    name: str
    events: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.events / self.seconds


@contextlib.asynccontextmanager
async def kafka_clients(
    settings: Settings, *topics: str, linger_ms: int = 2, **consumer_options: Any
) -> AsyncIterator[tuple[AIOKafkaConsumer, AIOKafkaProducer]]:
    """A started consumer (subscribed to ``topics``, if any) and producer, stopped on the way out."""
    consumer = AIOKafkaConsumer(*topics, bootstrap_servers=settings.kafka_bootstrap, **consumer_options)
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, linger_ms=linger_ms)
    await consumer.start()
    await producer.start()
    try:
        yield consumer, producer
    finally:
        await consumer.stop()
        await producer.stop()


async def assign_input(consumer: AIOKafkaConsumer, settings: Settings, *, from_start: bool) -> None:
    """Read every input partition from its first record, or from its end."""
    tps = [TopicPartition(settings.topic_input, p) for p in range(settings.partitions)]
    consumer.assign(tps)
    await (consumer.seek_to_beginning(*tps) if from_start else consumer.seek_to_end(*tps))


def detect_record(
    record: Any, settings: Settings, assessor: Assessor, now: str
) -> tuple[bytes, dict[str, Any], list[bytes]] | None:
    """Validate + detect one consumed record: its key, event message and serialised threat events
    (None if it is invalid)."""
    try:
        event = parse_publish(record.value, settings.max_event_bytes)
    except InvalidEventError:
        return None
    value = event_message(event, record.partition, record.offset, now)
    threats = assessor.assess(event.name, event.registry, event.version).threats
    return event.key.encode(), value, [orjson.dumps(threat_event(value, threat, now)) for threat in threats]


async def raw_passthrough(settings: Settings, assessor: Assessor, n: int) -> float:
    """The previous baseline: consume, validate + detect, produce results; returns seconds."""
    async with kafka_clients(settings, enable_auto_commit=False) as (consumer, producer):
        await assign_input(consumer, settings, from_start=True)
        done, started = 0, time.perf_counter()
        while done < n:
            batch = await consumer.getmany(timeout_ms=500, max_records=2000)
            now = utc_now_iso()
            for records in batch.values():
                for record in records:
                    done += 1
                    detected = detect_record(record, settings, assessor, now)
                    if detected is None:
                        continue
                    key, value, threats = detected
                    for threat in threats:
                        await producer.send(settings.topic_threats, threat)
                    await producer.send(settings.topic_events, orjson.dumps(value), key=key)
        await producer.flush()
        return time.perf_counter() - started


async def raw_same_work(settings: Settings, assessor: Assessor, n: int, root: Path) -> float:
    """The worker's work without Faust, in one process (see the module docstring); returns seconds."""
    import rocksdict

    connection = ClickHouseConnection.open(f"chdb://{root / 'raw-clickhouse'}", root / "raw-clickhouse")
    sink = ClickHouseSink(connection, batch_size=settings.sink_batch_size)
    sink.ensure_schema()
    dbs = [rocksdict.Rdict(str(root / f"raw-table-{p}")) for p in range(settings.partitions)]
    changelog = f"{settings.app_id}-packages-changelog"
    dumps = orjson.dumps
    clients = kafka_clients(settings, group_id="raw-same-work", enable_auto_commit=False)
    try:
        async with clients as (consumer, producer):
            await assign_input(consumer, settings, from_start=True)
            done, started = 0, time.perf_counter()
            while done < n:
                batch = await consumer.getmany(timeout_ms=500, max_records=settings.sink_batch_size)
                now = utc_now_iso()
                pending: list[Any] = []
                rows: list[dict[str, Any]] = []
                threat_rows: list[dict[str, Any]] = []
                states: dict[str, tuple[int, dict[str, Any]]] = {}
                offsets: dict[TopicPartition, OffsetAndMetadata] = {}
                for tp, records in batch.items():
                    for record in records:
                        done += 1
                        try:
                            event = parse_publish(record.value, settings.max_event_bytes)
                        except InvalidEventError:
                            continue
                        value = event_message(event, record.partition, record.offset, now)
                        result = assessor.assess(event.name, event.registry, event.version)
                        threats = [threat_event(value, t, now) for t in result.threats]
                        analysed = analysed_message(value, result.verdict, result.threats)
                        key = event.key.encode()
                        headers = None
                        for threat in threats:
                            pending.append(
                                await producer.send(settings.topic_threats, dumps(threat), key=key)
                            )
                        if threats:
                            last = with_last_threat({}, max(threats, key=lambda t: t["threat"]["risk_score"]))
                            headers = [(LAST_THREAT_HEADER, dumps(last["last_threat"]))]
                        pending.append(
                            await producer.send(
                                settings.topic_analysed, dumps(analysed), key=key, headers=headers
                            )
                        )
                        partition = (murmur2(key) & 0x7FFFFFFF) % settings.partitions  # the keyed partition
                        previous = states[event.key][1] if event.key in states else None
                        if previous is None:
                            stored = dbs[partition].get(key)
                            previous = orjson.loads(stored) if stored is not None else None
                        state = update_package_state(previous, analysed)
                        if headers:
                            state["last_threat"] = last["last_threat"]
                        states[event.key] = (partition, state)
                        rows.append(analysed)
                        threat_rows.extend(threats)
                    if records:
                        offsets[tp] = OffsetAndMetadata(records[-1].offset + 1, "")
                for key_text, (partition, state) in states.items():
                    encoded = dumps(state)
                    pending.append(
                        await producer.send(changelog, encoded, key=dumps(key_text), partition=partition)
                    )
                    dbs[partition][key_text.encode()] = encoded
                for delivery in pending:
                    await delivery
                await sink.write("events", rows)
                await sink.write("threats", threat_rows)
                if offsets:
                    await consumer.commit(offsets)
            return time.perf_counter() - started
    finally:
        for db in dbs:
            db.close()
        connection.close()


async def raw_echo(settings: Settings, assessor: Assessor, stop: asyncio.Event, ready: asyncio.Event) -> None:
    """The latency baseline: the detect path without Faust or typostream's agents, in one process.

    An aiokafka consumer on the input (the worker's fetch wait), validate + detect each message and
    produce its threats (linger 0), the deliveries of each fetched batch awaited before the next,
    as the detect agent does; runs until ``stop``.
    """
    clients = kafka_clients(
        settings, linger_ms=0, enable_auto_commit=False, fetch_max_wait_ms=settings.fetch_max_wait_ms
    )
    async with clients as (consumer, producer):
        await assign_input(consumer, settings, from_start=False)
        ready.set()
        while not stop.is_set():
            batch = await consumer.getmany(timeout_ms=100)
            now = utc_now_iso()
            pending = []
            for records in batch.values():
                for record in records:
                    detected = detect_record(record, settings, assessor, now)
                    for threat in detected[2] if detected is not None else ():
                        pending.append(await producer.send(settings.topic_threats, threat))
            for delivery in pending:
                await delivery


async def raw_latency(
    settings: Settings, assessor: Assessor, rates: Sequence[int], durations: dict[int, float]
) -> dict[int, Latency]:
    """:func:`latency_at` each rate, in the worker runs' order, against :func:`raw_echo` on its own
    topics: what the embedded broker and the detection itself cost publish → threat."""
    stop, ready = asyncio.Event(), asyncio.Event()
    echo = asyncio.create_task(raw_echo(settings, assessor, stop, ready))
    try:
        await asyncio.wait_for(ready.wait(), 60)
        return {rate: await latency_at(settings, rate, durations[rate]) for rate in rates}
    finally:
        stop.set()
        await echo


# -- the worker --------------------------------------------------------------------------------


def free_ports(count: int) -> int:
    """A base port with ``count`` consecutive free ports after it (a worker of N processes uses N+1)."""
    for _ in range(200):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            base = int(sock.getsockname()[1])
        if base + count >= 65535:
            continue
        ok = True
        for port in range(base + 1, base + count):
            with socket.socket() as probe:
                try:
                    probe.bind(("127.0.0.1", port))
                except OSError:
                    ok = False
                    break
        if ok:
            return base
    raise RuntimeError("no run of free ports")


def process_tree(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        current = todo.pop()
        out.append(current)
        try:
            for task in os.listdir(f"/proc/{current}/task"):
                with open(f"/proc/{current}/task/{task}/children") as f:
                    todo.extend(int(c) for c in f.read().split())
        except OSError:
            continue
    return out


def rss_mb(pid: int) -> float:
    return rss_parts(pid)[0]


def rss_parts(pid: int) -> tuple[float, float]:
    """(resident MB, of which file-backed MB: mapped libraries such as chDB's engine, clean pages
    the kernel can drop and re-read) of ``pid``, from /proc."""
    found = proc_status_mb(pid, "VmRSS", "RssFile")
    return found.get("VmRSS", 0.0), found.get("RssFile", 0.0)


def proc_status_mb(pid: int, *fields: str) -> dict[str, float]:
    """The memory ``fields`` of ``/proc/<pid>/status`` (kB there) in MiB; those missing left out."""
    found: dict[str, float] = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                name = line.split(":", 1)[0]
                if name in fields:
                    found[name] = int(line.split()[1]) / 1024
    except OSError:
        pass
    return found


def cmd_role(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            argv = f.read().split(b"\0")
    except OSError:
        return "?"
    if b"--role" in argv:
        i = argv.index(b"--role")
        role = argv[i + 1].decode()
        return f"{role}-{argv[i + 3].decode()}" if role == "detect" else role
    return "worker"


@dataclass
class Memory:
    """Peak RSS per process of a worker (supervisor, store, detect-i), sampled in a thread."""

    pid: int
    peaks: dict[str, float] = field(default_factory=dict)
    files: dict[str, float] = field(default_factory=dict)  # file-backed MB at each peak
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> Memory:
        def sample() -> None:
            while not self._stop.is_set():
                for pid in process_tree(self.pid):
                    role = cmd_role(pid)
                    rss, file_backed = rss_parts(pid)
                    if rss > self.peaks.get(role, 0.0):
                        self.peaks[role], self.files[role] = rss, file_backed
                self._stop.wait(0.25)

        self._thread = threading.Thread(target=sample, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> dict[str, float]:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        return dict(self.peaks)


def clickhouse_events(worker: WorkerProcess) -> int:
    """Event rows in ClickHouse (``count() FINAL`` in the store process: poll it rarely)."""
    stats = worker.stats() or {}
    return int(stats.get("clickhouse_events") or 0)


def sink_rows(port: int) -> float | None:
    """``typostream_sink_rows_total{table="events",sink="clickhouse"}`` of the process on ``port``
    (None: no answer): rows the sink has written, a counter read from memory, cheap to poll."""
    import urllib.request

    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2.0) as response:
            text = response.read().decode()
    except OSError:
        return None
    return events_rows(text)


def events_rows(exposition: str) -> float:
    """The ClickHouse sink's event rows in a Prometheus text exposition (0 if not there yet)."""
    from prometheus_client.parser import text_string_to_metric_families

    for family in text_string_to_metric_families(exposition):
        if family.name == "typostream_sink_rows":
            for sample in family.samples:
                if sample.name.endswith("_total") and sample.labels == {
                    "table": "events",
                    "sink": "clickhouse",
                }:
                    return float(sample.value)
    return 0.0


def wait_for_rows(worker: WorkerProcess, expected: int, timeout_s: float, what: str) -> float:
    """Until ``expected`` event rows are in ClickHouse; returns the ``time.monotonic()`` they were.

    The sink's row counter is polled every 0.25 s, then ``count() FINAL`` confirms it (if it does
    not yet, because a retried write counted some rows twice, the time is when it does). Polling
    ``count() FINAL`` itself (two queries a poll over a table of up to 250k rows) cost the store
    process CPU the pipeline needs; at 0.1 s, rendering ``/metrics`` took 4 % of the store's busy
    CPU (py-spy), at 0.25 s the end time is still known to ~1 % of a 20 s run."""
    port = worker.settings.web_port
    wait_for(worker, lambda: (sink_rows(port) or 0.0) >= expected, timeout_s, what, poll_s=0.25)
    reached = time.monotonic()
    if clickhouse_events(worker) >= expected:
        return reached
    wait_for(worker, lambda: clickhouse_events(worker) >= expected, 60, f"{what} (count FINAL)")
    return time.monotonic()


def wait_for(
    worker: WorkerProcess, done: Callable[[], bool], timeout_s: float, what: str, poll_s: float = 0.25
) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not worker.alive():
            raise RuntimeError(f"worker died (code {worker.returncode}); see {worker.log_path}")
        if done():
            return
        time.sleep(poll_s)
    raise TimeoutError(f"{what} not done after {timeout_s:.0f}s; see {worker.log_path}")


def cpu_seconds(pid: int) -> dict[str, float]:
    """CPU time (user + system) so far of every process of the worker, by role."""
    ticks = os.sysconf("SC_CLK_TCK")
    out: dict[str, float] = {}
    for child in process_tree(pid):
        try:
            fields = Path(f"/proc/{child}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        out[cmd_role(child)] = (int(fields[11]) + int(fields[12])) / ticks
    return out


def metrics_ready(port: int, timeout_s: float = 2.0) -> float | None:
    """typostream_events_validated_total of the process on ``port`` (None: not serving yet)."""
    import urllib.request

    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=timeout_s) as response:
            text = response.read().decode()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("typostream_events_validated_total "):
            return float(line.split()[1])
    return 0.0


def worker_label(processes: int) -> str:
    if processes == 1:
        return "typostream worker (1 process)"
    return f"typostream worker --processes {processes} (+1 store process)"


@dataclass
class WorkerRun:
    processes: int
    events: int
    seconds: float
    memory: dict[str, float]
    latency: dict[int, Latency] = field(default_factory=dict)
    cpu: dict[str, float] = field(default_factory=dict)
    memory_files: dict[str, float] = field(default_factory=dict)  # file-backed MB at the peak

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0

    @property
    def label(self) -> str:
        return worker_label(self.processes)


def run_worker(
    base: Settings,
    root: Path,
    processes: int,
    events: list[bytes],
    rates: Sequence[int],
    durations: dict[int, float],
) -> WorkerRun:
    """Latency (``rates``) and throughput (``events``) of ``typostream worker --processes N``.

    Each on a worker of its own with fresh topics: the embedded broker answers fetches more slowly
    the more record batches a partition holds, and a paced publisher makes one batch per publish,
    so a throughput run after the latency runs measured the broker's slowdown as much as the worker.
    Peak RSS is over both workers; CPU per event is the throughput run's.
    """
    latency: dict[int, Latency] = {}
    memory: dict[str, float] = {}
    files: dict[str, float] = {}
    seconds, cpu = 0.0, {}
    if rates:
        with started_worker(base, root, processes) as (worker, settings, sampler, done):
            latency = {rate: asyncio.run(latency_at(settings, rate, durations[rate])) for rate in rates}
            total = done + sum(lat.offered for lat in latency.values())
            wait_for_rows(worker, total, 600, "the latency runs' backlog")
            memory, files = sampler.stop(), dict(sampler.files)
    if events:
        with started_worker(base, root, processes) as (worker, settings, sampler, done):
            pid = worker.process.pid if worker.process else 0
            cpu_before = cpu_seconds(pid)
            started = time.monotonic()
            asyncio.run(produce_lines(settings, events, settings.topic_input))
            seconds = wait_for_rows(worker, done + len(events), 1800, "the run") - started
            cpu = {role: t - cpu_before.get(role, 0.0) for role, t in cpu_seconds(pid).items()}
            for role, mb in sampler.stop().items():
                if mb > memory.get(role, 0.0):
                    memory[role], files[role] = mb, sampler.files.get(role, 0.0)
    return WorkerRun(processes, len(events), seconds, memory, latency=latency, cpu=cpu, memory_files=files)


@contextlib.contextmanager
def started_worker(
    base: Settings, root: Path, processes: int
) -> Iterator[tuple[WorkerProcess, Settings, Memory, int]]:
    """A worker on topics and a chDB of its own, warmed up: (worker, its settings, its RSS sampler,
    the event rows written so far). Stopped on exit."""
    run_id = uuid.uuid4().hex[:6]
    port = free_ports(processes + 1)
    settings = base.replace(
        data_dir=root / f"worker-{processes}-{run_id}",
        clickhouse_dsn=f"chdb://{root / f'clickhouse-{processes}-{run_id}'}",
        app_id=f"bench-{processes}-{run_id}",
        web_port=port,
        worker_processes=processes,
        **{f"topic_{t}": f"bench-{run_id}.{t}" for t in ("input", "events", "analysed", "threats", "dlq")},
    )
    asyncio.run(ensure_topics(settings))
    worker = WorkerProcess(settings, log_path=settings.data_dir / "worker.log").start()
    try:
        worker.wait_ready(timeout_s=120)
        memory = Memory(worker.process.pid if worker.process else 0).start()
        # Warm-up: the group joined and every process holds partitions before the clock starts.
        warm = make_events(200, tag="w")
        asyncio.run(produce_lines(settings, warm, settings.topic_input))
        wait_for(worker, lambda: clickhouse_events(worker) >= len(warm), 180, "warm-up")
        if processes > 1:
            wait_for(
                worker,
                lambda: all(
                    (metrics_ready(port + i) or 0) > 0 for i in range(1, min(processes, base.partitions) + 1)
                ),
                60,
                "every detect process consuming",
            )
        yield worker, settings, memory, len(warm)
        memory.stop()
    finally:
        worker.stop()


# -- latency -----------------------------------------------------------------------------------


@dataclass
class Latency:
    rate: int
    offered: int
    achieved_rate: float
    ms: list[float]

    def pct(self, q: float) -> float:
        if not self.ms:
            return float("nan")
        ordered = sorted(self.ms)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def latency_at(settings: Settings, rate: int, duration_s: float) -> Latency:
    """Publish squats at ``rate``/s for ``duration_s``; time each to its threat on the threats topic."""
    run = uuid.uuid4().hex[:6]
    # A 5 ms fetch wait: the embedded broker answers a fetch that finds nothing only when the wait
    # is over, so this bounds what polling adds; at 2 ms the probe's own fetches (500 a second on
    # a partition of ever more batches) slowed the broker for everything it measured.
    sent: dict[str, float] = {}
    latencies: list[float] = []
    clients = kafka_clients(
        settings, settings.topic_threats, linger_ms=0, fetch_max_wait_ms=PROBE_FETCH_WAIT_MS
    )
    async with clients as (consumer, producer):
        await consumer.seek_to_end()

        async def receive() -> None:
            while True:
                batch = await consumer.getmany(timeout_ms=100)
                now = time.perf_counter()
                for records in batch.values():
                    for record in records:
                        version = orjson.loads(record.value)["package"]["version"]
                        at = sent.pop(version, None)
                        if at is not None:
                            latencies.append(1000 * (now - at))

        receiver = asyncio.create_task(receive())
        total = int(rate * duration_s)
        started = time.perf_counter()
        pending = []
        for i in range(total):
            due = started + i / rate
            delay = due - time.perf_counter()
            if delay > 0.0005:
                await asyncio.sleep(delay)
            message, version = squat(i, run)
            sent[version] = time.perf_counter()
            pending.append(await producer.send(settings.topic_input, message))
        achieved = total / (time.perf_counter() - started)
        for delivery in pending:
            await delivery
        deadline = time.perf_counter() + 15
        while sent and time.perf_counter() < deadline:
            await asyncio.sleep(0.05)
        receiver.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await receiver
        return Latency(rate, total, achieved, latencies)


# -- report ------------------------------------------------------------------------------------


def markdown(rows: list[list[str]], header: list[str]) -> list[str]:
    right = [i > 0 for i in range(len(header))]
    lines = ["| " + " | ".join(header) + " |"]
    lines.append("|" + "|".join("---:" if r else "---" for r in right) + "|")
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def report(
    args: argparse.Namespace,
    raws: list[RawResult],
    runs: list[WorkerRun],
    load: tuple[str, str],
    raw_latencies: dict[int, Latency] | None = None,
) -> list[str]:
    out = [
        f"# Pipeline benchmark ({datetime.now(UTC):%Y-%m-%d %H:%M} UTC)",
        "",
        f"`{' '.join(['benchmarks/pipeline.py', *sys.argv[1:]])}` on a {os.cpu_count()}-core machine;"
        f" {args.partitions} partitions; load average before / after: {load[0]} / {load[1]}.",
        "",
    ]
    same = next((r for r in raws if r.name.startswith("raw same-work")), None)
    through = next((r for r in raws if r.name.startswith("raw pass-through")), None)
    if raws or any(r.events for r in runs):
        rows = []
        for raw in raws:
            ratio = f"{raw.rate / same.rate:.0%}" if same else "-"
            rows.append([raw.name, f"{raw.events:,}", f"{raw.seconds:.2f}", f"{raw.rate:,.0f}", ratio, "-"])
        for run in (r for r in runs if r.events):
            ratio = f"{run.rate / same.rate:.0%}" if same else "-"
            old = f"{run.rate / through.rate:.0%}" if through else "-"
            rows.append([run.label, f"{run.events:,}", f"{run.seconds:.2f}", f"{run.rate:,.0f}", ratio, old])
        out += ["## Throughput, end to end into ClickHouse", ""]
        out += markdown(
            rows, ["pipeline", "events", "seconds", "events/s", "vs raw same-work", "vs raw pass-through"]
        )
        out.append("")
    measured = [(RAW_ECHO_LABEL, lat) for lat in (raw_latencies or {}).values()]
    measured += [(run.label, lat) for run in runs for lat in run.latency.values()]
    latency_rows = [
        [
            label,
            f"{lat.rate:,}",
            f"{lat.achieved_rate:,.0f}",
            f"{len(lat.ms):,}/{lat.offered:,}",
            f"{lat.pct(0.50):.1f}",
            f"{lat.pct(0.95):.1f}",
            f"{lat.pct(0.99):.1f}",
            f"{max(lat.ms) if lat.ms else float('nan'):.1f}",
        ]
        for label, lat in measured
    ]
    if latency_rows:
        out += ["## Publish → threat on `typostream.threats` (every publish a squat)", ""]
        out += markdown(
            latency_rows,
            ["worker", "offered/s", "achieved/s", "threats timed", "p50 ms", "p95 ms", "p99 ms", "max ms"],
        )
        out.append("")
        if raw_latencies:
            out += [
                "The raw echo (no Faust, no agents) is the floor the embedded broker sets. Tansu answers",
                "fetches more slowly the more record batches a partition holds, and the paced publisher",
                "makes one per publish: each worker (on topics of its own) and the raw echo run the rates",
                "in the order shown, so a later rate meets a slower broker.",
                "",
            ]
    memory_rows = [
        [
            run.label,
            role,
            f"{mb:,.0f}",
            f"{run.memory_files[role]:,.0f}" if role in run.memory_files else "-",
            f"{1e6 * run.cpu[role] / run.events:,.0f}" if run.events and role in run.cpu else "-",
        ]
        for run in runs
        for role, mb in sorted(run.memory.items())
    ]
    if memory_rows:
        out += ["## Worker processes: peak RSS, CPU per event during the throughput run", ""]
        out += [
            "File-backed: the part of the peak that is mapped files (Python's and chDB's libraries;",
            "clean pages the kernel can drop and read again), read from `RssFile` at the peak sample.",
            "",
        ]
        headers = ["worker", "process", "peak RSS MB", "of which file-backed MB", "CPU µs/event"]
        out += markdown(memory_rows, headers)
        out.append("")
    return out


def loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--partitions", type=int, default=2)
    parser.add_argument("--processes", default="1,2", help="worker configurations, e.g. 1,2")
    parser.add_argument("--rates", default="100,1000,5000", help="offered rates of the latency runs")
    parser.add_argument("--latency-seconds", type=float, default=10.0)
    parser.add_argument("--only", choices=PARTS, action="append", help="run only these parts")
    parser.add_argument("--skip-latency", action="store_true")
    parser.add_argument("--smoke", action="store_true", help="a seconds-long run of every part")
    parser.add_argument("--output", type=Path, default=None)
    args = parser.parse_args(argv)
    if args.smoke:
        args.events, args.processes, args.rates, args.latency_seconds = 1000, "2", "100", 1.0
    parts = set(args.only or PARTS)
    if args.skip_latency:
        parts.discard("latency")
    processes = [int(p) for p in args.processes.split(",") if p.strip()]
    rates = [int(r) for r in args.rates.split(",") if r.strip()] if "latency" in parts else []
    durations = {r: args.latency_seconds if r < 5000 else min(args.latency_seconds, 6.0) for r in rates}
    output = args.output if args.output is not None else (None if args.smoke else RESULTS)

    load_before = loadavg()
    root = Path(tempfile.mkdtemp(prefix="typostream-bench-"))
    events = make_events(args.events)
    raws: list[RawResult] = []
    runs: list[WorkerRun] = []
    raw_latencies: dict[int, Latency] = {}
    with EmbeddedStack(root / "stack", die_with_parent=True) as state:
        base = Settings(
            data_dir=root,
            kafka_bootstrap=state.kafka_bootstrap,
            redis_url=state.redis_url,
            clickhouse_dsn=state.clickhouse_dsn,
            partitions=args.partitions,
        )
        if "raw" in parts:
            assessor = components.build_assessor(base)
            for run in ("same", "pass"):
                raw = base.replace(
                    app_id=f"raw-{run}",
                    **{
                        f"topic_{t}": f"raw-{run}.{t}"
                        for t in ("input", "events", "analysed", "threats", "dlq")
                    },
                )
                asyncio.run(ensure_topics(raw))
                asyncio.run(produce_lines(raw, events, raw.topic_input))
                if run == "same":
                    seconds = asyncio.run(raw_same_work(raw, assessor, len(events), root))
                    label = "raw same-work baseline (aiokafka + rocksdict + chDB, 1 process)"
                else:
                    seconds = asyncio.run(raw_passthrough(raw, assessor, len(events)))
                    label = "raw pass-through (validate + detect + produce, 1 process)"
                raws.append(RawResult(label, len(events), seconds))
                print(f"{label}: {len(events) / seconds:,.0f} events/s", flush=True)
            del assessor
        if rates:
            assessor = components.build_assessor(base)
            topics = ("input", "events", "analysed", "threats", "dlq")
            raw = base.replace(app_id="raw-echo", **{f"topic_{t}": f"raw-echo.{t}" for t in topics})
            asyncio.run(ensure_topics(raw))
            raw_latencies = asyncio.run(raw_latency(raw, assessor, rates, durations))
            for rate, lat in raw_latencies.items():
                print(f"{RAW_ECHO_LABEL} at {rate}/s: p99 {lat.pct(0.99):.1f} ms", flush=True)
            del assessor
        if "throughput" in parts or rates:
            for n in processes:
                run = run_worker(base, root, n, events if "throughput" in parts else [], rates, durations)
                runs.append(run)
                print(f"{run.label}: {run.rate:,.0f} events/s", flush=True)
    lines = report(args, raws, runs, (load_before, loadavg()), raw_latencies)
    print("\n".join(lines))
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text("\n".join(lines) + "\n")
        print(f"written to {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
