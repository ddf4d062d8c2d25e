"""The composition root's factories: every component is built from :class:`Settings` here, once.

Adding a sink or a feed is one new file under ``agents/adapters/`` plus one line in
:data:`SINK_FACTORIES` or :data:`FEED_FACTORIES` (and its test). Commands and the worker ask these
functions instead of constructing adapters themselves, so a setting reaches every command.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING

from typostream.agents.domain.assess import Assessor, load_known
from typostream.agents.domain.detection import Detector
from typostream.agents.domain.errors import ConfigError
from typostream.streams.config import Settings

if TYPE_CHECKING:  # adapters pull in clickhouse-connect / aiohttp: import them when built
    from typostream.agents.adapters.analytics import ClickHouseAnalytics
    from typostream.agents.adapters.cache import MultiLevelCache
    from typostream.agents.adapters.clickhouse import ClickHouseConnection
    from typostream.agents.adapters.feeds.base import FeedSource
    from typostream.agents.adapters.registry import RegistryClient
    from typostream.agents.adapters.sinks.alerts import AlertSink
    from typostream.agents.adapters.sinks.base import Sink
    from typostream.agents.domain.patterns import PatternSet

__all__ = [
    "FEED_FACTORIES",
    "SINK_FACTORIES",
    "Enrichment",
    "FeedOptions",
    "advisories_dir",
    "alerts_configured",
    "build_alert_sink",
    "build_analytics",
    "build_assessor",
    "build_detector",
    "build_enrichment",
    "build_feed",
    "build_sinks",
    "open_clickhouse",
]


def build_detector(settings: Settings, *, lazy: bool = False) -> Detector:
    """The popular-name indexes plus the watchlist, and the allowlist. With ``detector_cache`` (the
    default) the indexes come from ``<data_dir>/cache`` (built and stored on a miss); ``lazy`` reads
    each registry's only when it is first scanned (``scan``), else all now (a worker's start)."""
    watched = Detector.read_names(settings.watchlist_file)
    if not settings.detector_cache:
        return Detector.default(watched, settings.allowlist_file)
    from typostream.agents.adapters.index_cache import IndexCache

    indexes = IndexCache(settings.data_dir / "cache").indexes(watched, lazy=lazy)
    return Detector.default(allowlist=settings.allowlist_file, indexes=indexes)


def advisories_dir(settings: Settings) -> Path:
    """Where ``typostream advisories sync`` keeps the advisory index (``TYPOSTREAM_ADVISORIES_DIR``)."""
    return settings.advisories_dir or settings.data_dir / "advisories"


def build_assessor(settings: Settings, detector: Detector | None = None) -> Assessor:
    """Name detection (popular index + the watchlist/allowlist) plus known-malicious advisories: the
    bundled seed, the on-disk index (looked up per package, swapped in when a sync replaces it; none
    yet: picked up when one appears) and any ``TYPOSTREAM_KNOWN_MALICIOUS_PATHS`` (in memory)."""
    from typostream.agents.adapters.advisory_index import LiveAdvisoryIndex, index_path

    index = LiveAdvisoryIndex(index_path(advisories_dir(settings)), refresh_s=settings.advisories_refresh_s)
    known = load_known(settings.known_malicious_paths, sources=[index])
    return Assessor(detector or build_detector(settings), known)


def open_clickhouse(settings: Settings) -> ClickHouseConnection:
    from typostream.agents.adapters.clickhouse import ClickHouseConnection

    return ClickHouseConnection.open(settings.clickhouse_dsn, settings.chdb_path)


def build_analytics(connection: ClickHouseConnection) -> ClickHouseAnalytics:
    from typostream.agents.adapters.analytics import ClickHouseAnalytics

    return ClickHouseAnalytics(connection)


# --- sinks -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class SinkResources:
    """Shared connections a sink factory may use (chDB allows one engine per process)."""

    clickhouse: Callable[[], ClickHouseConnection]


def _clickhouse_sink(settings: Settings, resources: SinkResources) -> Sink:
    from typostream.agents.adapters.sinks.clickhouse import ClickHouseSink

    return ClickHouseSink(resources.clickhouse(), settings.sink_batch_size, settings.clickhouse_ttl_days)


def alerts_configured(settings: Settings) -> bool:
    """Whether any alert target is set (the worker then feeds the ``alerts`` sink automatically)."""
    return bool(settings.alert_webhook_urls.strip() or settings.alert_slack_webhook_url.strip())


def build_alert_sink(settings: Settings) -> AlertSink:
    """The alert sink for the configured targets (ConfigError when none is set or one is malformed)."""
    from typostream.agents.adapters.alerts import FileSentStore, RedisSentStore, SentStore, parse_targets
    from typostream.agents.adapters.sinks.alerts import AlertSink

    targets = parse_targets(
        settings.alert_webhook_urls, settings.alert_slack_webhook_url, settings.alert_min_severity
    )
    if not targets:
        raise ConfigError(
            "no alert target: set TYPOSTREAM_ALERT_WEBHOOK_URLS and/or TYPOSTREAM_ALERT_SLACK_WEBHOOK_URL"
        )
    store: SentStore
    if settings.alert_dedupe == "file":
        store = FileSentStore(settings.data_dir / "alerts", settings.alert_dedupe_ttl_s)
    elif settings.alert_dedupe == "redis":
        store = RedisSentStore(settings.redis_url, settings.alert_dedupe_ttl_s)
    else:
        raise ConfigError(f"TYPOSTREAM_ALERT_DEDUPE={settings.alert_dedupe!r}: expected 'file' or 'redis'")
    return AlertSink(
        targets,
        store,
        max_attempts=settings.alert_max_attempts,
        backoff_s=settings.alert_backoff_s,
        timeout_s=settings.alert_timeout_s,
        rate_per_s=settings.alert_rate_per_s,
        burst=settings.alert_burst,
    )


def _alerts_sink(settings: Settings, resources: SinkResources) -> Sink:
    return build_alert_sink(settings)


SINK_FACTORIES: MappingProxyType[str, Callable[[Settings, SinkResources], Sink]] = MappingProxyType(
    {"clickhouse": _clickhouse_sink, "alerts": _alerts_sink}
)


def build_sinks(settings: Settings, resources: SinkResources) -> list[Sink]:
    ids = [s.strip() for s in settings.sinks.split(",") if s.strip()]
    if settings.alert_in_worker and alerts_configured(settings) and "alerts" not in ids:
        ids.append("alerts")  # a configured alert target turns delivery on without TYPOSTREAM_SINKS
    unknown = [i for i in ids if i not in SINK_FACTORIES]
    if unknown:
        raise ConfigError(
            f"TYPOSTREAM_SINKS: unknown sink {unknown[0]!r}; expected some of: {', '.join(SINK_FACTORIES)}"
        )
    return [SINK_FACTORIES[i](settings, resources) for i in ids]


# --- feeds -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class FeedOptions:
    """Per-run feed options that are not settings (they only make sense on the command line)."""

    npm_since: str = "now"
    pypi_new_projects: bool = False


def _npm_feed(settings: Settings, options: FeedOptions) -> FeedSource:
    from typostream.agents.adapters.feeds.npm import NpmSource

    return NpmSource(settings.npm_replicate_url, settings.npm_registry_url, start=options.npm_since)


def _pypi_feed(settings: Settings, options: FeedOptions) -> FeedSource:
    from typostream.agents.adapters.feeds.pypi import PypiSource

    return PypiSource(settings.pypi_url, new_projects=options.pypi_new_projects)


FEED_FACTORIES: MappingProxyType[str, Callable[[Settings, FeedOptions], FeedSource]] = MappingProxyType(
    {"npm": _npm_feed, "pypi": _pypi_feed}
)


def build_feed(settings: Settings, registry: str, options: FeedOptions | None = None) -> FeedSource:
    factory = FEED_FACTORIES.get(registry)
    if factory is None:
        raise ConfigError(f"no feed for registry {registry!r}; expected one of: {', '.join(FEED_FACTORIES)}")
    return factory(settings, options or FeedOptions())


# --- enrichment ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Enrichment:
    client: RegistryClient
    cache: MultiLevelCache
    patterns: PatternSet
    concurrency: int


def build_enrichment(settings: Settings) -> Enrichment | None:
    """The opt-in metadata enrichment (it calls the registries), or None when switched off."""
    if not settings.registry_metadata:
        return None
    from typostream.agents.adapters.cache import MultiLevelCache
    from typostream.agents.adapters.registry import RegistryClient
    from typostream.agents.domain.patterns import PatternSet

    return Enrichment(
        client=RegistryClient(npm_base=settings.npm_registry_url, pypi_base=settings.pypi_url),
        cache=MultiLevelCache(settings.redis_url),
        patterns=PatternSet.default(),
        concurrency=settings.enrich_concurrency,
    )
