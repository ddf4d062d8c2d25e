"""The context-aware score in a real worker: detect's name threat, the packages table's history and
the registry metadata (from a local fixture registry, through the cache on the embedded Redis)
combined into one threat whose evidence lists every signal, on the threats topic and in ClickHouse."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from aiohttp import web
from jsonschema import Draft202012Validator

from tests.agents.domain.context.context_registry import HITS, make_app
from tests.integration.conftest import (
    WorkerFactory,
    clickhouse_rows,
    consume_all,
    produce,
    publish,
    serve_in_thread,
    wait_for,
)
from typostream.schemas import load_json_schema
from typostream.streams.config import Settings

pytestmark = pytest.mark.integration


@pytest.fixture
def context_registry() -> Iterator[tuple[str, web.Application]]:
    """The context fixture registry served from a background thread: (base URL, its app)."""
    app = make_app()
    with serve_in_thread(app) as url:
        yield url, app


def test_context_threats_list_every_signal(
    pipeline_settings: Settings, worker_factory: WorkerFactory, context_registry: tuple[str, web.Application]
) -> None:
    base, registry_app = context_registry
    settings = pipeline_settings.replace(registry_metadata=True, npm_registry_url=base, pypi_url=base)
    worker = worker_factory(settings)
    events = [
        publish("lodahs", "4.17.21", "npm", minute=1),  # typosquat; lodash's description and repository
        publish("acme-internal-auth", "99.0.0", "npm", minute=2),  # dependency-confusion placeholder
        publish("reqeusts-toolbelt", "1.0.0", "pypi", minute=3),  # typosquat; sdist only, nothing said
        publish("tiny-date-fmt", "1.0.0", "npm", minute=4),  # a legitimate first release
        # benign metadata (not left-pad: the session's Redis is shared, and other tests count its lookups)
        publish("express", "4.18.2", "npm", minute=5),
    ]
    asyncio.run(produce(settings, events))
    wait_for(worker, lambda s: s["clickhouse_events"] >= len(events))
    expected = {"lodahs", "acme-internal-auth", "reqeusts-toolbelt"}

    def context_threats() -> dict[str, dict]:
        threats = asyncio.run(consume_all(settings, settings.topic_threats, timeout_s=2.0))
        return {t["package"]["name"]: t for t in threats if t["threat"]["technique"] == "context"}

    found: dict[str, dict] = {}
    for _ in range(20):  # enrichment runs beside detection: give its sends a moment
        found = context_threats()
        if set(found) >= expected:
            break
        asyncio.run(asyncio.sleep(0.5))
    assert set(found) == expected, found  # nothing for the legitimate first release nor express

    validate = Draft202012Validator(load_json_schema("threat_event")).validate
    for threat in found.values():
        validate(threat)
        signals = threat["threat"]["signals"]
        assert len(threat["threat"]["evidence"]) == 1 + len(signals)
        assert threat["severity"] == "critical"

    squat = found["lodahs"]
    assert (squat["type"], squat["threat"]["target"]) == ("typosquat", "lodash")
    assert {s["kind"] for s in squat["threat"]["signals"]} == {
        "history.first_release",  # the registry's packument (the table had no earlier version)
        "install_script.hook",
        "description.copied",
        "repository.target_repository",
    }
    placeholder = found["acme-internal-auth"]
    assert (placeholder["type"], placeholder["threat"]["target"]) == (
        "dependency_confusion",
        "acme-internal-auth",
    )
    weights = {s["kind"]: s["weight"] for s in placeholder["threat"]["signals"]}
    assert weights["version.nines"] == 0.0  # counted once, by detect, in the name threat's severity
    assert weights["install_script.hook"] > 0 and weights["history.first_release"] > 0
    pypi = found["reqeusts-toolbelt"]
    assert {s["kind"] for s in pypi["threat"]["signals"]} == {
        "history.first_release",
        "install_script.sdist_only",
        "description.empty",
        "repository.missing",
    }
    # the target's latest metadata was asked for once per target; no history for the benign packages
    hits = registry_app[HITS]
    assert hits["/lodash/latest"] == 1 and hits["/lodahs"] == 1
    assert hits["/tiny-date-fmt"] == 0 and hits["/express"] == 0 and hits["/express/4.18.2"] == 1

    # ClickHouse keeps the signals in the threats table's evidence column
    wait_for(worker, lambda s: (s.get("clickhouse_threats") or 0) >= 6)
    assert worker.stop() == 0
    rows = clickhouse_rows(
        settings, "SELECT name, evidence FROM threats FINAL WHERE technique = 'context' ORDER BY name"
    )
    assert [r["name"] for r in rows] == sorted(expected)
    assert all("install_script." in r["evidence"] for r in rows)
