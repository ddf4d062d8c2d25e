"""Run a worker in this process: create topics, open ClickHouse, start Faust."""

from __future__ import annotations

import asyncio
import logging
import logging.config
from typing import Any

import faust

from typostream.streams.app import WorkerApp, build_app
from typostream.streams.config import Settings
from typostream.streams.topics import ensure_topics

LOG_FORMAT = "ts=%(asctime)s level=%(levelname)s logger=%(name)s pid=%(process)d msg=%(message)r"


def logging_config(level: str) -> dict[str, Any]:
    """Structured (key=value) lines on stderr, quiet by default (warnings and errors only)."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"kv": {"format": LOG_FORMAT}},
        "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "kv", "level": level.upper()}},
        "root": {"level": level.upper(), "handlers": ["stderr"]},
    }


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
    for sink in pipeline.sinks:
        sink.ensure_schema()
    _preload_insert_codecs()
    return pipeline


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
    worker.execute_from_commandline()
