"""The whole pipeline on the real embedded stack: Kafka (Tansu) in, threats/DLQ out, ClickHouse rows."""

from __future__ import annotations

import asyncio
import base64
import shutil
import signal
import time
import urllib.error
from collections import Counter

import orjson
import pytest
from jsonschema import Draft202012Validator

from tests.integration.conftest import (
    WorkerFactory,
    clickhouse_rows,
    consume_all,
    produce,
    publish,
    wait_for,
)
from typostream.agents.domain.detection import Detector
from typostream.schemas import load_json_schema
from typostream.streams.config import Settings
from typostream.streams.worker_process import WorkerProcess

pytestmark = pytest.mark.integration

SQUATS = [("expresss", "npm", "express"), ("reqeusts", "pypi", "requests"), ("lodahs", "npm", "lodash")]


def clean_names(n: int, prefix: str) -> list[tuple[str, str]]:
    return [(f"{prefix}-acme-internal-tool-{i}", "npm" if i % 2 else "pypi") for i in range(n)]


@pytest.fixture(scope="module")
def detector() -> Detector:
    return Detector.default()


def expected_threats(detector: Detector, packages: list[tuple[str, str]]) -> Counter[tuple[str, str]]:
    """What the pure library says about these names: the pipeline must emit exactly this."""
    return Counter(
        (name, t.target) for name, registry in packages for t in detector.scan(name, registry).threats
    )


MALFORMED = {
    "not_json": b"this is not json",
    "not_object": b"[1, 2, 3]",
    "bad_encoding": b'{"name": "\xff\xfe"}',
    "wrong_type": orjson.dumps(
        {"name": 5, "version": "1", "created_date": "2026-11-25T10:00:00Z", "type": "npm"}
    ),
    "missing_field": orjson.dumps({"name": "x", "created_date": "2026-11-25T10:00:00Z", "type": "npm"}),
    "unknown_registry": orjson.dumps(
        {"name": "x", "version": "1", "created_date": "2026-11-25T10:00:00Z", "type": "rubygems"}
    ),
    "oversized": orjson.dumps(
        {
            "name": "x",
            "version": "1",
            "created_date": "2026-11-25T10:00:00Z",
            "type": "npm",
            "pad": "x" * 70_000,
        }
    ),
}
EXPECTED_REASON = {
    "not_json": "not_json",
    "not_object": "not_object",
    "bad_encoding": "bad_encoding",
    "wrong_type": "schema",
    "missing_field": "schema",
    "unknown_registry": "schema",
    "oversized": "oversized",
}


def test_events_flow_to_threats_dlq_and_clickhouse(
    pipeline_settings: Settings, worker_factory: WorkerFactory, detector: Detector
) -> None:
    settings = pipeline_settings
    packages = [(name, registry) for name, registry, _ in SQUATS] + clean_names(60, "flow")
    valid = [publish(name, "1.0.0", registry, i) for i, (name, registry) in enumerate(packages)]
    # malformed messages interleaved with valid ones: the worker must keep going past each
    values = [v for pair in zip(valid, MALFORMED.values(), strict=False) for v in pair] + valid[
        len(MALFORMED) :
    ]
    worker = worker_factory(settings)
    asyncio.run(produce(settings, values))

    stats = wait_for(
        worker, lambda s: s["clickhouse_events"] >= len(valid) and s["rejected"] >= len(MALFORMED)
    )
    assert (stats["clickhouse_events"], stats["rejected"]) == (len(valid), len(MALFORMED))

    # DLQ: one record per malformed message, with its reason and the original bytes intact
    dlq = asyncio.run(consume_all(settings, settings.topic_dlq))
    dlq_schema = Draft202012Validator(load_json_schema("dlq_record"))
    by_original = {base64.b64decode(r["original_b64"]): r for r in dlq}
    assert len(dlq) == len(MALFORMED)
    for label, raw in MALFORMED.items():
        record = by_original[raw]
        dlq_schema.validate(record)
        assert record["reason"] == EXPECTED_REASON[label], (label, record)
        assert record["source_topic"] == settings.topic_input
    # Threats: exactly what the library finds, SecurityEvent-shaped, correlated to their event
    threats = asyncio.run(consume_all(settings, settings.topic_threats))
    threat_schema = Draft202012Validator(load_json_schema("threat_event"))
    for threat in threats:
        threat_schema.validate(threat)
    got = Counter((t["package"]["name"], t["threat"]["target"]) for t in threats)
    assert got == expected_threats(detector, packages)
    for name, _, target in SQUATS:
        assert (name, target) in got
    # Table state is served by the worker
    state = table_states(worker, [("expresss", "npm")], "1.0.0")["expresss"]
    assert state["versions_seen"] == ["1.0.0"]
    assert state["last_threat"]["target"] == "express"
    assert worker.alive()

    assert worker.stop() == 0
    # ClickHouse: one row per valid event and per threat, threats joined to their event
    [events] = clickhouse_rows(settings, "SELECT count() AS n, uniqExact(event_id) AS ids FROM events FINAL")
    assert events == {"n": len(valid), "ids": len(valid)}
    rows = clickhouse_rows(
        settings,
        "SELECT t.name AS name, t.target AS target, e.verdict AS verdict FROM threats AS t FINAL "
        "INNER JOIN (SELECT event_id, verdict FROM events FINAL) AS e ON t.event_id = e.event_id",
    )
    assert Counter((r["name"], r["target"]) for r in rows) == got
    assert all(r["verdict"] in ("suspicious", "malicious") for r in rows)


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
def test_restart_mid_stream_loses_nothing_and_duplicates_no_rows(
    pipeline_settings: Settings, worker_factory: WorkerFactory, detector: Detector, stop_signal: int
) -> None:
    settings = pipeline_settings
    packages = [(name, registry) for name, registry, _ in SQUATS] + clean_names(1500, "restart")
    first = [publish(name, "1.0.0", registry, 1) for name, registry in packages]
    second = [publish(name, "2.0.0", registry, 2) for name, registry in packages]
    worker = worker_factory(settings)
    asyncio.run(produce(settings, first))
    wait_for(worker, lambda s: s["analysed"] >= 200)
    worker.stop(stop_signal)

    worker = worker_factory(settings)  # same data dir: RocksDB tables + committed offsets
    asyncio.run(produce(settings, second))
    total = len(first) + len(second)
    wait_for(worker, lambda s: s["clickhouse_events"] >= total, timeout_s=180)

    # Table state survived: versions from before the stop and after the restart
    states = table_states(worker, [(name, registry) for name, registry, _ in SQUATS], "2.0.0")
    for name, state in states.items():
        assert state["versions_seen"] == ["1.0.0", "2.0.0"], (name, state)
        assert state["first_seen"].startswith("2026-11-25T10:01")
        assert state["last_threat"] is not None
    threats = asyncio.run(consume_all(settings, settings.topic_threats))
    assert worker.stop() == 0

    expected = expected_threats(detector, packages)
    ids = Counter(t["id"] for t in threats)
    distinct = Counter(
        (t["package"]["name"], t["package"]["version"], t["threat"]["target"]) for t in threats
    )
    # every threat was emitted for both versions; re-deliveries (at-least-once) share an id
    assert set(distinct) == {(n, v, t) for (n, t) in expected for v in ("1.0.0", "2.0.0")}
    assert len(ids) == 2 * sum(expected.values())

    [counts] = clickhouse_rows(
        settings,
        "SELECT (SELECT count() FROM events FINAL) AS events,"
        " (SELECT uniqExact(event_id) FROM events) AS event_ids,"
        " (SELECT count() FROM threats FINAL) AS threats,"
        " (SELECT uniqExact(threat_id) FROM threats) AS threat_ids,"
        " (SELECT count() FROM events) AS raw_events, (SELECT count() FROM threats) AS raw_threats",
    )
    raw_events, raw_threats = counts.pop("raw_events"), counts.pop("raw_threats")
    assert counts == {"events": total, "event_ids": total, "threats": len(ids), "threat_ids": len(ids)}
    # no duplicate rows on disk either (not only after FINAL): the sink skips stored ids
    assert (raw_events, raw_threats) == (total, len(ids))
    print(
        f"\n[{signal.Signals(stop_signal).name}] sent={total} processed={counts['events']} dlq=0 "
        f"lost={total - counts['event_ids']} duplicate_rows={counts['events'] - counts['event_ids']} "
        f"threat_messages={len(threats)} redelivered={len(threats) - len(ids)} "
        f"raw_duplicate_rows(events,threats)=({raw_events - total},{raw_threats - len(ids)})"
    )


def test_the_table_is_rebuilt_from_its_changelog_when_the_local_store_is_lost(
    pipeline_settings: Settings, worker_factory: WorkerFactory
) -> None:
    """The packages agent writes the changelog itself (agents/stream/packages.py): Faust's recovery
    must rebuild the same state from it on a worker whose RocksDB is gone (a new machine)."""
    settings = pipeline_settings
    packages = [(name, registry) for name, registry, _ in SQUATS] + clean_names(300, "rebuild")
    first = [publish(name, "1.0.0", registry, 1) for name, registry in packages]
    worker = worker_factory(settings)
    asyncio.run(produce(settings, first))
    wait_for(worker, lambda s: s["clickhouse_events"] >= len(first))
    before = table_states(worker, packages, "1.0.0")
    assert worker.stop() == 0
    shutil.rmtree(settings.worker_dir)

    worker = worker_factory(settings)
    after = table_states(worker, packages, "1.0.0")
    assert after == before
    assert after["expresss"]["last_threat"]["target"] == "express"
    second = [publish(name, "2.0.0", registry, 2) for name, registry in packages]
    asyncio.run(produce(settings, second))
    wait_for(worker, lambda s: s["clickhouse_events"] >= len(first) + len(second))
    for name, state in table_states(worker, packages, "2.0.0").items():
        assert state["versions_seen"] == ["1.0.0", "2.0.0"], (name, state)
    assert worker.stop() == 0


def table_states(worker: WorkerProcess, packages: list[tuple[str, str]], version: str) -> dict[str, dict]:
    """Each package's table state once its last version is ``version`` (the packages agent runs
    apart from the sinks: the table may trail ClickHouse by a batch)."""
    deadline = time.monotonic() + 60
    states: dict[str, dict] = {}
    for name, registry in packages:
        while True:
            try:
                state = worker.get(f"/api/v1/package?registry={registry}&name={name}")
            except urllib.error.HTTPError as exc:
                if exc.code != 404:
                    raise
                state = {}
            if state.get("last_version") == version:
                states[name] = state
                break
            assert time.monotonic() < deadline, f"{name}: table state {state}"
            time.sleep(0.2)
    return states
