"""Agent ``detect``: validated events → name detectors and known-malicious lookup → threats topic,
package table, analysed topic."""

from __future__ import annotations

import logging
import time

import orjson
from faust import StreamT

from typostream.agents.adapters import metrics
from typostream.agents.domain.assess import Assessor
from typostream.agents.domain.errors import internal_error
from typostream.agents.domain.events import package_key
from typostream.agents.domain.messages import (
    analysed_message,
    threat_event,
    update_package_state,
    utc_now_iso,
    with_last_threat,
)
from typostream.agents.stream.context import StreamContext
from typostream.agents.stream.dlq import send_to_dlq

log = logging.getLogger("typostream.detect")


def register(ctx: StreamContext, assessor: Assessor) -> None:
    topics, packages = ctx.topics, ctx.tables.packages

    @ctx.app.agent(topics.events, name="detect")
    async def detect(stream: StreamT) -> None:
        # One event at a time: table writes go to the changelog partition of the current event.
        async for event in stream.events():
            value = event.value
            key = package_key(value["registry"], value["name"])  # == the message key, as str
            started = time.perf_counter()
            try:
                result = assessor.assess(value["name"], value["registry"], value["version"])
            except Exception as exc:  # a detector bug must not stall the partition
                log.exception("detector failed on %s", key)
                await send_to_dlq(topics.dlq, internal_error(exc), event.message, orjson.dumps(value))
                continue
            metrics.DETECT_SECONDS.observe(time.perf_counter() - started)
            detected_at = utc_now_iso()
            threats = [threat_event(value, t, detected_at) for t in result.threats]
            for threat in threats:
                await topics.threats.send(key=key, value=threat)
                metrics.THREATS_EMITTED.labels(threat["type"], threat["severity"]).inc()
            state = update_package_state(packages.get(key), value)
            packages[key] = with_last_threat(state, max(threats, key=_risk, default=None))
            await topics.analysed.send(key=key, value=analysed_message(value, result.verdict, result.threats))
            metrics.EVENTS_ANALYSED.labels(result.verdict).inc()


def _risk(threat: dict) -> int:
    return int(threat["threat"]["risk_score"])
