"""What every agent needs, bundled once per app: the app, its topics and tables, and services."""

from __future__ import annotations

from dataclasses import dataclass

import faust

from typostream.agents.detection import Detector
from typostream.agents.enrichment import KnownMalicious
from typostream.agents.sinks.clickhouse import ClickHouseSink
from typostream.streams.config import Settings
from typostream.streams.tables import Tables
from typostream.streams.topics import Topics


@dataclass(frozen=True)
class Pipeline:
    app: faust.App
    settings: Settings
    topics: Topics
    tables: Tables
    detector: Detector
    known: KnownMalicious
    sink: ClickHouseSink
