"""A Faust monitor without per-message bookkeeping.

Faust's default Monitor records every message in, stream event in/out, send and table access in
Python dicts and deques (for its own /stats pages, which typostream does not serve). typostream
exports its own Prometheus metrics instead, so the per-message hooks are no-ops here; rebalance,
commit and offset tracking (which Faust's consumer calls into) are kept.
"""

from __future__ import annotations

from typing import Any

from faust.sensors.monitor import Monitor


class LeanMonitor(Monitor):
    def on_message_in(self, *args: Any, **kwargs: Any) -> None:
        return None

    def on_stream_event_in(self, *args: Any, **kwargs: Any) -> None:
        return None

    def on_stream_event_out(self, *args: Any, **kwargs: Any) -> None:
        return None

    def on_message_out(self, *args: Any, **kwargs: Any) -> None:
        return None

    def on_table_get(self, *args: Any, **kwargs: Any) -> None:
        return None

    def on_table_set(self, *args: Any, **kwargs: Any) -> None:
        return None

    def on_send_initiated(self, *args: Any, **kwargs: Any) -> None:
        return None

    def on_send_completed(self, *args: Any, **kwargs: Any) -> None:
        return None
