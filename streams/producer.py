"""Publish JSON Lines to Kafka (``typostream produce`` and the demo)."""

from __future__ import annotations

import gzip
from collections.abc import Iterable, Sequence
from pathlib import Path

from aiokafka import AIOKafkaProducer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from typostream.streams.config import Settings


def read_lines(path: Path) -> list[bytes]:
    """Non-empty lines as raw bytes (gzip by extension); invalid lines are kept for the DLQ."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as handle:
        return [line.rstrip(b"\r\n") for line in handle if line.strip()]


def progress(console: Console | None) -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=False,
        disable=console is None,
    )


async def produce_lines(
    settings: Settings,
    lines: Sequence[bytes],
    topic: str,
    console: Console | None = None,
    keys: Iterable[bytes | None] | None = None,
) -> int:
    """Send every line; returns the number acknowledged by the broker."""
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, linger_ms=5, acks="all")
    await producer.start()
    sent = 0
    try:
        key_list = list(keys) if keys is not None else [None] * len(lines)
        with progress(console) as bar:
            task = bar.add_task(f"produce → {topic}", total=len(lines))
            futures = []
            for line, key in zip(lines, key_list, strict=True):
                futures.append(await producer.send(topic, value=line, key=key))
                if len(futures) >= 1000:
                    for future in futures:
                        await future
                    sent += len(futures)
                    bar.update(task, advance=len(futures))
                    futures.clear()
            for future in futures:
                await future
            sent += len(futures)
            bar.update(task, advance=len(futures))
    finally:
        await producer.stop()
    return sent
