"""What the worker process sets up for its memory before chDB loads (a fresh interpreter each)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

CHILD = textwrap.dedent(
    """
    import json, sys, tempfile
    from pathlib import Path
    from typostream.streams.worker import _tune_allocators, _without_dataframes

    _tune_allocators()
    _without_dataframes()
    from typostream.agents.adapters.clickhouse import ClickHouseConnection
    from typostream.agents.adapters.sinks.clickhouse import ClickHouseSink

    root = Path(tempfile.mkdtemp())
    connection = ClickHouseConnection.open("chdb://memory", root)
    sink = ClickHouseSink(connection)
    sink.ensure_schema()
    row = {
        "event_id": "e" * 32, "registry": "npm", "name": "left-pad", "version": "1.0.0",
        "created_date": "2026-01-01T00:00:00Z", "artifact_id": "", "schema_ver": "1.1.0",
        "received_at": "2026-01-01T00:00:01Z", "source_partition": 0, "source_offset": 0,
        "verdict": "clean", "threat_count": 0, "max_severity": "",
    }
    sink.insert_events([row])
    stats = connection.client.query("SELECT * FROM system.jemalloc_stats").result_rows[0][0]
    settings = dict(connection.client.query(
        "SELECT name, value FROM system.server_settings WHERE name = 'max_thread_pool_free_size'"
    ).result_rows)
    print(json.dumps({
        "rows": connection.client.query("SELECT count() FROM events").result_rows[0][0],
        "pandas": "pandas" in sys.modules,
        "pyarrow": sys.modules.get("pyarrow", "absent") is None,
        "jemalloc": [line.strip() for line in str(stats).splitlines() if line.strip().startswith(
            ("opt.dirty_decay_ms", "opt.prof:")
        )],
        "pool_free": settings.get("max_thread_pool_free_size"),
    }))
    """
)


def test_the_worker_loads_chdb_without_dataframes_and_with_its_allocator_settings() -> None:
    env_free = {k: v for k, v in os.environ.items() if k != "JE_MALLOC_CONF"}
    result = subprocess.run(
        [sys.executable, "-c", CHILD], capture_output=True, text=True, timeout=120, env=env_free, check=False
    )
    assert result.returncode == 0, result.stderr[-3000:]
    found = json.loads(result.stdout.strip().splitlines()[-1])
    assert found["rows"] == 1  # inserts work without pandas (clickhouse-connect checks for DataFrames)
    assert found["pandas"] is False and found["pyarrow"] is True  # neither loaded (~90 MB resident)
    assert "opt.dirty_decay_ms: 1000 (arenas.dirty_decay_ms: 1000)" in found["jemalloc"]
    assert "opt.prof: false" in found["jemalloc"]
    assert found["pool_free"] == "8"  # idle engine threads kept (ClickHouse's default is 1,000)
