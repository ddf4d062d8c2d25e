"""Commands: ``dlq`` (list / replay dead letters) and ``threats`` (list / follow detected threats).

Both read their topic without a consumer group and commit nothing. "To the end" means up to the
high watermark a Fetch reports, not ListOffsets(latest): Tansu answers the latter with the last
batch's base offset + 1 (see ``streams/transport.py``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from enum import StrEnum
from typing import Annotated, Any

import orjson
import typer
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from typostream.streams.cli.app import command, fail
from typostream.streams.cli.options import DataDir, Kafka, console, load_settings
from typostream.streams.config import Settings
from typostream.streams.records_view import (
    Deduplicator,
    DlqEntry,
    count_by_reason,
    decode_dlq,
    meets_severity,
    preview,
    threat_display_row,
)

__all__ = ["dlq", "read_to_end", "threats"]

READ_TIMEOUT_S = 30.0
_SEVERITY_STYLE = {"low": "dim", "medium": "yellow", "high": "bold red", "critical": "bold white on red"}


class Format(StrEnum):
    table = "table"
    json = "json"


class Severity(StrEnum):
    low = "low"
    medium = "medium"
    high = "high"
    critical = "critical"


OutputFormat = Annotated[Format, typer.Option("--format", help="table (default) or json (one object a line)")]
Limit = Annotated[int | None, typer.Option("--limit", min=1, help="Show only the newest N records.")]


async def _consumer(settings: Settings) -> AIOKafkaConsumer:
    """A started consumer without a group (closed again if it cannot start)."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap,
        group_id=None,
        enable_auto_commit=False,
        fetch_max_wait_ms=settings.fetch_max_wait_ms,
        auto_offset_reset="earliest",
    )
    try:
        await consumer.start()
    except BaseException:
        await consumer.stop()
        raise
    return consumer


async def _partitions(consumer: AIOKafkaConsumer, topic: str) -> list[TopicPartition]:
    if topic not in await consumer.topics():
        raise LookupError(f"topic {topic} does not exist (create it with `typostream topics`)")
    return [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]


async def read_to_end(
    settings: Settings, topic: str, timeout_s: float = READ_TIMEOUT_S
) -> AsyncIterator[ConsumerRecord]:
    """Every record of ``topic`` from the beginning up to the high watermark fetched at the start."""
    consumer = await _consumer(settings)
    try:
        tps = await _partitions(consumer, topic)
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends: dict[TopicPartition, int] = {}  # first high watermark seen per partition: "current end"
        deadline = time.monotonic() + timeout_s
        while True:
            batch = await consumer.getmany(*tps, timeout_ms=200)
            for tp in tps:
                highwater = consumer.highwater(tp)
                if tp not in ends and highwater is not None:
                    ends[tp] = highwater
            for tp, records in batch.items():
                for record in records:
                    if tp not in ends or record.offset < ends[tp]:
                        yield record
            if len(ends) == len(tps) and all([await consumer.position(tp) >= ends[tp] for tp in tps]):
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"{topic}: not at the end after {timeout_s:.0f} s")
    finally:
        await consumer.stop()


async def follow_new(
    settings: Settings, topic: str, on_ready: Callable[[], None] | None = None
) -> AsyncIterator[ConsumerRecord]:
    """Records published to ``topic`` from now on, until cancelled; ``on_ready`` once the end is known."""
    consumer = await _consumer(settings)
    try:
        tps = await _partitions(consumer, topic)
        consumer.assign(tps)
        await consumer.seek_to_end(*tps)  # may land a little early on Tansu: filtered below
        starts: dict[TopicPartition, int] = {}
        while True:
            batch = await consumer.getmany(*tps, timeout_ms=500)
            for tp in tps:
                highwater = consumer.highwater(tp)
                if tp not in starts and highwater is not None:
                    starts[tp] = highwater
                    if len(starts) == len(tps) and on_ready is not None:
                        on_ready()
            for tp, records in batch.items():
                for record in records:
                    if record.offset >= starts.get(tp, 0):
                        yield record
    finally:
        await consumer.stop()


def _run(settings: Settings, topic: str, work: Callable[[], Any]) -> Any:
    try:
        return asyncio.run(work())
    except KeyboardInterrupt:
        raise typer.Exit(0) from None
    except LookupError as exc:
        raise fail(str(exc).strip("'\"")) from exc
    except Exception as exc:
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise fail(f"cannot read {topic} from {settings.kafka_bootstrap}: {detail}") from exc


# --- dlq ------------------------------------------------------------------------------------


async def _read_dlq(settings: Settings) -> tuple[list[DlqEntry], int]:
    entries: list[DlqEntry] = []
    unreadable = 0
    async for record in read_to_end(settings, settings.topic_dlq):
        try:
            entries.append(decode_dlq(record.value, record.partition, record.offset))
        except ValueError as exc:
            unreadable += 1
            console.print(f"[yellow]skipped {record.partition}:{record.offset}: {escape(str(exc))}")
    return entries, unreadable


def _dlq_table(entries: list[DlqEntry]) -> Table:
    table = Table(
        "partition:offset",
        "reason",
        "error",
        "source p:offset",
        "rejected at",
        "original",
        title="dead letters",
    )
    for entry in entries:
        record = entry.record
        table.add_row(
            f"{entry.partition}:{entry.offset}",
            escape(entry.reason),
            escape(preview(str(record.get("error", "")).encode(), 60)),
            escape(f"{record.get('source_partition')}:{record.get('source_offset')}"),
            escape(entry.rejected_at),
            _original_cell(entry),
        )
    return table


@command()
def dlq(
    data_dir: DataDir = None,
    kafka: Kafka = None,
    reason: Annotated[str | None, typer.Option("--reason", help="Only records with this reason.")] = None,
    limit: Limit = None,
    output: OutputFormat = Format.table,
    replay: Annotated[
        bool, typer.Option("--replay", help="Re-publish the originals (bytes and key) to the input topic.")
    ] = False,
    yes: Annotated[bool, typer.Option("--yes", help="Really send (without it, --replay is a dry run).")] = (
        False
    ),
) -> None:
    """List dead-lettered messages (read from the beginning, no consumer group), or replay them."""
    settings = load_settings(data_dir, kafka)
    entries, unreadable = _run(settings, settings.topic_dlq, lambda: _read_dlq(settings))
    selected = [e for e in entries if reason is None or e.reason == reason]
    selected.sort(key=lambda e: (e.rejected_at, e.partition, e.offset))
    counts = count_by_reason(selected)
    if limit is not None:
        selected = selected[-limit:]
    out = Console()
    if output is Format.json:
        for entry in selected:
            typer.echo(orjson.dumps(entry.as_json()).decode())
    else:
        out.print(_dlq_table(selected))
    summary = ", ".join(f"{name}={count}" for name, count in counts.items()) or "-"
    shown = f"; showing {len(selected)}" if len(selected) != sum(counts.values()) else ""
    skipped = f"; {unreadable} unreadable" if unreadable else ""
    total = f"{sum(counts.values())} dead letter(s) on {settings.topic_dlq}: {summary}{shown}{skipped}"
    (console if output is Format.json else out).print(escape(total), highlight=False)
    if not replay:
        return
    # A record that kept only a prefix of its original (too large to carry) would replay a
    # different message: refuse it, one line each, and replay the rest.
    refused = [e for e in selected if e.truncated]
    for entry in refused:
        console.print(_refusal(entry), highlight=False)
    replayable = [e for e in selected if not e.truncated]
    if not yes:
        (console if output is Format.json else out).print(
            f"dry run: {len(replayable)} record(s) would be replayed to {escape(settings.topic_input)}; "
            "pass --yes to send",
            highlight=False,
        )
        return
    from typostream.streams.producer import produce_lines

    sent = 0
    if replayable:
        try:
            sent = asyncio.run(
                produce_lines(
                    settings,
                    [e.original for e in replayable],
                    settings.topic_input,
                    console=console,
                    keys=[e.original_key for e in replayable],
                )
            )
        except Exception as exc:
            raise fail(f"cannot produce to {settings.kafka_bootstrap}: {exc}") from exc
    not_sent = f"; {len(refused)} truncated record(s) not replayed" if refused else ""
    typer.echo(f"replayed {sent} record(s) to {settings.topic_input}{not_sent}")
    if refused:
        raise typer.Exit(1)


def _original_cell(entry: DlqEntry) -> str:
    cell = escape(preview(entry.original, 50))
    if entry.record.get("original_truncated"):
        cell += f" [dim](first {len(entry.original):,} of {entry.original_size:,} bytes)[/]"
    return cell


def _refusal(entry: DlqEntry) -> str:
    """One line: which record is not replayed and why."""
    kept = []
    if entry.record.get("original_truncated"):
        kept.append(f"the first {len(entry.original):,} of {entry.original_size:,} bytes of the original")
    if entry.record.get("original_key_truncated"):
        kept.append(f"the first {len(entry.original_key or b''):,} bytes of its key")
    sha = entry.record.get("original_sha256")
    source = ":".join(str(entry.record.get(f)) for f in ("source_topic", "source_partition", "source_offset"))
    return escape(
        f"not replaying {entry.partition}:{entry.offset} ({entry.reason}, from {source}): truncated, "
        f"the record keeps only {' and '.join(kept)}{f' (sha256 {sha})' if sha else ''}; "
        "re-publish the message from its source"
    )


# --- threats --------------------------------------------------------------------------------


def _decode_threat(record: ConsumerRecord) -> dict[str, Any] | None:
    try:
        value = orjson.loads(record.value or b"")
    except orjson.JSONDecodeError:
        value = None
    if not isinstance(value, dict):
        console.print(f"[yellow]skipped {record.partition}:{record.offset}: not a JSON object")
        return None
    return value


def _styled(row: tuple[str, ...]) -> list[str]:
    cells = [escape(cell) for cell in row]
    style = _SEVERITY_STYLE.get(row[6])
    if style:
        cells[6] = f"[{style}]{cells[6]}[/]"
    return cells


def _threats_table(rows: list[tuple[str, ...]]) -> Table:
    table = Table(
        "time", "registry", "package", "type", "technique", "target", "severity", "risk", title="threats"
    )
    for row in rows:
        table.add_row(*_styled(row))
    return table


async def _read_threats(settings: Settings, min_severity: str) -> tuple[list[dict[str, Any]], int]:
    seen = Deduplicator()
    kept: list[dict[str, Any]] = []
    duplicates = 0
    async for record in read_to_end(settings, settings.topic_threats):
        threat = _decode_threat(record)
        if threat is None:
            continue
        if not seen.first(threat):
            duplicates += 1
        elif meets_severity(threat, min_severity):
            kept.append(threat)
    return kept, duplicates


async def _follow_threats(settings: Settings, min_severity: str, output: Format, limit: int | None) -> None:
    seen = Deduplicator()
    out = Console(highlight=False)
    shown = 0

    def ready() -> None:
        console.print(f"following {escape(settings.topic_threats)} (Ctrl-C to stop)", highlight=False)

    async for record in follow_new(settings, settings.topic_threats, on_ready=ready):
        threat = _decode_threat(record)
        if threat is None or not seen.first(threat) or not meets_severity(threat, min_severity):
            continue
        if output is Format.json:
            typer.echo(orjson.dumps(threat).decode())
        else:
            out.print("  ".join(_styled(threat_display_row(threat))))
        shown += 1
        if limit is not None and shown >= limit:
            return


@command()
def threats(
    data_dir: DataDir = None,
    kafka: Kafka = None,
    min_severity: Annotated[
        Severity, typer.Option("--min-severity", help="Only threats at least this severe.")
    ] = Severity.low,
    follow: Annotated[
        bool,
        typer.Option("--follow", "-f", help="Print only new threats as they arrive until Ctrl-C."),
    ] = False,
    output: OutputFormat = Format.table,
    limit: Annotated[
        int | None,
        typer.Option("--limit", min=1, help="Show the newest N threats (with --follow: exit after N)."),
    ] = None,
) -> None:
    """List detected threats (de-duplicated by id), or follow new ones."""
    settings = load_settings(data_dir, kafka)
    if follow:
        _run(settings, settings.topic_threats, lambda: _follow_threats(settings, min_severity, output, limit))
        return
    kept, duplicates = _run(settings, settings.topic_threats, lambda: _read_threats(settings, min_severity))
    kept.sort(key=lambda t: str(t.get("timestamp", "")))
    total = len(kept)
    if limit is not None:
        kept = kept[-limit:]
    if output is Format.json:
        for threat in kept:
            typer.echo(orjson.dumps(threat).decode())
    else:
        Console().print(_threats_table([threat_display_row(t) for t in kept]))
    summary = (
        f"{total} threat(s) at or above {min_severity.value} on {settings.topic_threats}"
        f"{f'; showing {len(kept)}' if len(kept) != total else ''}"
        f"; {duplicates} duplicate deliveries skipped"
    )
    (console if output is Format.json else Console()).print(escape(summary), highlight=False)
