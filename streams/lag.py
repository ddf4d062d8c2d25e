"""Consumer lag per topic and partition, sampled every few seconds — never per message.

``typostream_consumer_lag{topic,partition}`` = high watermark − committed offset of each partition
this worker is assigned on the topics its agents consume. The high watermark is the one the last
fetch response carried (``consumer.highwater``; right on Tansu too, whose ListOffsets answer is not),
the committed offset Faust's own (the next offset a restarted consumer reads; before the first
commit, the position after the last message read). A partition not fetched yet is left out, and the
series of a partition revoked by a rebalance is removed.

Registered with one line in ``streams/app.py`` (:func:`register`).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, Final

from typostream.agents.adapters.metrics import CONSUMER_LAG

if TYPE_CHECKING:
    from typostream.streams.app import WorkerApp

__all__ = ["INTERVAL_S", "partition_lag", "register", "sample"]

INTERVAL_S: Final = 5.0
log = logging.getLogger("typostream.lag")


def partition_lag(highwater: int | None, committed: int | None, read: int | None) -> int | None:
    """Messages not committed yet; None when the high watermark is not known yet."""
    if highwater is None:
        return None
    consumed = committed if committed is not None else (read + 1 if read is not None else None)
    if consumed is None:
        return None
    return max(0, highwater - consumed)


def sample(
    consumer: Any, topics: Iterable[str], reported: set[tuple[str, int]]
) -> dict[tuple[str, int], int]:
    """Set the gauge for every assigned partition of ``topics``; drop series no longer assigned.

    ``reported`` (updated in place) holds the (topic, partition) series set by the previous sample.
    """
    wanted = set(topics)
    committed: Mapping[Any, int | None] = getattr(consumer, "_committed_offset", {})
    read: Mapping[Any, int | None] = getattr(consumer, "_read_offset", {})
    lags: dict[tuple[str, int], int] = {}
    for tp in consumer.assignment():
        if tp.topic not in wanted:
            continue
        try:
            highwater = consumer.highwater(tp)
        except Exception:  # consumer (re)starting: nothing to say about this partition now
            continue
        lag = partition_lag(highwater, committed.get(tp), read.get(tp))
        if lag is not None:
            lags[(tp.topic, tp.partition)] = lag
    for topic, partition in reported - set(lags):
        with contextlib.suppress(KeyError):
            CONSUMER_LAG.remove(topic, str(partition))
    for (topic, partition), lag in lags.items():
        CONSUMER_LAG.labels(topic, str(partition)).set(lag)
    reported.clear()
    reported.update(lags)
    return lags


def register(worker: WorkerApp, interval_s: float = INTERVAL_S) -> None:
    """Sample the lag of the worker's consumed topics every ``interval_s`` (a Faust timer)."""
    app, handles = worker.app, worker.topics
    topics = {name for handle in (handles.input, handles.analysed, handles.threats)
              for name in handle.topics}  # fmt: skip
    reported: set[tuple[str, int]] = set()

    @app.timer(interval_s, name="typostream.consumer_lag")
    async def consumer_lag() -> None:
        try:
            sample(app.consumer, topics, reported)
        except Exception:  # never let a metric take the timer (or the worker) down
            log.warning("consumer lag sample failed", exc_info=True)
