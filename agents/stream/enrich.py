"""Agent ``enrich`` (opt-in): fetch each version's registry metadata and scan what it contains.

Install scripts and descriptions are matched against the Aho-Corasick pattern set; findings go to
the threats topic like any other threat. The metadata is also publish context
(``domain.context``): its detectors (install hook on a first release, empty or copied description,
repository mismatch, new maintainer, plus the version pattern and the release history) are combined
with the event's name threat (the riskiest, which ``detect`` hands on in the analysed record's
``typostream-last-threat`` header) into one score; when that raises the event's severity, a threat
of technique ``context`` listing every signal is emitted. The history is the ``packages`` table's
(None in a process without tables: skipped) and, when it has no earlier version and a first release
would matter, the registry's (``fetch_history``); a name threat's target is compared with its
latest metadata (``fetch_latest``). Both are cached like the metadata (classes ``history``,
``target``).

Metadata comes through the multi-level cache (in-process L1 → Redis L2 → registry HTTP), so
replays and repeated versions don't hit the registry again. Enrichment is best effort: a registry
outage is counted and logged, never blocks detection (which runs in ``detect``, before: this agent
reads the analysed events, keyed by package). An event enrichment chokes on (a bug) is
dead-lettered; a threat that cannot be sent halts the worker without committing (see ``dlq.py``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace
from typing import Any, TypeVar

import orjson
from faust import StreamT
from faust.types import EventT

from typostream.agents.adapters import metrics
from typostream.agents.adapters.cache import MultiLevelCache
from typostream.agents.adapters.registry import RegistryClient
from typostream.agents.domain.content import Finding, analyse
from typostream.agents.domain.context import (
    NameEvidence,
    PublishContext,
    SeenHistory,
    judge,
    needs_history,
    run_detectors,
)
from typostream.agents.domain.errors import TypostreamError, internal_error
from typostream.agents.domain.events import package_key
from typostream.agents.domain.messages import threat_event, utc_now_iso
from typostream.agents.domain.metadata import PackageHistory, PackageMetadata
from typostream.agents.domain.patterns import PatternSet
from typostream.agents.domain.vocabulary import max_severity
from typostream.agents.stream.batches import json_value
from typostream.agents.stream.context import StreamContext
from typostream.agents.stream.detect import LAST_THREAT_HEADER
from typostream.agents.stream.dlq import halt, release, send_to_dlq

log = logging.getLogger("typostream.enrich")
T = TypeVar("T")


def register(
    ctx: StreamContext,
    client: RegistryClient,
    cache: MultiLevelCache,
    patterns: PatternSet,
    concurrency: int,
) -> None:
    app, topics, packages = ctx.app, ctx.topics, ctx.tables.packages
    actors: set[StreamT] = set()  # one stream per concurrent actor: a halt stops them all

    async def cached(cls: str, key: str, load: Callable[[], Awaitable[T | None]], decode: Any) -> T | None:
        try:
            value: T | None = await cache.get_or_load(cls, key, load, decode=decode)
            return value
        except TypostreamError as exc:  # registry down, unknown version...: best effort, skip it
            metrics.ENRICH_FAILURES.labels(type(exc).__name__).inc()
            log.warning("no %s for %s: %s", cls, key, exc)
            return None

    async def fetch(registry: str, name: str, version: str) -> PackageMetadata | None:
        return await cached(
            "metadata",
            f"{registry}:{name}@{version}",
            lambda: client.fetch(registry, name, version),
            PackageMetadata.from_dict,
        )

    async def in_context(
        event: EventT, value: dict[str, Any], metadata: PackageMetadata, findings: list[Finding]
    ) -> Finding | None:
        """The context threat of a publish, or None when its context raises nothing."""
        so_far = max_severity([value.get("max_severity") or "", *(f.severity for f in findings)])
        if so_far == "critical":
            return None  # nothing left to raise
        registry, name, version = value["registry"], value["name"], value["version"]
        evidence = NameEvidence.from_last_threat(last_threat(event))
        seen = None
        if packages is not None:  # this event's partition is the package's (both keyed by package)
            seen = SeenHistory.from_state(packages.get(package_key(registry, name)), version)
        imitated = evidence.target if evidence is not None and evidence.target != name else None
        target = None
        if imitated is not None:
            target = await cached(
                "target",
                f"{registry}:{imitated}",
                lambda: client.fetch_latest(registry, imitated),
                PackageMetadata.from_dict,
            )
        context = PublishContext(
            registry, name, version, value.get("created_date"), imitated, metadata, target, None, seen
        )
        run = run_detectors(context)
        if needs_history(context, evidence, run.signals):
            history = await cached(
                "history",
                f"{registry}:{name}@{version}",
                lambda: client.fetch_history(registry, name),
                PackageHistory.from_dict,
            )
            if history is not None:
                context = replace(context, history=history)
                run = run_detectors(context)
        for detector, error in run.errors.items():
            log.error("context detector %s failed on %s %s@%s: %s", detector, registry, name, version, error)
        return judge(context, run.signals, evidence, so_far, run.errors).threat

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
                    findings = analyse(metadata, patterns)
                    contextual = await in_context(event, value, metadata, findings)
                    if contextual is not None:
                        findings.append(contextual)
                    threats = [threat_event(value, f, detected_at) for f in findings]
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


def last_threat(event: EventT) -> Mapping[str, Any] | None:
    """The riskiest threat ``detect`` found for the event (its analysed record's header), if any."""
    headers: Any = event.message.headers or ()
    for name, header in headers.items() if isinstance(headers, Mapping) else headers:
        if name == LAST_THREAT_HEADER:
            try:
                value = orjson.loads(header)
            except orjson.JSONDecodeError:  # a damaged header costs the name evidence, not the event
                log.warning("unreadable %s header at offset %s", LAST_THREAT_HEADER, event.message.offset)
                return None
            return value if isinstance(value, Mapping) else None
    return None
