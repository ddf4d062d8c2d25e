"""Placeholder: replaced by the embedded-stack implementation."""

from __future__ import annotations

from pathlib import Path


def read_urls(data_dir: Path) -> dict[str, str]:
    return {}
