"""Agent ``enrich`` (opt-in): fetch each version's registry metadata and scan what it contains.

Install scripts and descriptions are matched against the Aho-Corasick pattern set; findings go to
the threats topic like any other threat. Metadata comes through the multi-level cache (in-process
L1 → Redis L2 → registry HTTP), so replays and repeated versions don't hit the registry again.
Enrichment is best effort: a registry outage is counted and logged, never blocks detection (which
runs in ``detect``, on the same events, independently).
"""

from __future__ import annotations

import logging
from typing import Any

from faust import StreamT

from typostream.agents.adapters import metrics
from typostream.agents.adapters.cache import MultiLevelCache
from typostream.agents.adapters.registry import RegistryClient
from typostream.agents.domain.content import analyse
from typostream.agents.domain.errors import TypostreamError
from typostream.agents.domain.events import package_key
from typostream.agents.domain.messages import threat_event, utc_now_iso
from typostream.agents.domain.metadata import PackageMetadata
from typostream.agents.domain.patterns import PatternSet
from typostream.agents.stream.context import StreamContext

log = logging.getLogger("typostream.enrich")


def register(
    ctx: StreamContext,
    client: RegistryClient,
    cache: MultiLevelCache,
    patterns: PatternSet,
    concurrency: int,
) -> None:
    topics = ctx.topics

    # Ordering doesn't matter here and the work is I/O: several events in flight per worker.
    @ctx.app.agent(topics.events, name="enrich", concurrency=concurrency)
    async def enrich(stream: StreamT) -> None:
        async for value in stream:
            registry, name, version = value["registry"], value["name"], value["version"]

            async def fetch(registry: str = registry, name: str = name, version: str = version) -> object:
                return await client.fetch(registry, name, version)

            try:
                metadata = await cache.get_or_load(
                    "metadata", f"{registry}:{name}@{version}", fetch, decode=PackageMetadata.from_dict
                )
            except TypostreamError as exc:
                metrics.ENRICH_FAILURES.labels(type(exc).__name__).inc()
                log.warning("no metadata for %s %s@%s: %s", registry, name, version, exc)
                continue
            detected_at = utc_now_iso()
            for finding in analyse(metadata, patterns):
                threat = threat_event(value, finding, detected_at)
                await topics.threats.send(key=package_key(registry, name), value=threat)
                metrics.THREATS_EMITTED.labels(threat["type"], threat["severity"]).inc()

    @ctx.app.on_before_shutdown.connect
    async def close_enrichment(app: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
        await client.close()
        await cache.close()
