"""Bundled popular-name snapshots (``npm.tsv.gz``, ``pypi.tsv.gz``); regenerate with ``generate.py``."""

from __future__ import annotations

from pathlib import Path

SNAPSHOT_DIR = Path(__file__).resolve().parent

__all__ = ["SNAPSHOT_DIR"]
