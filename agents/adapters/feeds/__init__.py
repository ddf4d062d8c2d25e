"""Built-in registry pollers: watch npm and PyPI and publish package-feeds events to Kafka.

``typostream feed --registry npm|pypi`` runs :func:`run_feed` with an :class:`NpmSource` (npm's
``_changes`` replication feed + packuments) or a :class:`PypiSource` (PyPI's XML-RPC journal for
completeness + RSS for latency); base URLs are parameters so tests serve real-shaped responses from
127.0.0.1. Each module's docstring cites the API documentation it follows.
"""

from __future__ import annotations

from typostream.agents.adapters.feeds.base import (
    SCHEMA_VER,
    FeedEvent,
    FeedSource,
    Poll,
    event_id,
    go_rfc3339,
    make_event,
)
from typostream.agents.adapters.feeds.cursor import CursorState, CursorStore, RecentIds
from typostream.agents.adapters.feeds.http import USER_AGENT, FeedHTTP, Fetched
from typostream.agents.adapters.feeds.npm import NPM_REGISTRY_URL, NPM_REPLICATE_URL, NpmSource, parse_changes
from typostream.agents.adapters.feeds.poller import FeedStats, ProduceFn, run_feed
from typostream.agents.adapters.feeds.pypi import (
    PYPI_URL,
    PypiSource,
    parse_changelog,
    parse_new_projects,
    parse_updates,
)

__all__ = [
    "NPM_REGISTRY_URL",
    "NPM_REPLICATE_URL",
    "PYPI_URL",
    "SCHEMA_VER",
    "USER_AGENT",
    "CursorState",
    "CursorStore",
    "FeedEvent",
    "FeedHTTP",
    "FeedSource",
    "FeedStats",
    "Fetched",
    "NpmSource",
    "Poll",
    "ProduceFn",
    "PypiSource",
    "RecentIds",
    "event_id",
    "go_rfc3339",
    "make_event",
    "parse_changelog",
    "parse_changes",
    "parse_new_projects",
    "parse_updates",
    "run_feed",
]
