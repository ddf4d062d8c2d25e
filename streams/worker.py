"""Run a worker in this process: create topics, open ClickHouse, start Faust."""

from __future__ import annotations

import asyncio
import logging

import faust

from typostream.streams.app import build_app
from typostream.streams.config import Settings
from typostream.streams.topics import ensure_topics


def configure_logging(level: str) -> None:
    """Structured (key=value) and quiet by default: warnings and errors only."""
    logging.basicConfig(
        level=level.upper(),
        format="ts=%(asctime)s level=%(levelname)s logger=%(name)s msg=%(message)r",
    )


def run_worker(settings: Settings) -> None:
    """Blocks until SIGTERM/SIGINT; Faust then commits offsets and flushes tables before exiting."""
    configure_logging(settings.log_level)
    asyncio.run(ensure_topics(settings))
    pipeline = build_app(settings)
    pipeline.sink.ensure_schema()
    worker = faust.Worker(
        pipeline.app,
        loglevel=settings.log_level.lower(),
        quiet=True,
        redirect_stdouts=False,
        logging_config=None,
    )
    worker.execute_from_commandline()
