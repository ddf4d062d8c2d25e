"""Commands: ``alerts run`` (deliver threat alerts outside a worker) and ``alerts test``.

``alerts run`` is a plain aiokafka consumer in group ``<app id>-alerts`` on the threats topic,
feeding the same :class:`AlertSink` the worker uses. Semantics, at least once:

1. fetch a batch (at most ``TYPOSTREAM_SINK_BATCH_SIZE`` records);
2. deliver it — each (threat, target) pair is recorded in the sent-alert store right after the
   target's 2xx, undeliverable ones and records that are no threat event are produced to the DLQ
   (acks=all, awaited);
3. commit the batch's offsets.

A crash or SIGKILL anywhere before 3 re-reads the batch on restart; the store skips what was
delivered, so nothing is lost and nothing is sent twice (except a crash between a 2xx and the
store write). SIGINT/SIGTERM stops between batches: a batch in progress gets up to
:data:`STOP_GRACE_S` to finish and be committed, and one still stuck in retries then is cancelled
without committing it. Store errors (disk, Redis) retry the batch with backoff; they never skip it.
A group without committed offsets starts at ``--start`` (``earliest``: the retained threats
pass through the store, so only undelivered ones are sent).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import logging.config
import signal
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any

import orjson
import typer
from rich.markup import escape

from typostream.agents.domain.errors import (
    BrokerUnavailableError,
    InvalidEventError,
    TypostreamError,
    internal_error,
)
from typostream.agents.domain.messages import dead_letter, dead_letter_key
from typostream.streams.cli.app import cli, command, error_line, fail
from typostream.streams.cli.options import (
    DataDir,
    Kafka,
    LogLevel,
    MetricsHost,
    MetricsPort,
    Redis,
    console,
    load_settings,
    mark_ready,
    serve_metrics,
)
from typostream.streams.components import build_alert_sink
from typostream.streams.config import Settings

if TYPE_CHECKING:
    from aiokafka import ConsumerRecord

    from typostream.agents.adapters.sinks.alerts import AlertSink

__all__ = ["RunStats", "alerts_app", "run_alerts"]

log = logging.getLogger("typostream.alerts")
RETRY_MAX_S = 30.0

alerts_app = typer.Typer(
    help="Deliver threat alerts to webhooks and Slack outside a worker, or send a test alert.",
    no_args_is_help=True,
)
cli.add_typer(alerts_app, name="alerts")


class Start(StrEnum):
    earliest = "earliest"
    latest = "latest"


@dataclass
class RunStats:
    batches: int = 0
    records: int = 0
    delivered: int = 0
    """(threat, target) POSTs that got a 2xx."""
    duplicates: int = 0
    """(threat, target) pairs skipped because the store had them."""
    dead_lettered: int = 0
    commits: int = 0


def group_id(settings: Settings) -> str:
    return f"{settings.app_id}-alerts"


def _decode(record: ConsumerRecord) -> dict[str, Any] | InvalidEventError:
    try:
        value = orjson.loads(record.value or b"")
    except orjson.JSONDecodeError as exc:
        return InvalidEventError("not_json", str(exc))
    if not isinstance(value, dict):
        return InvalidEventError("not_object", f"expected a JSON object, got {type(value).__name__}")
    return value


STOP_GRACE_S = 5.0
"""How long a stop waits for the batch being delivered (a few alerts' round trips, far less unless
a target is down) before it cancels it."""


async def _deliver_batch(
    sink: AlertSink, records: Sequence[ConsumerRecord], send_dlq: Callable[..., Any], stats: RunStats
) -> None:
    """Deliver, dead-letter what must be, await the DLQ sends; retried until it succeeds or is cancelled."""
    decoded = [_decode(r) for r in records]
    good = [(r, v) for r, v in zip(records, decoded, strict=True) if isinstance(v, dict)]
    delay = 0.5
    while True:
        try:
            outcomes = await sink.deliver([v for _, v in good], [r.value for r, _ in good])
            break
        except Exception as exc:  # the store failed (disk, Redis): keep the batch, back off
            log.warning("alert delivery failed (%s), retrying the batch in %.1fs", error_line(exc), delay)
            await asyncio.sleep(delay)
            delay = min(RETRY_MAX_S, delay * 2)
    failures: list[tuple[ConsumerRecord, InvalidEventError]] = [
        (r, v) for r, v in zip(records, decoded, strict=True) if isinstance(v, InvalidEventError)
    ]
    seen: set[int] = set()
    for (record, _), outcome in zip(good, outcomes, strict=True):
        if id(outcome) not in seen:  # one outcome per distinct threat of the batch
            seen.add(id(outcome))
            stats.delivered += len(outcome.delivered)
            stats.duplicates += len(outcome.duplicate)
        error = outcome.error
        if isinstance(error, InvalidEventError):  # UndeliverableAlertError
            failures.append((record, error))
        elif error is not None:  # not a threat event
            failures.append((record, internal_error(error)))
    futures = [await send_dlq(record, error) for record, error in failures]
    for future in futures:
        await future
    stats.dead_lettered += len(failures)


async def run_alerts(
    settings: Settings,
    sink: AlertSink,
    *,
    start: str = "earliest",
    stop: asyncio.Event | None = None,
    on_batch: Callable[[RunStats], None] | None = None,
) -> RunStats:
    """Consume the threats topic in group ``<app id>-alerts`` until ``stop`` is set (see module doc)."""
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
    from aiokafka.errors import CommitFailedError, KafkaError

    from typostream.streams.topics import ensure_topics

    stop = stop or asyncio.Event()
    stats = RunStats()
    try:
        await ensure_topics(settings)
    except Exception as exc:
        raise BrokerUnavailableError(f"cannot reach Kafka at {settings.kafka_bootstrap}: {exc}") from exc
    await asyncio.to_thread(sink.ensure_schema)  # opens (and locks) the sent-alert store
    consumer = AIOKafkaConsumer(
        settings.topic_threats,
        bootstrap_servers=settings.kafka_bootstrap,
        group_id=group_id(settings),
        enable_auto_commit=False,
        auto_offset_reset=start,
        fetch_max_wait_ms=settings.fetch_max_wait_ms,
        max_poll_interval_ms=3_600_000,  # a batch may sit in retries for minutes
        session_timeout_ms=10_000,
        heartbeat_interval_ms=1_000,
    )
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all", linger_ms=5)

    async def send_dlq(record: ConsumerRecord, error: InvalidEventError) -> Any:
        value = dead_letter(error, record.value, record.key, record.topic, record.partition, record.offset)
        key = dead_letter_key(record.key)
        return await producer.send(settings.topic_dlq, key=key, value=orjson.dumps(value))

    try:
        try:
            await producer.start()
            await consumer.start()
        except Exception as exc:
            raise BrokerUnavailableError(f"cannot consume from {settings.kafka_bootstrap}: {exc}") from exc
        mark_ready("kafka")  # /readyz
        while not stop.is_set():
            batch = await consumer.getmany(timeout_ms=500, max_records=settings.sink_batch_size)
            records = [r for tp in sorted(batch, key=lambda t: t.partition) for r in batch[tp]]
            if not records:
                continue
            work = asyncio.ensure_future(_deliver_batch(sink, records, send_dlq, stats))
            stopper = asyncio.ensure_future(stop.wait())
            await asyncio.wait({work, stopper}, return_when=asyncio.FIRST_COMPLETED)
            stopper.cancel()
            if not work.done():  # stopping: let a batch in progress finish
                await asyncio.wait({work}, timeout=STOP_GRACE_S)
            if not work.done():  # still retrying: leave it uncommitted
                work.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await work
                break
            work.result()
            try:
                await consumer.commit()
                stats.commits += 1
            except (CommitFailedError, KafkaError) as exc:  # rebalanced: re-read, the store skips it
                log.warning("alerts: commit failed (%s); the new owner re-reads this batch", exc)
            stats.batches += 1
            stats.records += len(records)
            if on_batch is not None:
                on_batch(stats)
    finally:
        with contextlib.suppress(Exception):
            await consumer.stop()
        with contextlib.suppress(Exception):
            await producer.stop()
        await sink.close()
    return stats


@command("run", group=alerts_app)
def run(
    data_dir: DataDir = None,
    kafka: Kafka = None,
    redis: Redis = None,
    log_level: LogLevel = None,
    start: Annotated[
        Start, typer.Option("--start", help="Where a new consumer group starts on the threats topic.")
    ] = Start.earliest,
    metrics_port: MetricsPort = None,
    metrics_host: MetricsHost = "127.0.0.1",
) -> None:
    """Deliver alerts for the threats topic until Ctrl-C / SIGTERM (consumer group <app id>-alerts)."""
    from typostream.streams.worker import logging_config

    settings = load_settings(data_dir, kafka, redis, log_level=log_level)
    logging.config.dictConfig(logging_config(settings.log_level))  # the worker's key=value lines
    sink = build_alert_sink(settings)

    def status(stats: RunStats) -> None:
        console.print(
            f"[bold]alerts[/] {time.strftime('%H:%M:%S')} records={stats.records} "
            f"delivered={stats.delivered} duplicates={stats.duplicates} dead_lettered={stats.dead_lettered}",
            highlight=False,
        )

    async def main() -> RunStats:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        try:
            return await run_alerts(settings, sink, start=start.value, stop=stop, on_batch=status)
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)

    console.print(
        f"alerts: {escape(', '.join(t.shown for t in sink.targets))} ← {escape(settings.topic_threats)} "
        f"(group {escape(group_id(settings))})",
        highlight=False,
    )
    server = serve_metrics(metrics_host, metrics_port) if metrics_port is not None else None
    try:
        stats = asyncio.run(main())
    except TypostreamError:
        raise
    except Exception as exc:
        raise fail(error_line(exc)) from exc
    finally:
        if server is not None:
            server.shutdown()
            server.server_close()
    typer.echo(
        f"alerts: {stats.records} record(s) in {stats.batches} batch(es): {stats.delivered} delivered, "
        f"{stats.duplicates} already sent, {stats.dead_lettered} dead-lettered"
    )


@command("test", group=alerts_app)
def test(
    data_dir: DataDir = None,
    attempts: Annotated[
        int, typer.Option("--attempts", min=1, help="Attempts per target (retries use the backoff).")
    ] = 1,
) -> None:
    """Send a test alert to every configured target and report each one's answer (exit 1 if any failed)."""
    settings = load_settings(data_dir)
    sink = build_alert_sink(settings)

    async def main() -> list[Any]:
        try:
            return await sink.send_test(max_attempts=attempts)
        finally:
            await sink.close()

    checks = asyncio.run(main())
    for check in checks:
        result, target = check.result, check.target
        verdict = "ok" if result.delivered else "FAILED"
        typer.echo(
            f"{target.label}\t{verdict}\t{result.detail}\t{result.attempts} attempt(s)\t"
            f"{result.seconds * 1000:.0f} ms\t{target.kind} {target.shown} min={target.min_severity}"
        )
    ok = sum(c.result.delivered for c in checks)
    typer.echo(f"{ok}/{len(checks)} target(s) accepted the test alert")
    if ok < len(checks):
        raise typer.Exit(1)
