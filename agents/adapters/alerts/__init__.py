"""Alert delivery building blocks used by the ``alerts`` sink (``agents/adapters/sinks/alerts.py``).

``targets`` (where, with per-target minimum severity; URLs are secrets), ``format`` (webhook body
and Slack message), ``ratelimit`` (token bucket per target), ``delivery`` (POST with retries and
``Retry-After``) and ``sent`` (which alerts were delivered: file or Redis).
"""

from typostream.agents.adapters.alerts.delivery import Delivery, DeliveryResult, parse_retry_after
from typostream.agents.adapters.alerts.format import sample_threat, slack_message, webhook_body
from typostream.agents.adapters.alerts.ratelimit import TokenBucket
from typostream.agents.adapters.alerts.sent import FileSentStore, RedisSentStore, SentStore
from typostream.agents.adapters.alerts.targets import Target, parse_targets, safe_url

__all__ = [
    "Delivery",
    "DeliveryResult",
    "FileSentStore",
    "RedisSentStore",
    "SentStore",
    "Target",
    "TokenBucket",
    "parse_retry_after",
    "parse_targets",
    "safe_url",
    "sample_threat",
    "slack_message",
    "webhook_body",
]
