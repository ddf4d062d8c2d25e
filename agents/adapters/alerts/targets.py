"""Alert targets: where threats are POSTed, parsed from the settings, never printed unmasked.

A webhook URL is its own credential (Slack's carries the token in its path), so a :class:`Target`
shows itself as ``label (scheme://host[:port]/…)`` and keeps the URL out of ``repr``, logs and
error messages.

Severity routing: each target delivers threats at or above its own minimum severity, which is
the global ``TYPOSTREAM_ALERT_MIN_SEVERITY`` unless the entry starts with ``SEVERITY=``, e.g.
``TYPOSTREAM_ALERT_WEBHOOK_URLS=medium=https://siem.example/hook,https://pager.example/hook``
sends medium and above to the SIEM and the global minimum (``high``) to the pager.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import urlsplit

from typostream.agents.domain.errors import ConfigError
from typostream.agents.domain.vocabulary import SEVERITIES

__all__ = ["Target", "TargetKind", "parse_targets", "safe_url"]

TargetKind = Literal["webhook", "slack"]
WEBHOOKS_VAR = "TYPOSTREAM_ALERT_WEBHOOK_URLS"
SLACK_VAR = "TYPOSTREAM_ALERT_SLACK_WEBHOOK_URL"
MIN_SEVERITY_VAR = "TYPOSTREAM_ALERT_MIN_SEVERITY"


def safe_url(url: str) -> str:
    """``scheme://host[:port]/…``: enough to tell targets apart, nothing of the path or query."""
    parts = urlsplit(url)
    host = parts.hostname or "?"
    if ":" in host:
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:
        port = None
    shown = f"{parts.scheme}://{host}" + (f":{port}" if port else "")
    return shown + ("/…" if (parts.path not in ("", "/") or parts.query) else "")


@dataclass(frozen=True)
class Target:
    """One destination: a generic JSON webhook (the threat event as is) or a Slack incoming webhook."""

    label: str
    """``webhook1``, ``webhook2``… in the order configured, or ``slack``."""
    kind: TargetKind
    url: str = field(repr=False)
    min_severity: str = "high"

    @property
    def key(self) -> str:
        """Stable id of the destination (a hash: the sent-alert store never holds the URL)."""
        return hashlib.sha256(f"{self.kind}\0{self.url}".encode()).hexdigest()[:16]

    @property
    def shown(self) -> str:
        return f"{self.label} ({safe_url(self.url)})"

    def scrub(self, text: str) -> str:
        """``text`` with the URL (and its path) replaced by the masked form."""
        parts = urlsplit(self.url)
        for secret in (self.url, parts.path, parts.query):
            if secret and secret != "/":
                text = text.replace(secret, "…")
        return text


def _severity(value: str, where: str) -> str:
    severity = value.strip().lower()
    if severity not in SEVERITIES:
        expected = ", ".join(SEVERITIES)
        raise ConfigError(f"{where}: unknown severity {value.strip()!r}; expected one of: {expected}")
    return severity


def _entry(raw: str, var: str, position: int, default_severity: str) -> tuple[str, str]:
    """``(url, min_severity)`` of one entry; errors name the variable and position, never the URL."""
    head, sep, rest = raw.partition("=")
    severity = default_severity
    url = raw.strip()
    if sep and head.strip().lower() in SEVERITIES:
        severity, url = head.strip().lower(), rest.strip()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(
            f"{var}: entry {position} is not an http(s) URL (optionally prefixed SEVERITY=, e.g. critical=https://...)"
        )
    try:
        parts.port  # noqa: B018  (raises on a malformed port)
    except ValueError:
        raise ConfigError(f"{var}: entry {position} has an invalid port") from None
    return url, severity


def parse_targets(webhook_urls: str, slack_url: str, min_severity: str = "high") -> list[Target]:
    """The configured targets, webhooks first; empty when none is set. Bad entries raise ConfigError."""
    default = _severity(min_severity or "high", MIN_SEVERITY_VAR)
    targets: list[Target] = []
    seen: dict[tuple[str, str], str] = {}
    entries = [e for e in webhook_urls.split(",") if e.strip()]
    for n, raw in enumerate(entries, start=1):
        url, severity = _entry(raw, WEBHOOKS_VAR, n, default)
        targets.append(Target(f"webhook{n}", "webhook", url, severity))
    if slack_url.strip():
        url, severity = _entry(slack_url, SLACK_VAR, 1, default)
        targets.append(Target("slack", "slack", url, severity))
    for target in targets:
        earlier = seen.setdefault((target.kind, target.url), target.label)
        if earlier != target.label:
            raise ConfigError(f"{WEBHOOKS_VAR}: {target.label} repeats {earlier} (each URL once)")
    return targets
