"""Known-malicious lookups and registry-metadata enrichment in a real worker.

The worker fetches metadata over HTTP from a local fixture registry (127.0.0.1), through the
multi-level cache backed by the embedded stack's real redis-server.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator

import pytest

from tests.agents.enrichment.fixture_registry import make_app
from tests.integration.conftest import WorkerFactory, consume_all, produce, publish, serve_in_thread, wait_for
from typostream.streams.config import Settings

pytestmark = pytest.mark.integration


@pytest.fixture
def fixture_registry() -> Iterator[str]:
    """The fixture npm/PyPI registry served from a background thread; yields its base URL."""
    with serve_in_thread(make_app()) as url:
        yield url


def test_known_malicious_and_install_script_patterns_become_threats(
    pipeline_settings: Settings, worker_factory: WorkerFactory, fixture_registry: str
) -> None:
    settings = pipeline_settings.replace(
        registry_metadata=True, npm_registry_url=fixture_registry, pypi_url=fixture_registry
    )
    worker = worker_factory(settings)
    # crossenv: in the bundled known-malicious seed, and its fixture preinstall exfiltrates env vars;
    # left-pad: benign metadata; does-not-exist: the registry answers 404.
    events = [
        publish("crossenv", "6.1.1", "npm"),
        publish("left-pad", "1.3.0", "npm"),
        publish("does-not-exist", "1.0.0", "npm"),
    ]
    asyncio.run(produce(settings, events))
    wait_for(worker, lambda s: s["clickhouse_events"] >= len(events))
    asyncio.run(asyncio.sleep(1.0))  # enrichment runs beside detection; give its sends a moment
    threats = asyncio.run(consume_all(settings, settings.topic_threats))
    by_type: dict[str, set[tuple[str, str]]] = {}
    for threat in threats:
        by_type.setdefault(threat["type"], set()).add(
            (threat["package"]["name"], threat["threat"]["technique"])
        )
    assert ("crossenv", "known_malicious") in by_type["malicious_package"]
    suspicious = by_type.get("suspicious_pattern", set())
    assert {name for name, _ in suspicious} == {"crossenv"}
    assert any(technique.startswith("install_script.") for _, technique in suspicious)
    cache = {
        tuple(re.findall(r'(level|result)="(\w+)"', line)): float(line.rsplit(" ", 1)[1])
        for line in worker_metrics(worker).splitlines()
        if line.startswith('typostream_cache_requests_total{cls="metadata"')
    }
    # three first-time lookups miss L1 and Redis; the registry found two and answered 404 once
    assert cache[(("level", "l1"), ("result", "miss"))] == 3
    assert cache[(("level", "l2"), ("result", "miss"))] == 3
    assert cache[(("level", "l3"), ("result", "hit"))] == 2
    assert cache[(("level", "l3"), ("result", "miss"))] == 1
    assert worker.stop() == 0


def worker_metrics(worker: object) -> str:
    import urllib.request

    with urllib.request.urlopen(f"{worker.base_url}/metrics", timeout=5) as response:  # type: ignore[attr-defined]
        return response.read().decode()
