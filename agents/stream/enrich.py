"""Agent ``enrich`` (opt-in): fetch each version's registry metadata and scan what it contains.

Install scripts and descriptions are matched against the Aho-Corasick pattern set; findings go to
the threats topic like any other threat. Metadata comes through the multi-level cache (in-process
L1 → Redis L2 → registry HTTP), so replays and repeated versions don't hit the registry again.
Enrichment is best effort: a registry outage is counted and logged, never blocks detection (which
runs in ``detect``, before: this agent reads the analysed events, keyed by package). An event
enrichment chokes on (a bug) is dead-lettered; a threat that cannot be sent halts the worker
without committing (see ``dlq.py``).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import orjson
from faust import StreamT

from typostream.agents.adapters import metrics
from typostream.agents.adapters.cache import MultiLevelCache
from typostream.agents.adapters.registry import RegistryClient
from typostream.agents.domain.content import analyse
from typostream.agents.domain.errors import TypostreamError, internal_error
from typostream.agents.domain.events import package_key
from typostream.agents.domain.messages import threat_event, utc_now_iso
from typostream.agents.domain.metadata import PackageMetadata
from typostream.agents.domain.patterns import PatternSet
from typostream.agents.stream.batches import json_value
from typostream.agents.stream.context import StreamContext
from typostream.agents.stream.dlq import halt, release, send_to_dlq

log = logging.getLogger("typostream.enrich")


def register(
    ctx: StreamContext,
    client: RegistryClient,
    cache: MultiLevelCache,
    patterns: PatternSet,
    concurrency: int,
) -> None:
    app, topics = ctx.app, ctx.topics
    actors: set[StreamT] = set()  # one stream per concurrent actor: a halt stops them all

    async def fetch(registry: str, name: str, version: str) -> PackageMetadata | None:
        async def load() -> object:
            return await client.fetch(registry, name, version)

        try:
            return await cache.get_or_load(
                "metadata", f"{registry}:{name}@{version}", load, decode=PackageMetadata.from_dict
            )
        except TypostreamError as exc:  # registry down, unknown version...: best effort, skip it
            metrics.ENRICH_FAILURES.labels(type(exc).__name__).inc()
            log.warning("no metadata for %s %s@%s: %s", registry, name, version, exc)
            return None

    # Ordering doesn't matter here and the work is I/O: several events in flight per worker.
    @app.agent(topics.analysed, name="enrich", concurrency=concurrency)
    async def enrich(stream: StreamT) -> None:
        actors.add(stream)
        async for event in stream.events():
            try:
                try:
                    value = json_value(event)
                    registry, name, version = value["registry"], value["name"], value["version"]
                    metadata = await fetch(registry, name, version)
                    if metadata is None:
                        continue
                    key = package_key(registry, name)
                    detected_at = utc_now_iso()
                    threats = [threat_event(value, f, detected_at) for f in analyse(metadata, patterns)]
                except Exception as exc:  # a bug, or a malformed event: dead-letter it, go on
                    log.exception("enrich failed on %s[%s]@%s", event.message.topic, event.message.partition,
                                  event.message.offset)  # fmt: skip
                    await send_to_dlq(topics.dlq, internal_error(exc), event.message)
                    continue
                for threat in threats:
                    await topics.threats.send(key=key.encode(), value=orjson.dumps(threat))
                    metrics.THREATS_EMITTED.labels(threat["type"], threat["severity"]).inc()
                    metrics.observe_threat(threat, value)  # technique, target, publish → threat latency
            except asyncio.CancelledError:
                release([event])
                raise
            except Exception as exc:  # the DLQ or the threats topic refused a send
                await halt(app, actors, topics.analysed, [event], exc)
                return

    @app.on_before_shutdown.connect
    async def close_enrichment(app: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
        await client.close()
        await cache.close()
