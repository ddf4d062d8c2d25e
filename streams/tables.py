"""Faust tables (RocksDB-backed, changelog-replicated), declared in one place."""

from __future__ import annotations

import faust

from typostream.agents.stream.context import Tables
from typostream.streams.codecs import CODEC_NAME
from typostream.streams.config import Settings
from typostream.streams.topics import PACKAGES_TABLE


def declare_tables(app: faust.App, settings: Settings) -> Tables:
    packages = app.Table(
        PACKAGES_TABLE,
        default=None,
        partitions=settings.partitions,
        # json keys round-trip str through the changelog (raw would give bytes back on recovery)
        schema=faust.Schema(key_serializer="json", value_serializer=CODEC_NAME),
        help="Per-package state: first seen, last version, versions seen, last threat.",
    )
    return Tables(packages=packages)
