"""What chDB allows per process (chDB 4.4 / ClickHouse 26.9 via clickhouse-connect 1.12).

Found by running these: one engine path per process at a time. A second client on the SAME
path shares the engine; a client on ANOTHER path raises while any client is open, and works
once all are closed. Another process cannot open a path this process holds (exclusive lock).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from typostream.agents.adapters.analytics import ClickHouseAnalytics
from typostream.agents.adapters.clickhouse import ClickHouseConnection
from typostream.agents.adapters.sinks.clickhouse import ClickHouseSink
from typostream.agents.domain.errors import StoreUnavailableError


def _open(dsn: str, path: Path) -> ClickHouseSink:
    return ClickHouseSink(ClickHouseConnection.open(dsn, path))


def _count(sink: ClickHouseSink) -> int:
    return ClickHouseAnalytics(sink.connection).count_events()


def _row(i: int) -> dict[str, object]:
    return {
        "event_id": f"{i:032x}",
        "registry": "npm",
        "name": f"p{i}",
        "version": "1.0.0",
        "created_date": 0,
        "artifact_id": "",
        "schema_ver": "1.1.0",
        "received_at": 0,
        "source_partition": 0,
        "source_offset": i,
        "verdict": "clean",
        "threat_count": 0,
        "max_severity": "",
    }


def test_one_engine_path_per_process(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    first = _open("chdb://", a)
    first.ensure_schema()
    first.insert_events([_row(i) for i in range(3)])
    same = _open(f"chdb://{a}", Path("/ignored"))
    assert _count(same) == 3
    with pytest.raises(StoreUnavailableError, match="already initialized"):
        _open("chdb://", b)
    same.connection.close()
    first.connection.close()

    other = _open("chdb://", b)  # every client closed: another path is fine
    other.ensure_schema()
    assert _count(other) == 0
    other.connection.close()

    again = _open("chdb://", a)  # data persisted across close/reopen
    assert _count(again) == 3
    # A replayed batch is dropped by its dedup token even after the engine was reopened.
    again.insert_events([_row(i) for i in range(3)])
    assert int(again.connection.client.query("SELECT count() FROM events").result_rows[0][0]) == 3
    again.connection.close()


def test_path_is_locked_against_other_processes(tmp_path: Path) -> None:
    sink = _open("chdb://", tmp_path)
    try:
        code = (
            "import sys, pathlib\n"
            "from typostream.agents.adapters.clickhouse import ClickHouseConnection\n"
            "from typostream.agents.domain.errors import StoreUnavailableError\n"
            "try:\n"
            f"    ClickHouseConnection.open('chdb://', pathlib.Path({str(tmp_path)!r}))\n"
            "except StoreUnavailableError:\n"
            "    sys.exit(3)\n"
        )
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=120)
        assert proc.returncode == 3, proc.stderr.decode()[-2000:]
    finally:
        sink.connection.close()
