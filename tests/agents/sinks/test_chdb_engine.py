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

from typostream.agents.sinks import ClickHouseConnectError, ClickHouseSink


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
    first = ClickHouseSink.from_dsn("chdb://", a)
    first.ensure_schema()
    first.insert_events([_row(i) for i in range(3)])
    same = ClickHouseSink.from_dsn(f"chdb://{a}", Path("/ignored"))
    assert same.count_events() == 3
    with pytest.raises(ClickHouseConnectError, match="already initialized"):
        ClickHouseSink.from_dsn("chdb://", b)
    same.close()
    first.close()

    other = ClickHouseSink.from_dsn("chdb://", b)  # every client closed: another path is fine
    other.ensure_schema()
    assert other.count_events() == 0
    other.close()

    again = ClickHouseSink.from_dsn("chdb://", a)  # data persisted across close/reopen
    assert again.count_events() == 3
    # A replayed batch is dropped by its dedup token even after the engine was reopened.
    again.insert_events([_row(i) for i in range(3)])
    assert int(again._client.query("SELECT count() FROM events").result_rows[0][0]) == 3
    again.close()


def test_path_is_locked_against_other_processes(tmp_path: Path) -> None:
    sink = ClickHouseSink.from_dsn("chdb://", tmp_path)
    try:
        code = (
            "import sys, pathlib\n"
            "from typostream.agents.sinks import ClickHouseSink, ClickHouseConnectError\n"
            "try:\n"
            f"    ClickHouseSink.from_dsn('chdb://', pathlib.Path({str(tmp_path)!r}))\n"
            "except ClickHouseConnectError:\n"
            "    sys.exit(3)\n"
        )
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=120)
        assert proc.returncode == 3, proc.stderr.decode()[-2000:]
    finally:
        sink.close()
