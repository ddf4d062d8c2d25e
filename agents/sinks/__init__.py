"""Sinks that persist analysed events and threats."""

from typostream.agents.sinks.clickhouse import (
    ClickHouseConnectError,
    ClickHouseSink,
    ClickHouseSinkError,
    ClickHouseTarget,
    InvalidDsnError,
    InvalidRowError,
    ReadOnlyQueryError,
    Summary,
    TargetCount,
    parse_dsn,
)

__all__ = [
    "ClickHouseConnectError",
    "ClickHouseSink",
    "ClickHouseSinkError",
    "ClickHouseTarget",
    "InvalidDsnError",
    "InvalidRowError",
    "ReadOnlyQueryError",
    "Summary",
    "TargetCount",
    "parse_dsn",
]
