"""Pipeline benchmark: worker throughput and publish→threat latency on the embedded stack.

Baseline, measured in the same run on the same broker: a raw aiokafka pass-through that does the
same pure work per event (validate + detect + build the threat message) and produces the results,
with no Faust, no table and no ClickHouse — the ceiling for one Python process.

    .venv/bin/python benchmarks/pipeline.py [--events 20000] [--partitions 2]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from rich.console import Console
from rich.table import Table

from typostream.agents.domain.detection import Detector
from typostream.agents.domain.errors import InvalidEventError
from typostream.agents.domain.events import parse_publish
from typostream.agents.domain.messages import event_message, threat_event, utc_now_iso
from typostream.streams.config import Settings
from typostream.streams.demo import sample_feed_path, wait_processed
from typostream.streams.producer import produce_lines, read_lines
from typostream.streams.stack import EmbeddedStack
from typostream.streams.stack.processes import free_port
from typostream.streams.topics import ensure_topics
from typostream.streams.worker_process import WorkerProcess

console = Console()


def _valid(line: bytes) -> bool:
    try:
        parse_publish(line, 1 << 16)
    except InvalidEventError:
        return False
    return True


def make_events(n: int) -> list[bytes]:
    """The sample feed's valid publishes repeated with distinct versions: every event is new."""
    base = [orjson.loads(line) for line in read_lines(sample_feed_path()) if _valid(line)]
    out = []
    for i in range(n):
        doc = dict(base[i % len(base)])
        doc["version"] = f"{doc['version']}.{i // len(base)}" if i >= len(base) else doc["version"]
        out.append(orjson.dumps(doc))
    return out


async def raw_baseline(settings: Settings, detector: Detector, n: int) -> float:
    """Consume the input topic, run validate + detect, produce results; returns seconds."""
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, enable_auto_commit=False)
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, linger_ms=2)
    await consumer.start()
    await producer.start()
    try:
        tps = [TopicPartition(settings.topic_input, p) for p in range(settings.partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        done, started = 0, time.perf_counter()
        while done < n:
            batch = await consumer.getmany(timeout_ms=500, max_records=2000)
            now = utc_now_iso()
            for records in batch.values():
                for record in records:
                    done += 1
                    try:
                        event = parse_publish(record.value, settings.max_event_bytes)
                    except InvalidEventError:
                        continue
                    value = event_message(event, record.partition, record.offset, now)
                    for threat in detector.scan(event.name, event.registry).threats:
                        await producer.send(
                            settings.topic_threats, orjson.dumps(threat_event(value, threat, now))
                        )
                    await producer.send(settings.topic_events, orjson.dumps(value), key=event.key.encode())
        await producer.flush()
        return time.perf_counter() - started
    finally:
        await consumer.stop()
        await producer.stop()


async def latency_probe(settings: Settings, probes: int, interval_s: float) -> list[float]:
    """Publish one squat at a time and time until its threat arrives on the threats topic."""
    # Tansu answers a fetch only after fetch_max_wait_ms, so the probe itself polls every 2 ms.
    consumer = AIOKafkaConsumer(
        settings.topic_threats, bootstrap_servers=settings.kafka_bootstrap, fetch_max_wait_ms=2
    )
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap)
    await consumer.start()
    await producer.start()
    latencies: list[float] = []
    try:
        await consumer.seek_to_end()
        for i in range(probes):
            doc = {"name": "reqeusts", "version": f"9.{i}.0", "created_date": utc_now_iso(), "type": "pypi"}
            sent = time.perf_counter()
            await producer.send_and_wait(settings.topic_input, orjson.dumps(doc))
            while True:
                record = await asyncio.wait_for(consumer.getone(), timeout=30)
                if orjson.loads(record.value)["package"]["version"] == doc["version"]:
                    latencies.append(time.perf_counter() - sent)
                    break
            await asyncio.sleep(interval_s)
    finally:
        await consumer.stop()
        await producer.stop()
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--partitions", type=int, default=2)
    parser.add_argument("--probes", type=int, default=50)
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="typostream-bench-"))
    events = make_events(args.events)
    detector = Detector.default()
    with EmbeddedStack(root, die_with_parent=True) as state:
        base = Settings(
            data_dir=root,
            kafka_bootstrap=state.kafka_bootstrap,
            redis_url=state.redis_url,
            clickhouse_dsn=state.clickhouse_dsn,
            partitions=args.partitions,
        )
        # Baseline on its own topics
        raw = base.replace(
            app_id="raw", topic_input="raw.in", topic_events="raw.events", topic_threats="raw.threats"
        )
        asyncio.run(ensure_topics(raw))
        asyncio.run(produce_lines(raw, events, raw.topic_input))
        raw_s = asyncio.run(raw_baseline(raw, detector, len(events)))

        settings = base.replace(web_port=free_port())
        asyncio.run(ensure_topics(settings))
        worker = WorkerProcess(settings).start()
        try:
            worker.wait_ready(timeout_s=90)
            started = time.monotonic()
            asyncio.run(produce_lines(settings, events, settings.topic_input))
            run = wait_processed(worker, len(events), timeout_s=900, console=None)
            worker_s = time.monotonic() - started
            latencies = asyncio.run(latency_probe(settings, args.probes, 0.05))
        finally:
            worker.stop()

    table = Table(
        title=f"Pipeline throughput ({len(events):,} events, {args.partitions} partitions, 1 worker)"
    )
    for column in ("pipeline", "seconds", "events/s", "vs baseline"):
        table.add_column(column, justify="right" if column != "pipeline" else "left")
    table.add_row(
        "raw aiokafka pass-through (baseline)", f"{raw_s:.2f}", f"{len(events) / raw_s:,.0f}", "1.00x"
    )
    table.add_row(
        "typostream worker → ClickHouse",
        f"{worker_s:.2f}",
        f"{run.processed / worker_s:,.0f}",
        f"{(len(events) / raw_s) / (run.processed / worker_s):.2f}x slower",
    )
    console.print(table)
    ms = sorted(1000 * x for x in latencies)
    lat = Table(title=f"Publish → threat on the output topic ({len(ms)} single-event probes, idle worker)")
    for column in ("median ms", "p90 ms", "p99 ms", "max ms"):
        lat.add_column(column, justify="right")
    p = statistics.quantiles(ms, n=100)
    lat.add_row(f"{statistics.median(ms):.1f}", f"{p[89]:.1f}", f"{p[98]:.1f}", f"{ms[-1]:.1f}")
    console.print(lat)


if __name__ == "__main__":
    main()
