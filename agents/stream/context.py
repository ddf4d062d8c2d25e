"""What every Faust agent is registered with: the app and its topic and table handles.

The handles are declared in one place, ``streams/topics.py`` and ``streams/tables.py``; the
composition root (``streams/app.py``) bundles them here and hands each agent module only the
services it uses.
"""

from __future__ import annotations

from dataclasses import dataclass

import faust
from faust.types import TableT


@dataclass(frozen=True)
class Topics:
    """Faust topic handles, built once per app."""

    input: faust.TopicT
    analysed: faust.TopicT
    threats: faust.TopicT
    dlq: faust.TopicT


@dataclass(frozen=True)
class Tables:
    # key "<registry>:<name>" → {first_seen, last_version, versions_seen, last_threat, ...}
    packages: TableT


@dataclass(frozen=True)
class StreamContext:
    app: faust.App
    topics: Topics
    tables: Tables
