"""Console entry point: ``typostream``. Each command group lives in its own module."""

from __future__ import annotations

from typostream.streams.cli import alerts, detectors, dlq_threats, feeds, guard, query, run, scan, stack  # noqa: F401  (registers commands)
from typostream.streams.cli.app import cli

__all__ = ["cli", "main"]


def main() -> None:
    cli()
