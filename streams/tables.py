"""Faust tables (RocksDB-backed, changelog-replicated), declared in one place."""

from __future__ import annotations

from dataclasses import dataclass

import faust
from faust.types import TableT

from typostream.streams.codecs import CODEC_NAME
from typostream.streams.config import Settings
from typostream.streams.topics import PACKAGES_TABLE


@dataclass(frozen=True)
class Tables:
    # key "<registry>:<name>" → {first_seen, last_version, versions_seen, last_threat, ...}
    packages: TableT


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
