"""Run a worker in this process: create topics, open ClickHouse, start Faust."""

from __future__ import annotations

import asyncio
import logging
import logging.config
import os
import sys
import threading
import time
from typing import Any

import faust
from faust.exceptions import ConsistencyError

from typostream.streams import recovery
from typostream.streams.app import WorkerApp, build_app
from typostream.streams.config import Settings
from typostream.streams.topics import ensure_topics

_watch: recovery.WatchState | None = None

LOG_FORMAT = "ts=%(asctime)s level=%(levelname)s logger=%(name)s pid=%(process)d msg=%(message)r"


def logging_config(level: str) -> dict[str, Any]:
    """Structured (key=value) lines on stderr, quiet by default (warnings and errors only).

    Kafka client chatter is rate-limited (``KafkaNoiseFilter``): while the broker is down aiokafka
    logs ~80 connection errors a second.
    """
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"kv": {"format": LOG_FORMAT}},
        "filters": {"kafka_noise": {"()": f"{__name__}.KafkaNoiseFilter"}},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "kv",
                "level": level.upper(),
                "filters": ["kafka_noise"],
            }
        },
        "root": {"level": level.upper(), "handlers": ["stderr"]},
    }


class KafkaNoiseFilter(logging.Filter):
    """At most one line per ``interval_s`` from the Kafka client libraries (aiokafka, Faust's transport).

    The line that passes after a quiet spell tells how many were suppressed before it, so a broker
    outage reads as one line every few seconds instead of a flood. Only WARNING and ERROR lines
    are limited: CRITICAL, INFO and DEBUG always pass, and so does every other logger.
    """

    PREFIXES = ("aiokafka", "faust.transport", "typostream.streams.transport")

    def __init__(self, interval_s: float = 5.0) -> None:
        super().__init__()
        self.interval_s = interval_s
        self._lock = threading.Lock()
        self._next_at = 0.0
        self._suppressed = 0

    def filter(self, record: logging.LogRecord) -> bool:
        if not logging.WARNING <= record.levelno < logging.CRITICAL or not record.name.startswith(
            self.PREFIXES
        ):
            return True
        now = time.monotonic()
        with self._lock:
            if now < self._next_at:
                self._suppressed += 1
                return False
            self._next_at = now + self.interval_s
            suppressed, self._suppressed = self._suppressed, 0
        if suppressed:
            record.msg = (
                f"{record.getMessage()} ({suppressed} similar Kafka client lines suppressed before this)"
            )
            record.args = None
        return True


class Worker(faust.Worker):
    def on_setup_root_logger(self, logger: logging.Logger, level: int) -> None:
        # Faust's terminal spinner lowers the root logger to DEBUG so it can spin on every record;
        # then each library debug() call builds a LogRecord (~7 % of CPU per event, measured).
        self.spinner = None
        logger.setLevel(level)


def _preload_insert_codecs() -> None:
    """clickhouse-connect imports pandas lazily on the first insert (~0.8 s stall mid-stream)."""
    from clickhouse_connect.driver import options

    if hasattr(options, "_resolve_pandas"):
        options._resolve_pandas()


def prepare_worker(settings: Settings) -> WorkerApp:
    """Everything that can fail on configuration: topics, detector, advisories, sink schemas."""
    logging.config.dictConfig(logging_config(settings.log_level))
    asyncio.run(ensure_topics(settings))
    pipeline = build_app(settings)
    _recover_from_broker_loss(pipeline)
    for sink in pipeline.sinks:
        sink.ensure_schema()
    _preload_insert_codecs()
    return pipeline


def _recover_from_broker_loss(pipeline: WorkerApp) -> None:
    """Heal local state that is ahead of a broker that lost data, then watch for it while running."""
    global _watch
    if not pipeline.settings.recover_broker_loss:
        return
    recovery.recover_before_start(pipeline)
    _watch = recovery.watch_broker(pipeline)


def run_worker(pipeline: WorkerApp) -> None:
    """Blocks until SIGTERM/SIGINT; Faust then commits offsets and flushes tables before exiting."""
    settings = pipeline.settings
    worker = Worker(
        pipeline.app,
        loglevel=settings.log_level.lower(),
        quiet=True,
        redirect_stdouts=False,
        logging_config=logging_config(settings.log_level),
    )
    try:
        worker.execute_from_commandline()
    finally:  # mode turns a crash into SystemExit(1) and keeps the reason on the worker
        _note_table_ahead_of_broker(settings, worker.crash_reason)
        _restart_after_broker_loss()
        _exit_promptly()


def _note_table_ahead_of_broker(settings: Settings, crash: BaseException | None) -> None:
    """A rebalance met a changelog that ends before the local table: the broker lost data."""
    if _watch is not None and isinstance(crash, ConsistencyError):
        reason = "a table changelog ends before the local table's offset (ConsistencyError)"
        recovery.log.warning("the broker lost its data (%s): restarting the worker", reason)
        recovery.mark_broker_loss(_watch, settings, reason)


def _restart_after_broker_loss() -> None:
    """The broker lost data while the worker ran: start afresh in this process (recovery runs first)."""
    if _watch is not None:
        recovery.restart_if_requested(_watch)


def _exit_promptly() -> None:
    """Faust has stopped (offsets committed, producer flushed, tables closed): exit now, skipping
    the interpreter's teardown. Left to it, a sink call stuck in a thread (``asyncio.to_thread``
    cannot be cancelled; a hung ClickHouse connection blocks up to its timeout) would hold the exit,
    and so does finalising everything the detector and drivers built (measured: 2-3 s of a 3.6-4.9 s
    SIGTERM-to-exit, 1.6 s without it). chDB's inserts are on disk when they return."""
    stop = sys.exc_info()[1]
    code = stop.code if isinstance(stop, SystemExit) else 1
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code if isinstance(code, int) else int(code is not None))
