"""Publish JSON Lines to Kafka (``typostream produce`` and the demo).

A file is read as it is sent, so a file that breaks part-way (a truncated or corrupt ``.gz``)
raises :class:`EventFileError` naming the file and the last complete line, and a send that fails
raises :class:`SendStoppedError` with the number of records the broker had acknowledged: the
caller can always say how much of the file went out.
"""

from __future__ import annotations

import asyncio
import gzip
import zlib
from collections.abc import Iterable, Iterator, Sized
from pathlib import Path
from typing import IO, Any, cast

from aiokafka import AIOKafkaProducer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from typostream.agents.domain.errors import EventFileError, SendStoppedError
from typostream.streams.config import Settings

__all__ = ["iter_lines", "produce_lines", "progress", "read_lines"]

_FLUSH_EVERY = 1000


def _open(path: Path) -> IO[bytes]:
    if path.suffix == ".gz":
        return cast(IO[bytes], gzip.open(path, "rb"))
    return path.open("rb")


def iter_lines(path: Path) -> Iterator[tuple[int, bytes]]:
    """``(line number, line)`` for every non-empty line, read lazily (gzip by extension).

    Invalid lines are yielded as they are (the validator dead-letters them). A file that cannot
    be read to its end raises :class:`EventFileError` after the last complete line.
    """
    number = 0
    try:
        with _open(path) as handle:
            for number, line in enumerate(handle, 1):  # number: the last line read, for errors
                if line.strip():
                    yield number, line.rstrip(b"\r\n")
    except EOFError as exc:  # gzip: the compressed stream stops before its end-of-stream marker
        raise EventFileError(
            f"{path}: truncated gzip file (it ends without its end-of-stream marker after line {number})"
        ) from exc
    except gzip.BadGzipFile as exc:
        raise EventFileError(f"{path}: not a gzip file ({exc})") from exc
    except zlib.error as exc:
        raise EventFileError(f"{path}: corrupt gzip data after line {number} ({exc})") from exc
    except OSError as exc:
        where = f" after line {number}" if number else ""
        raise EventFileError(f"{path}: cannot read{where}: {exc.strerror or exc}") from exc


def read_lines(path: Path) -> list[bytes]:
    """Every non-empty line as raw bytes (see :func:`iter_lines`), read into memory."""
    return [line for _, line in iter_lines(path)]


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
    lines: Iterable[bytes],
    topic: str,
    console: Console | None = None,
    keys: Iterable[bytes | None] | None = None,
) -> int:
    """Send every line (a list, or an iterator read as it goes); returns the number acknowledged.

    Anything that stops it part-way (the line source raising, the broker refusing a record)
    raises :class:`SendStoppedError`: the records already handed to the producer are awaited
    first, so its ``sent`` is exactly the number the broker acknowledged.
    """
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, linger_ms=5, acks="all")
    try:
        await producer.start()
    except BaseException:
        await producer.stop()  # else "Unclosed AIOKafkaProducer" on stderr
        raise
    sent = 0
    pending: list[asyncio.Future[Any]] = []
    try:
        with progress(console) as bar:
            total = len(lines) if isinstance(lines, Sized) else None
            task = bar.add_task(f"produce → {topic}", total=total)
            key_iter = iter(keys) if keys is not None else None
            try:
                for line in lines:
                    key = next(key_iter) if key_iter is not None else None
                    pending.append(await producer.send(topic, value=line, key=key))
                    if len(pending) >= _FLUSH_EVERY:
                        done, failure = await _settle(pending)
                        sent += done
                        bar.update(task, advance=done)
                        if failure is not None:
                            raise failure
            except Exception as exc:
                done, _ = await _settle(pending)
                raise SendStoppedError(sent + done, exc) from exc
            done, failure = await _settle(pending)
            sent += done
            bar.update(task, advance=done)
            if failure is not None:
                raise SendStoppedError(sent, failure) from failure
    finally:
        await producer.stop()
    return sent


async def _settle(pending: list[asyncio.Future[Any]]) -> tuple[int, Exception | None]:
    """Await every queued send; ``(how many succeeded, the first failure or None)``; empties it."""
    done, failure = 0, None
    for future in pending:
        try:
            await future
        except Exception as exc:
            failure = failure or exc
        else:
            done += 1
    pending.clear()
    return done, failure
