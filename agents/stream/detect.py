"""Agent ``detect``: raw ``registry.publish`` → validate → name detectors and known-malicious lookup →
threats, analysed events (keyed by package) or the DLQ, in batches.

Validation and detection run in one agent over the input topic: neither needs state, so the input
does not have to be keyed first, and the threats are one topic hop from the publish. What needs the
package key is the ``packages`` table: it is fed from the analysed topic, which is keyed by package
(``packages.py``); the threat the table keeps (the riskiest of the event's) rides along in the
:data:`LAST_THREAT_HEADER` header of the analysed record, so no second topic has to be joined.

Batches: :func:`~.batches.take_batches` gives what is queued, up to :data:`BATCH` messages, without
waiting for more (:data:`BATCH_WAIT_S` = 0: the delivery round trip at the end of a batch is its only
fixed cost, and what arrives meanwhile makes the next batch, so batches grow with the load and a
lone publish is not held back: measured at 1k events/s, a 5 ms window cost ~5 ms at the median and
no throughput). Every record is queued on the producer as the batch is processed and the
deliveries are awaited once at its end (``outbox.py``); the batch is acked when the loop body is
done with it, so only once all its records are in Kafka. A
message's own problem (invalid input, a detector bug) dead-letters that message; a send or a dead
letter that fails halts the worker with the whole batch unhandled (``dlq.py``), so none of it is
committed and all of it comes again after the restart.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Sequence

import orjson
from faust import StreamT
from faust.types import EventT

from typostream.agents.adapters import metrics
from typostream.agents.domain.assess import Assessor
from typostream.agents.domain.errors import InvalidEventError, internal_error
from typostream.agents.domain.events import parse_publish
from typostream.agents.domain.messages import (
    analysed_message,
    event_message,
    threat_event,
    utc_now_iso,
    with_last_threat,
)
from typostream.agents.stream.batches import take_batches
from typostream.agents.stream.context import StreamContext
from typostream.agents.stream.dlq import halt, release
from typostream.agents.stream.outbox import Outbox

log = logging.getLogger("typostream.detect")

BATCH = 1000
BATCH_WAIT_S = 0.0
LAST_THREAT_HEADER = "typostream-last-threat"
"""Header of an analysed record whose event has threats: the table's ``last_threat`` for it (JSON)."""


def register(ctx: StreamContext, assessor: Assessor, max_bytes: int) -> None:
    app, topics = ctx.app, ctx.topics
    names = Names(
        analysed=topics.analysed.get_topic_name(),
        threats=topics.threats.get_topic_name(),
        dlq=topics.dlq.get_topic_name(),
    )

    @app.agent(topics.input, name="detect")
    async def detect(stream: StreamT) -> None:
        async for batch in take_batches(stream, BATCH, BATCH_WAIT_S):
            outbox = Outbox(app)
            try:
                valid, verdicts = await process(batch, assessor, max_bytes, names, outbox)
                await outbox.flush()
            except asyncio.CancelledError:
                release(batch)
                raise
            except Exception as exc:  # the producer refused a record, or a delivery failed
                await halt(app, [stream], topics.input, batch, exc)
                return
            count(valid, verdicts)


class Names:
    """The output topics' names (what ``app.producer.send`` takes)."""

    __slots__ = ("analysed", "dlq", "threats")

    def __init__(self, analysed: str, threats: str, dlq: str) -> None:
        self.analysed, self.threats, self.dlq = analysed, threats, dlq


async def process(
    batch: Sequence[EventT], assessor: Assessor, max_bytes: int, names: Names, outbox: Outbox
) -> tuple[int, list[str]]:
    """Queue the records of every message of ``batch`` on ``outbox``: (valid messages, verdicts)."""
    now = utc_now_iso()  # received and detected: one clock reading per batch
    send, dumps, assess, observe = outbox.send, orjson.dumps, assessor.assess, metrics.DETECT_SECONDS.observe
    verdicts: list[str] = []
    valid = 0
    for event in batch:
        message = event.message
        try:
            publish = parse_publish(message.value, max_bytes)
        except Exception as exc:  # invalid input, or a bug: dead-letter it either way
            error = exc if isinstance(exc, InvalidEventError) else internal_error(exc)
            await outbox.dead_letter(names.dlq, error, message)
            continue
        valid += 1
        try:
            value = event_message(publish, message.partition, message.offset, now)
            started = time.perf_counter()
            result = assess(publish.name, publish.registry, publish.version)
            observe(time.perf_counter() - started)
            threats = [threat_event(value, t, now) for t in result.threats]
            analysed = analysed_message(value, result.verdict, result.threats)
            key = publish.key.encode()
        except Exception as exc:  # a detector bug must not stall the partition
            log.exception("detect failed on %s[%s]@%s", message.topic, message.partition, message.offset)
            await outbox.dead_letter(names.dlq, internal_error(exc), message)
            continue
        headers = None
        if threats:
            for threat in threats:
                await send(names.threats, key, dumps(threat))
                metrics.count_threat(threat["type"], threat["severity"])
                metrics.observe_threat(threat, value)  # technique, target, publish → threat latency
            last = with_last_threat({}, max(threats, key=_risk))["last_threat"]
            headers = [(LAST_THREAT_HEADER, dumps(last))]
        await send(names.analysed, key, dumps(analysed), headers)
        verdicts.append(result.verdict)
        metrics.count_scanned(publish.registry)
    return valid, verdicts


def count(valid: int, verdicts: Sequence[str]) -> None:
    if valid:
        metrics.EVENTS_VALIDATED.inc(valid)
    if verdicts:
        for verdict, n in Counter(verdicts).items():
            metrics.EVENTS_ANALYSED.labels(verdict).inc(n)


def _risk(threat: dict) -> int:
    return int(threat["threat"]["risk_score"])
