"""Commands: pipeline."""

from __future__ import annotations

from typostream.streams.cli.app import cli  # noqa: F401
