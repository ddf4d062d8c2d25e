"""Agent ``detect``: validated events → name detectors and known-malicious lookup → threats topic,
package table, analysed topic."""

from __future__ import annotations

import asyncio
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
from typostream.agents.stream.dlq import halt, release, send_to_dlq

log = logging.getLogger("typostream.detect")


def register(ctx: StreamContext, assessor: Assessor) -> None:
    app, topics, packages = ctx.app, ctx.topics, ctx.tables.packages

    @app.agent(topics.events, name="detect")
    async def detect(stream: StreamT) -> None:
        # One event at a time: table writes go to the changelog partition of the current event.
        # The stream acks an event when the loop moves on or is left (also on an exception), so
        # each one is handled or dead-lettered, and a send that fails halts the worker (dlq.py).
        async for event in stream.events():
            value = event.value
            try:
                try:
                    key = package_key(value["registry"], value["name"])  # == the message key, as str
                    started = time.perf_counter()
                    result = assessor.assess(value["name"], value["registry"], value["version"])
                    metrics.DETECT_SECONDS.observe(time.perf_counter() - started)
                    detected_at = utc_now_iso()
                    threats = [threat_event(value, t, detected_at) for t in result.threats]
                    state = update_package_state(packages.get(key), value)
                    state = with_last_threat(state, max(threats, key=_risk, default=None))
                    analysed = analysed_message(value, result.verdict, result.threats)
                except Exception as exc:  # a detector bug or a malformed event must not stall the partition
                    log.exception("detect failed on %s[%s]@%s", event.message.topic, event.message.partition,
                                  event.message.offset)  # fmt: skip
                    await send_to_dlq(topics.dlq, internal_error(exc), event.message, orjson.dumps(value))
                    continue
                metrics.count_scanned(value["registry"])
                for threat in threats:
                    await topics.threats.send(key=key, value=threat)
                    metrics.THREATS_EMITTED.labels(threat["type"], threat["severity"]).inc()
                    metrics.observe_threat(threat, value)  # technique, target, publish → threat latency
                packages[key] = state
                await topics.analysed.send(key=key, value=analysed)
            except asyncio.CancelledError:
                release([event])
                raise
            except Exception as exc:  # the DLQ or an output topic refused a send
                await halt(app, [stream], topics.events, [event], exc)
                return
            metrics.EVENTS_ANALYSED.labels(result.verdict).inc()


def _risk(threat: dict) -> int:
    return int(threat["threat"]["risk_score"])
