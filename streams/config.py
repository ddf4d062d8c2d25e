"""The one configuration object.

Every component is chosen by URL/DSN so the same code runs against the embedded stack on a
laptop and against production Kafka, Redis and ClickHouse. Values come from (lowest to
highest precedence) defaults, the state file of an embedded stack running in the data dir,
``TYPOSTREAM_*`` environment variables, and explicit CLI flags.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from typostream.agents.adapters.urls import mask_url
from typostream.agents.domain.errors import ConfigError
from typostream.agents.domain.vocabulary import REGISTRY_URLS

ENV_PREFIX = "TYPOSTREAM_"
__all__ = ["ENV_PREFIX", "Settings", "mask_url"]


def _secret(default: str, *, url: bool = True) -> Any:
    """A field whose value may carry a password (``url``) or is one: masked when printed or logged."""
    return field(default=default, metadata={"secret": "url" if url else "value"})


@dataclass(frozen=True)
class Settings:
    """Runtime settings for the worker, CLI and embedded stack.

    ``clickhouse_dsn`` of ``chdb://`` (default) means embedded chDB under ``data_dir``;
    ``http(s)://user:pass@host:8123/db`` selects a real ClickHouse server.
    """

    data_dir: Path = Path(".typostream")
    kafka_bootstrap: str = _secret("127.0.0.1:9092")
    redis_url: str = _secret("redis://127.0.0.1:6379/0")
    clickhouse_dsn: str = _secret("chdb://")
    app_id: str = "typostream"
    topic_input: str = "registry.publish"
    topic_events: str = "typostream.events"
    topic_analysed: str = "typostream.analysed"
    topic_threats: str = "typostream.threats"
    topic_dlq: str = "typostream.dlq"
    partitions: int = 2
    replication_factor: int = 1
    web_host: str = "127.0.0.1"
    web_port: int = 6066
    # Seconds an HTTP client may take to send a request's head, or its body, or stay idle between
    # requests, before the worker's web server closes the connection (streams/web/server.py).
    web_client_timeout_s: float = 10.0
    # Bearer token for the HTTP API (required when web_host is not a loopback address).
    api_token: str = _secret("", url=False)
    # Limits of ad hoc analytics queries (API and `typostream query`).
    query_max_seconds: float = 10.0
    query_max_rows: int = 100_000
    query_max_memory_bytes: int = 1_000_000_000
    max_event_bytes: int = 64 * 1024
    sink_batch_size: int = 2000
    sink_batch_seconds: float = 0.5
    # Comma-separated sinks fed by the worker (ids of streams/components.py SINK_FACTORIES).
    sinks: str = "clickhouse"
    # Tansu answers ListOffsets(latest) with the last batch's base offset + 1, which breaks
    # table recovery. Default fix: take end offsets from a fetch's high watermark (keeps
    # batching). Fallback: unbatched producing keeps changelog offsets exact but is slow.
    highwater_from_fetch: bool = True
    # Tansu only answers a Fetch after its max wait, even when records arrive: keep it short.
    fetch_max_wait_ms: int = 10
    unbatched_producer: bool = False
    producer_linger_ms: float = 2.0
    # Enrichment. Known-malicious lookups (bundled seed + these OSV files/dirs, comma-separated,
    # e.g. a checkout of ossf/malicious-packages) always run; fetching each version's registry
    # metadata to scan install scripts and descriptions is opt-in (it calls the registries).
    known_malicious_paths: str = ""
    registry_metadata: bool = False
    npm_registry_url: str = _secret(REGISTRY_URLS["npm_registry"])
    npm_replicate_url: str = _secret(REGISTRY_URLS["npm_replicate"])
    pypi_url: str = _secret(REGISTRY_URLS["pypi"])
    enrich_concurrency: int = 8
    watchlist_file: Path | None = None
    allowlist_file: Path | None = None
    log_level: str = "WARNING"
    # `POST /api/v1/scan` bodies that name no registry (the seed's `{package_name, version}`).
    scan_default_registry: str = "npm"
    # Alert delivery (sink `alerts`, README "Alerts"): on in the worker when a target is set, or
    # alone as `typostream alerts run`. URLs are secrets (masked as a whole); an entry may start
    # with `SEVERITY=` to override the minimum severity for that target.
    alert_webhook_urls: str = _secret("", url=False)
    alert_slack_webhook_url: str = _secret("", url=False)
    alert_min_severity: str = "high"
    alert_in_worker: bool = True
    alert_max_attempts: int = 8
    alert_backoff_s: float = 1.0
    alert_timeout_s: float = 10.0
    alert_rate_per_s: float = 1.0
    alert_burst: int = 5
    alert_dedupe: str = "file"
    alert_dedupe_ttl_s: float = 7 * 86400.0
    # A worker facing a broker that lost its data (embedded memory broker restarted) drops the
    # table partitions and committed offsets that are ahead of it and goes on (streams/recovery.py);
    # false: fail on start with Faust's ConsistencyError instead.
    recover_broker_loss: bool = True
    # `typostream stack up` keeps broker data across restarts (Tansu on a local S3 store) by default.
    stack_durable: bool = False
    # The on-disk advisory index (`typostream advisories sync`): `<advisories_dir>/index.sqlite`,
    # default `<data_dir>/advisories`; scan and the worker use it when present, and the worker checks
    # for a newer one every `advisories_refresh_s` seconds.
    advisories_dir: Path | None = None
    advisories_refresh_s: float = 10.0
    # Row TTL of the ClickHouse tables and views, in days counted from when typostream stored a row
    # (agents/adapters/migrations.py TTL_COLUMNS); 0 keeps rows forever. Applied at every worker start.
    clickhouse_ttl_days: int = 0
    # `typostream worker --processes N`: N detect processes share the input partitions and one store
    # process keeps the packages table and writes the sinks (streams/worker.py); 1 = one process.
    worker_processes: int = 1
    # Faust standby replicas of the packages table (0: none; a restarted worker rebuilds from the changelog).
    table_standby_replicas: int = 0
    # Cache the detector's candidate indexes under `<data_dir>/cache` (agents/adapters/index_cache.py)
    # so `scan` and workers start without building them; false: build them in memory every time.
    detector_cache: bool = True

    @property
    def kafka_url(self) -> str:
        """Faust's broker URL: ``<scheme>://host:port[;host:port]``; the scheme picks the transport."""
        from typostream.streams.transport import SCHEME

        servers = [s.strip().removeprefix("kafka://") for s in self.kafka_bootstrap.split(",") if s.strip()]
        if not self.highwater_from_fetch:
            return ";".join(f"kafka://{s}" for s in servers)
        return ";".join(f"{SCHEME}://{s}?fetch_max_wait_ms={self.fetch_max_wait_ms}" for s in servers)

    @property
    def chdb_path(self) -> Path:
        return self.data_dir / "clickhouse"

    @property
    def worker_dir(self) -> Path:
        return self.data_dir / "worker"

    def masked(self) -> dict[str, Any]:
        """A printable view with secrets hidden."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            secret = f.metadata.get("secret")
            if secret == "url":
                value = mask_url(str(value))
            elif secret == "value" and value:
                value = "***"
            out[f.name] = str(value) if isinstance(value, Path) else value
        return out

    def replace(self, **changes: Any) -> Settings:
        clean = {k: v for k, v in changes.items() if v is not None}
        return dataclasses.replace(self, **clean)

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, **overrides: Any) -> Settings:
        """Defaults ← running stack's state file ← environment ← explicit overrides (CLI flags)."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = env.get(ENV_PREFIX + f.name.upper())
            if raw is None or raw == "":
                continue
            values[f.name] = _coerce(f.type, raw, f.name)
        settings = cls(**values)
        if overrides.get("data_dir") is not None:
            overrides = {**overrides, "data_dir": Path(overrides["data_dir"])}
        settings = settings.replace(data_dir=overrides.get("data_dir") or settings.data_dir)
        state = _stack_state(settings.data_dir)
        if state:
            # A running embedded stack in this data dir replaces the defaults, but a URL the user
            # set explicitly (env var or flag) still wins: explicit beats discovered.
            from_state = {k: v for k, v in state.items() if ENV_PREFIX + k.upper() not in env}
            settings = settings.replace(**from_state)
        settings = settings.replace(**overrides)
        _check_ports(settings)
        return settings


def _stack_state(data_dir: Path) -> dict[str, str]:
    from typostream.streams.stack.state import read_urls

    return read_urls(data_dir)


def _check_ports(settings: Settings) -> None:
    """Every ``*_port`` and the port of every URL setting is 0-65535 (a ConfigError names the variable)."""
    for f in fields(settings):
        value = getattr(settings, f.name)
        problem = None
        if f.name.endswith("_port") and isinstance(value, int) and not 0 <= value <= 65535:
            problem, shown = "port out of range 0-65535", str(value)
        elif f.metadata.get("secret") == "url" and isinstance(value, str):
            problem, shown = _url_problem(value, f.name == "kafka_bootstrap"), repr(mask_url(value))
        if problem:
            raise ConfigError(f"{ENV_PREFIX}{f.name.upper()}={shown}: {problem}")


def _url_problem(value: str, host_list: bool = False) -> str | None:
    """Why a URL (or a ``host:port[,host:port]`` list) cannot be used, without echoing any of it."""
    entries = [e.strip() for e in value.split(",") if e.strip()] if host_list else [value]
    for entry in entries:
        try:
            _ = urlsplit(entry if "://" in entry else f"//{entry}").port  # parses and range-checks
        except ValueError as exc:
            text = str(exc)
            if "out of range" in text:
                return "port out of range 0-65535"
            if "Port" in text:
                return "port is not a number"
            return f"not a valid URL ({text})"
    return None


def _coerce(annotation: Any, raw: str, name: str) -> Any:
    text = str(annotation)
    try:
        if "bool" in text:
            if raw.lower() in {"1", "true", "yes", "on"}:
                return True
            if raw.lower() in {"0", "false", "no", "off"}:
                return False
            raise ValueError(raw)
        if "int" in text:
            return int(raw)
        if "float" in text:
            return float(raw)
        if "Path" in text:
            return Path(raw)
    except ValueError as exc:
        raise ConfigError(f"{ENV_PREFIX}{name.upper()}={raw!r} is not a valid {text}") from exc
    return raw
