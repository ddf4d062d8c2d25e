"""Alert sink: threats at or above each target's minimum severity, POSTed to webhooks and Slack.

Per batch, every (threat, target) pair that passes the target's severity floor and is not in the
sent-alert store is delivered — targets in parallel, each target's alerts in order through its
token bucket — and recorded in the store right after the 2xx. So a batch retried after a crash or
a transient error, a threat re-delivered by the topic (at least once) or re-detected from a
replayed event (same id) reaches each target once (bound: the store's TTL/size, see
``alerts.sent``).

A pair that cannot be delivered (a 4xx other than 429, or ``max_attempts`` used up) does not stall
the stream: the batch raises :class:`InvalidRowError`, the sink agent writes the records one by
one, and the failed record raises :class:`UndeliverableAlertError` again (remembered, no new
attempts), which is dead-lettered with reason ``undeliverable``; the other targets keep what they
got. A record that is no threat event is rejected as a plain ``InvalidRowError``. Store errors
(disk, Redis) propagate as transient: the batch is retried, nothing is resent.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Final

import orjson

from typostream.agents.adapters.alerts.delivery import Delivery, DeliveryResult
from typostream.agents.adapters.alerts.format import sample_threat, slack_message, webhook_body
from typostream.agents.adapters.alerts.ratelimit import TokenBucket
from typostream.agents.adapters.alerts.sent import SentStore
from typostream.agents.adapters.alerts.targets import Target
from typostream.agents.adapters.http import LazySession
from typostream.agents.adapters.sinks.base import Sink, StreamName
from typostream.agents.domain.errors import InvalidRowError, UndeliverableAlertError
from typostream.agents.domain.vocabulary import at_least

__all__ = ["AlertOutcome", "AlertSink", "TargetCheck"]

log = logging.getLogger("typostream.alerts")
MAX_IN_FLIGHT_PER_TARGET: Final = 4
_REMEMBERED_FAILURES: Final = 10_000


@dataclass
class AlertOutcome:
    """What happened to one record of a batch."""

    threat_id: str
    delivered: list[str] = field(default_factory=list)
    """Labels of the targets it was POSTed to now."""
    duplicate: list[str] = field(default_factory=list)
    """Targets that had it already (the sent-alert store)."""
    below_severity: list[str] = field(default_factory=list)
    error: InvalidRowError | None = None
    """``UndeliverableAlertError`` (a target refused it or gave up) or ``InvalidRowError`` (no threat)."""


@dataclass(frozen=True)
class TargetCheck:
    """``typostream alerts test``: one target's answer to the test alert."""

    target: Target
    result: DeliveryResult


class AlertSink(Sink):
    id: ClassVar[str] = "alerts"
    streams: ClassVar[tuple[StreamName, ...]] = ("threats",)

    def __init__(
        self,
        targets: Sequence[Target],
        store: SentStore,
        *,
        max_attempts: int = 8,
        backoff_s: float = 1.0,
        timeout_s: float = 10.0,
        rate_per_s: float = 1.0,
        burst: int = 5,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if not targets:
            raise ValueError("AlertSink needs at least one target")
        self.targets = tuple(targets)
        self.store = store
        self._http = LazySession(timeout_s, {})
        self.delivery = Delivery(
            max_attempts=max_attempts,
            backoff_s=backoff_s,
            timeout_s=timeout_s,
            session=self._http.get,
            sleep=sleep,
        )
        self._buckets = {t.label: TokenBucket(rate_per_s, burst, sleep=sleep) for t in self.targets}
        self._in_flight: dict[str, asyncio.Semaphore] = {}
        self._failures: OrderedDict[str, UndeliverableAlertError] = OrderedDict()

    def __repr__(self) -> str:
        return f"AlertSink({', '.join(t.shown for t in self.targets)}, store={self.store!r})"

    # --- Sink -----------------------------------------------------------------------------------
    def ensure_schema(self) -> None:
        self.store.open()

    async def write(self, stream: StreamName, records: Sequence[Mapping[str, Any]]) -> None:
        if len(records) == 1:
            remembered = self._failures.pop(str(_threat_id(records[0])), None)
            if remembered is not None:  # the agent's one-by-one pass after a failed batch
                raise remembered
        outcomes = await self.deliver(records)
        errors = [o for o in outcomes if o.error is not None]
        if not errors:
            return
        if len(records) == 1:
            assert errors[0].error is not None
            raise errors[0].error
        for outcome in errors:
            if isinstance(outcome.error, UndeliverableAlertError):
                self._remember(outcome.threat_id, outcome.error)
        raise InvalidRowError(f"{len(errors)} of {len(records)} alert(s) failed; first: {errors[0].error}")

    async def close(self) -> None:
        await self._http.close()
        await self.store.close()

    # --- delivery -------------------------------------------------------------------------------
    async def deliver(
        self, records: Sequence[Mapping[str, Any]], raws: Sequence[bytes | None] | None = None
    ) -> list[AlertOutcome]:
        """Deliver a batch; one outcome per record, in order. Raises only on store errors (transient).

        ``raws``: the records' bytes as on the topic (webhook bodies then are exactly those bytes).
        """
        outcomes: list[AlertOutcome] = []
        jobs: list[tuple[AlertOutcome, Target, str, bytes]] = []
        first: dict[str, AlertOutcome] = {}
        for i, record in enumerate(records):
            threat_id = _threat_id(record)
            severity = record.get("severity") if isinstance(record, Mapping) else None
            if not isinstance(threat_id, str) or not threat_id or not isinstance(severity, str):
                outcome = AlertOutcome(str(threat_id or ""))
                outcome.error = InvalidRowError(f"record {i} is not a threat event (no id/severity)")
                outcomes.append(outcome)
                continue
            if threat_id in first:  # the same threat twice in one batch: one delivery
                outcomes.append(first[threat_id])
                continue
            outcome = first[threat_id] = AlertOutcome(threat_id)
            outcomes.append(outcome)
            raw = raws[i] if raws is not None else None
            for target in self.targets:
                if not at_least(severity, target.min_severity):
                    outcome.below_severity.append(target.label)
                    continue
                key = f"{target.key}:{threat_id}"
                if await self.store.seen(key):
                    outcome.duplicate.append(target.label)
                    continue
                jobs.append((outcome, target, key, self._body(target, record, raw)))
        sends = [self._deliver_one(target, key, body, job.threat_id) for job, target, key, body in jobs]
        results = await asyncio.gather(*sends, return_exceptions=True)
        transient: BaseException | None = None
        for (outcome, target, _key, _body), result in zip(jobs, results, strict=True):
            if isinstance(result, BaseException):
                transient = transient or result
            elif result.delivered:
                outcome.delivered.append(target.label)
            else:
                message = f"alert {outcome.threat_id} to {target.shown}: {result.detail}"
                log.error("undeliverable %s", message)
                if isinstance(outcome.error, UndeliverableAlertError):  # several targets failed: name all
                    message = f"{outcome.error.detail}; {message}"
                outcome.error = UndeliverableAlertError(message)
        if transient is not None:
            raise transient
        return outcomes

    def _body(self, target: Target, record: Mapping[str, Any], raw: bytes | None) -> bytes:
        if target.kind == "slack":
            return orjson.dumps(slack_message(record))
        return webhook_body(record, raw)

    async def _deliver_one(self, target: Target, key: str, body: bytes, threat_id: str) -> DeliveryResult:
        in_flight = self._in_flight.setdefault(target.label, asyncio.Semaphore(MAX_IN_FLIGHT_PER_TARGET))
        async with in_flight:

            def retrying(attempt: int, detail: str, delay: float) -> None:
                log.warning(
                    "alert %s to %s: %s; retry %d/%d in %.1fs",
                    threat_id, target.shown, detail, attempt + 1, self.delivery.max_attempts, delay,
                )  # fmt: skip

            result = await self.delivery.post(
                target, body, threat_id, self._buckets[target.label], on_retry=retrying
            )
        if result.delivered:
            await self.store.add(key)
        return result

    def _remember(self, threat_id: str, error: UndeliverableAlertError) -> None:
        self._failures.pop(threat_id, None)
        self._failures[threat_id] = error
        while len(self._failures) > _REMEMBERED_FAILURES:
            self._failures.popitem(last=False)

    async def send_test(self, max_attempts: int = 1) -> list[TargetCheck]:
        """POST one test alert (``metadata.test``) to every target, bypassing severity and de-duplication."""
        threat = sample_threat()
        bodies = [self._body(t, threat, None) for t in self.targets]
        checks = await asyncio.gather(
            *(
                self.delivery.post(t, body, threat["id"], self._buckets[t.label], max_attempts=max_attempts)
                for t, body in zip(self.targets, bodies, strict=True)
            )
        )
        return [TargetCheck(t, r) for t, r in zip(self.targets, checks, strict=True)]


def _threat_id(record: Any) -> Any:
    return record.get("id") if isinstance(record, Mapping) else None
