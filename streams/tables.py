"""Faust tables (RocksDB-backed, changelog-replicated), declared in one place."""

from __future__ import annotations

import faust

from typostream.agents.stream.context import Tables
from typostream.streams.codecs import CODEC_NAME
from typostream.streams.config import Settings
from typostream.streams.topics import PACKAGES_TABLE

ROCKSDB_OPTIONS = {
    "write_buffer_size": 16 * 1024 * 1024,
    "max_write_buffer_number": 2,
    "block_cache_size": 64 * 1024 * 1024,
}


def declare_tables(app: faust.App, settings: Settings) -> Tables:
    packages = app.Table(
        PACKAGES_TABLE,
        default=None,
        partitions=settings.partitions,
        # json keys round-trip str through the changelog (raw would give bytes back on recovery)
        schema=faust.Schema(key_serializer="json", value_serializer=CODEC_NAME),
        help="Per-package state: first seen, last version, versions seen, last threat.",
        # Faust's RocksDB defaults (64 MiB memtables x 3 per partition, a 2 GiB block cache) let a
        # replay grow the worker by hundreds of MB; state is a few hundred bytes per package.
        options=ROCKSDB_OPTIONS,
    )
    return Tables(packages=packages)
