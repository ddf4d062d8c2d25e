"""What each target receives: the threat event itself (webhooks) or a Slack incoming-webhook message.

Slack message (Slack's incoming webhooks take a JSON body with ``text`` and optional Block Kit
``blocks``; with blocks, ``text`` is the notification/fallback string; success is HTTP 200 with
body ``ok`` — https://docs.slack.dev/tools/python-slack-sdk/webhook,
https://docs.slack.dev/tools/java-slack-sdk/guides/incoming-webhooks)::

    {"text": "HIGH typosquat: npm package expresss@1.0.0 imitates express",
     "blocks": [header, section (summary + fields), section (evidence), section (mitigations), context]}

Limits respected (Block Kit reference): header ``plain_text`` ≤ 150 characters, section ``text`` ≤
3000, at most 10 section ``fields`` of ≤ 2000 each. ``&``, ``<`` and ``>`` are escaped wherever text
is parsed as ``mrkdwn`` (the top-level ``text`` included) as Slack's formatting reference requires
(https://api.slack.com/reference/surfaces/formatting#escaping), so a package name or evidence string
cannot inject a link or an ``<!channel>`` mention.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any, Final
from urllib.parse import quote

import orjson

from typostream.agents.domain.detection import Threat
from typostream.agents.domain.messages import threat_event, utc_now_iso

__all__ = ["HEADER_MAX", "SECTION_MAX", "sample_threat", "slack_message", "webhook_body"]

HEADER_MAX: Final = 150
SECTION_MAX: Final = 3000
FIELD_MAX: Final = 2000
TEXT_MAX: Final = 3000
_EMOJI: Final = {"critical": ":rotating_light:", "high": ":warning:", "medium": ":large_orange_diamond:"}
_PHRASE: Final = {
    "typosquat": "imitates",
    "dependency_confusion": "may shadow the internal package",
    "malicious_package": "is known malicious:",
    "suspicious_pattern": "contains",
}
_PACKAGE_PAGES: Final = {
    "npm": "https://www.npmjs.com/package/{name}/v/{version}",
    "pypi": "https://pypi.org/project/{name}/{version}/",
}


def webhook_body(threat: Mapping[str, Any], raw: bytes | None = None) -> bytes:
    """The threat event exactly as on the threats topic: its original bytes when known."""
    return raw if raw is not None else orjson.dumps(threat)


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _esc(text: Any) -> str:
    """Escape a value for Slack ``mrkdwn`` (``&``, ``<``, ``>``)."""
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _package_link(registry: str, name: str, version: str) -> str:
    page = _PACKAGE_PAGES.get(registry)
    label = _esc(f"{name}@{version}")
    if page is None:
        return f"*{label}*"
    url = page.format(name=quote(name, safe="@/"), version=quote(version, safe=""))
    return f"*<{url}|{label}>*"


def _bullets(title: str, items: list[Any], limit: int = 5) -> str:
    lines = [f"• {_esc(item)}" for item in items[:limit]]
    if len(items) > limit:
        lines.append(f"• … {len(items) - limit} more")
    return _clip(f"*{title}*\n" + "\n".join(lines), SECTION_MAX)


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def slack_message(threat: Mapping[str, Any]) -> dict[str, Any]:
    """A Slack incoming-webhook payload (``text`` + ``blocks``) for one threat event."""
    package = threat.get("package") or {}
    detail = threat.get("threat") or {}
    metadata = threat.get("metadata") or {}
    severity = str(threat.get("severity", ""))
    kind = str(threat.get("type", "threat"))
    name, version, registry = (str(package.get(k, "")) for k in ("name", "version", "registry"))
    target = str(detail.get("target", ""))
    phrase = _PHRASE.get(kind, "target")
    test = " [TEST]" if metadata.get("test") else ""
    title = f"{severity.upper()} {kind.replace('_', ' ')}"
    summary = f"{title}: {registry} package {name}@{version} {phrase} {target}"
    header = f"{_EMOJI.get(severity, ':information_source:')} {title}: {name}{test}"
    lead = f"{_package_link(registry, name, version)} on {_esc(registry)} {_esc(phrase)} `{_esc(target)}`"
    fields = [
        f"*Severity*\n{_esc(severity)} (risk {_esc(detail.get('risk_score', '?'))}/100)",
        f"*Technique*\n{_esc(detail.get('technique', '?'))}",
        f"*Confidence*\n{_esc(detail.get('confidence', '?'))}",
        f"*Detected*\n{_esc(threat.get('timestamp', '?'))}",
    ]
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": _clip(header, HEADER_MAX), "emoji": True}},
        {
            "type": "section",
            "text": {"type": "mrkdwn", "text": _clip(lead, SECTION_MAX)},
            "fields": [{"type": "mrkdwn", "text": _clip(f, FIELD_MAX)} for f in fields],
        },
    ]
    evidence = list(detail.get("evidence") or [])
    if evidence:
        blocks.append(_section(_bullets("Evidence", evidence)))
    mitigations = list(detail.get("mitigations") or [])
    if mitigations:
        blocks.append(_section(_bullets("What to do", mitigations, 3)))
    ids = f"threat `{_esc(threat.get('id', '?'))}` · event `{_esc(metadata.get('correlation_id', '?'))}`"
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": _clip(ids, SECTION_MAX)}]})
    return {"text": _clip(_esc(summary + test), TEXT_MAX), "blocks": blocks}  # `text` is mrkdwn too


def sample_threat(detected_at: str | None = None) -> dict[str, Any]:
    """A schema-valid, obviously fake critical threat for ``typostream alerts test`` (``metadata.test``)."""
    event = {
        "event_id": f"alert-test-{uuid.uuid4().hex}",
        "name": "typostream-test-alert",
        "version": "0.0.0",
        "registry": "npm",
    }
    threat = Threat(
        type="typosquat",
        target="typostream",
        technique="test",
        score=1.0,
        severity="critical",
        evidence="A test alert sent by `typostream alerts test`; no package is affected.",
    )
    message = threat_event(event, threat, detected_at or utc_now_iso())
    message["metadata"]["test"] = True
    return message
