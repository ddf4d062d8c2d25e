"""The bundled sample feed: ~3,000 OpenSSF package-feeds publish events (npm + PyPI).

``feed.jsonl.gz`` holds the events in ``created_date`` order; ``labels.jsonl.gz`` lists the
injected squats (``{name, registry, target, technique}``) so a demo can report recall.
Both are produced by ``data/sample/generate.py`` (deterministic, seeded).
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from importlib import resources
from typing import Any

__all__ = ["FEED_FILE", "LABELS_FILE", "iter_sample_events", "iter_sample_labels"]

FEED_FILE = "feed.jsonl.gz"
LABELS_FILE = "labels.jsonl.gz"


def _iter_jsonl_gz(file_name: str) -> Iterator[dict[str, Any]]:
    resource = resources.files(__name__).joinpath(file_name)
    with resource.open("rb") as raw, gzip.open(raw, "rt", encoding="utf-8") as text:
        for line in text:
            if line.strip():
                record: dict[str, Any] = json.loads(line)
                yield record


def iter_sample_events() -> Iterator[dict[str, Any]]:
    """Yield the sample publish events, oldest first."""
    return _iter_jsonl_gz(FEED_FILE)


def iter_sample_labels() -> Iterator[dict[str, Any]]:
    """Yield one ``{name, registry, target, technique}`` per injected squat."""
    return _iter_jsonl_gz(LABELS_FILE)
