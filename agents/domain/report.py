"""The analytics report: :class:`ReportData` in, one self-contained HTML page out.

The page (``typostream report``, the worker's ``GET /report``) draws four charts as inline SVG,
generated here: threats over time stacked by severity, threats by technique, the most-targeted
packages, and detection latency quantiles per registry; plus headline numbers and a table by
registry and severity. It loads nothing: no script, no stylesheet, font or image from anywhere, and
a Content-Security-Policy (``default-src 'none'``) says so to the browser. Every string from the
data (package names, techniques, registries) is HTML-escaped: a package name is attacker-chosen.

Pure: no I/O, no clock (the caller passes ``generated_at``), so the same data renders the same bytes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from html import escape
from types import MappingProxyType

from typostream.agents.domain.vocabulary import SEVERITIES

__all__ = [
    "BIN_HOURS",
    "LATENCY_COLOURS",
    "MAX_BINS",
    "MAX_HOURS",
    "MAX_TOP",
    "SEVERITY_COLOURS",
    "TARGET_COLOUR",
    "TECHNIQUE_COLOUR",
    "Breakdown",
    "HourCount",
    "LatencyRow",
    "ReportData",
    "TargetRow",
    "bin_hours",
    "format_ms",
    "nice_ceiling",
    "render_report",
]

# Series colours: saturated and far apart, so each is told apart by eye and by a screenshot test.
SEVERITY_COLOURS = MappingProxyType(
    {"critical": "#b71c1c", "high": "#f57c00", "medium": "#fbc02d", "low": "#1976d2"}
)
OTHER_SEVERITY_COLOUR = "#757575"  # a severity outside the vocabulary (never expected)
TECHNIQUE_COLOUR = "#6a1b9a"
TARGET_COLOUR = "#00897b"
LATENCY_COLOURS = MappingProxyType({"p50": "#2e7d32", "p90": "#5d4037", "p99": "#c2185b"})
BIN_HOURS = (1, 2, 3, 6, 12, 24, 48, 168)
MAX_BINS = 168  # bars in the time chart; wider windows get coarser bins
MAX_HOURS = 24 * 366  # the longest window a report covers
MAX_TOP = 100  # the most rows a ranking (techniques, targets) shows
_MUTED, _GRID = "#616161", "#e0e0e0"
_LABEL_CHARS = 26


@dataclass(frozen=True)
class HourCount:
    """Distinct threats detected in one hour (UTC) with one severity."""

    hour: datetime
    severity: str
    threats: int


@dataclass(frozen=True)
class Breakdown:
    """Distinct threats and flagged packages for one value of a dimension (technique, registry, …)."""

    key: str
    threats: int
    packages: int = 0


@dataclass(frozen=True)
class TargetRow:
    registry: str
    target: str
    squats: int  # distinct package names imitating the target
    threats: int
    max_risk: int = 0


@dataclass(frozen=True)
class LatencyRow:
    """Detection latency quantiles (ms) over the flagged events of one registry."""

    registry: str
    events: int
    p50_ms: int
    p90_ms: int
    p99_ms: int
    max_ms: int


@dataclass(frozen=True)
class ReportData:
    """Everything the page shows, for the window ``[since, since + hours)`` (UTC, hour-aligned)."""

    generated_at: datetime
    since: datetime
    hours: int
    events: int = 0  # events analysed in the window
    threats: int = 0  # distinct threats detected in the window
    packages: int = 0  # distinct flagged packages (registry:name)
    by_hour: tuple[HourCount, ...] = ()
    by_severity: tuple[Breakdown, ...] = ()
    by_technique: tuple[Breakdown, ...] = ()
    by_registry: tuple[Breakdown, ...] = ()
    top_targets: tuple[TargetRow, ...] = ()
    latency: tuple[LatencyRow, ...] = ()
    latest_threat: datetime | None = None  # the last hour with a threat, in or before the window
    title: str = "typostream threat report"
    notes: tuple[str, ...] = field(default_factory=tuple)


def render_report(data: ReportData) -> str:
    """The whole page as one HTML document (UTF-8 text)."""
    until = data.since + timedelta(hours=data.hours)
    headline_latency = next((r for r in data.latency if r.registry == "all"), None)
    cards = [
        ("events analysed", f"{data.events:,}"),
        ("threats detected", f"{data.threats:,}"),
        ("flagged packages", f"{data.packages:,}"),
        ("median detection latency", format_ms(headline_latency.p50_ms) if headline_latency else "–"),
    ]
    window = (
        f"{_fmt_time(data.since)} to {_fmt_time(until)} UTC ({_fmt_hours(data.hours)})"
        f" · generated {_fmt_time(data.generated_at)} UTC"
    )
    quiet = ""
    if not data.threats:
        last = f"; the last one was detected in the hour of {_fmt_time(data.latest_threat)} UTC"
        quiet = f'<p class="note">No threats in this window{last if data.latest_threat else ""}.</p>'
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta http-equiv="Content-Security-Policy"'
        " content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:\">",
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{escape(data.title)} · {escape(_fmt_time(data.since))} – {escape(_fmt_time(until))}</title>",
        f"<style>{_CSS}</style></head><body><main>",
        f"<header><h1>{escape(data.title)}</h1><p>{escape(window)}</p>{quiet}</header>",
        '<section class="cards">',
        *(f'<div class="card"><span>{escape(k)}</span><strong>{escape(v)}</strong></div>' for k, v in cards),
        "</section>",
        '<section id="over-time"><h2>Threats over time, by severity</h2>',
        _severity_legend(data.by_hour),
        _time_chart(data),
        "</section>",
        '<div class="grid">',
        '<section id="techniques"><h2>Threats by technique</h2>',
        _hbar_chart(
            [
                (b.key, b.threats, f"{b.key}: {b.threats:,} threats, {b.packages:,} packages")
                for b in data.by_technique
            ],
            TECHNIQUE_COLOUR,
            "by-technique",
        ),
        "</section>",
        '<section id="targets"><h2>Most-targeted packages</h2>',
        _hbar_chart(
            [
                (
                    f"{t.target} ({t.registry})",
                    t.squats,
                    f"{t.registry} {t.target}: {t.squats:,} imitating packages, {t.threats:,} threats,"
                    f" highest risk {t.max_risk}",
                )
                for t in data.top_targets
            ],
            TARGET_COLOUR,
            "top-targets",
            unit="imitators",
        ),
        "</section>",
        "</div>",
        '<div class="grid">',
        '<section id="latency"><h2>Detection latency</h2>',
        _latency_legend(data.latency),
        _latency_chart(data.latency),
        _latency_table(data.latency),
        "</section>",
        '<section id="breakdown"><h2>By registry and severity</h2>',
        _breakdown_table("registry", data.by_registry),
        _breakdown_table("severity", _severity_sorted(data.by_severity)),
        "</section>",
        "</div>",
        "<footer>",
        "<p>Detection latency: time from a version's publish (the feed's <code>created_date</code>) to"
        " typostream's verdict on it, over the events that raised a threat; a backfill or the replay of"
        " an old file shows as long latency. Counts are distinct threat ids, so replays do not inflate"
        " them. Source: the ClickHouse views <code>threats_hourly</code>, <code>threat_targets_daily</code>"
        " and <code>detection_latency</code>.</p>",
        *(f"<p>{escape(note)}</p>" for note in data.notes),
        "</footer>",
        "</main></body></html>",
    ]
    return "\n".join(parts) + "\n"


# --- scales and formats -----------------------------------------------------------------------------


def bin_hours(hours: int) -> int:
    """The bar width of the time chart: the smallest of :data:`BIN_HOURS` giving at most MAX_BINS bars."""
    for size in BIN_HOURS:
        if math.ceil(hours / size) <= MAX_BINS:
            return size
    return math.ceil(hours / MAX_BINS)


def nice_ceiling(value: float, ticks: int = 4) -> tuple[float, float]:
    """(axis top, tick step) for counts up to ``value``: whole steps of 1, 2 or 5 × 10^k, ~``ticks``."""
    if value <= 0:
        return 1.0, 1.0
    raw = value / max(1, ticks)
    magnitude = 10 ** math.floor(math.log10(raw))
    step = max(1, next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw))
    top = math.ceil(value / step) * step
    return float(top), float(step)


def format_ms(ms: float) -> str:
    """A duration for people: 850 ms, 4.2 s, 3.5 min, 2.0 h, 29.1 d."""
    if ms < 1000:
        return f"{ms:.0f} ms"
    seconds = ms / 1000
    for limit, unit, size in ((60, "s", 1), (3600, "min", 60), (86400, "h", 3600)):
        if seconds < limit:
            return f"{seconds / size:.1f} {unit}"
    return f"{seconds / 86400:.1f} d"


def _fmt_time(moment: datetime | None) -> str:
    if moment is None:
        return "–"
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M")


def _fmt_hours(hours: int) -> str:
    if hours % 24 == 0:
        days = hours // 24
        return f"last {days} day{'s' if days != 1 else ''}"
    return f"last {hours} hour{'s' if hours != 1 else ''}"


def _fmt_number(value: float) -> str:
    return f"{value:,.0f}" if value >= 10 or value == int(value) else f"{value:.1f}"


def _short(label: str) -> str:
    return label if len(label) <= _LABEL_CHARS else label[: _LABEL_CHARS - 1] + "…"


def _num(value: float) -> str:
    return f"{value:.2f}".rstrip("0").rstrip(".")


def _severity_colour(severity: str) -> str:
    return SEVERITY_COLOURS.get(severity, OTHER_SEVERITY_COLOUR)


def _severity_sorted(rows: Sequence[Breakdown]) -> list[Breakdown]:
    rank: dict[str, int] = {s: i for i, s in enumerate(reversed(SEVERITIES))}
    return sorted(rows, key=lambda b: (rank.get(b.key, len(rank)), b.key))


# --- charts -----------------------------------------------------------------------------------------


def _empty(message: str, width: int = 940, height: int = 80) -> str:
    return (
        f'<svg class="chart empty" width="{width}" height="{height}" viewBox="0 0 {width} {height}"'
        f' role="img" aria-label="{escape(message)}"><text x="{width / 2}" y="{height / 2}"'
        f' text-anchor="middle" fill="{_MUTED}">{escape(message)}</text></svg>'
    )


def _severity_legend(rows: Sequence[HourCount]) -> str:
    present = {r.severity for r in rows if r.threats > 0}
    order = [s for s in reversed(SEVERITIES) if s in present] + sorted(present - set(SEVERITIES))
    if not order:
        return ""
    items = "".join(
        f'<span><i style="background:{_severity_colour(s)}"></i>{escape(s)}</span>' for s in order
    )
    return f'<p class="legend">{items}</p>'


def _time_chart(data: ReportData) -> str:
    """Stacked bars: one per bin of :func:`bin_hours` hours, low severity at the bottom."""
    if not any(r.threats for r in data.by_hour):
        return _empty("no threats detected in this window")
    size = bin_hours(data.hours)
    count = math.ceil(data.hours / size)
    bins: list[dict[str, int]] = [{} for _ in range(count)]
    for row in data.by_hour:
        index = int((row.hour - data.since).total_seconds() // 3600) // size
        if 0 <= index < count and row.threats > 0:
            bins[index][row.severity] = bins[index].get(row.severity, 0) + row.threats
    width, height, left, right, top, bottom = 940, 280, 56, 12, 12, 44
    plot_w, plot_h = width - left - right, height - top - bottom
    axis_top, step = nice_ceiling(max(sum(b.values()) for b in bins))
    bar_w = plot_w / count
    gap = min(2.0, bar_w * 0.15)
    out = [
        f'<svg class="chart" id="chart-over-time" width="{width}" height="{height}"'
        f' viewBox="0 0 {width} {height}" role="img" aria-label="threats over time by severity">'
    ]
    out += _y_axis(axis_top, step, left, top, plot_w, plot_h)
    order = list(SEVERITIES) + sorted({s for b in bins for s in b} - set(SEVERITIES))
    for i, counts in enumerate(bins):
        x = left + i * bar_w + gap / 2
        y = float(top + plot_h)
        start = data.since + timedelta(hours=i * size)
        for severity in order:
            n = counts.get(severity, 0)
            if not n:
                continue
            h = plot_h * n / axis_top
            y -= h
            tip = f"{_fmt_time(start)} UTC · {severity}: {n:,}"
            out.append(
                f'<rect x="{_num(x)}" y="{_num(y)}" width="{_num(bar_w - gap)}" height="{_num(h)}"'
                f' fill="{_severity_colour(severity)}"><title>{escape(tip)}</title></rect>'
            )
    every = max(1, math.ceil(count / 8))
    for i in range(0, count, every):
        start = data.since + timedelta(hours=i * size)
        label = start.strftime("%m-%d") if size >= 24 else start.strftime("%m-%d %H:%M")
        x = left + i * bar_w + bar_w / 2
        out.append(
            f'<text x="{_num(x)}" y="{height - bottom + 18}" text-anchor="middle" class="tick">'
            f"{escape(label)}</text>"
        )
    unit = f"{size} h" if size < 24 else f"{size // 24} d"
    out.append(
        f'<text x="{left + plot_w}" y="{height - 6}" text-anchor="end" class="tick">'
        f"bars of {escape(unit)} (UTC)</text>"
    )
    out.append("</svg>")
    return "".join(out)


def _y_axis(axis_top: float, step: float, left: int, top: int, plot_w: int, plot_h: int) -> list[str]:
    out = []
    ticks = round(axis_top / step) if step else 0
    for k in range(ticks + 1):
        value = step * k
        y = top + plot_h - plot_h * value / axis_top
        out.append(
            f'<line x1="{left}" x2="{left + plot_w}" y1="{_num(y)}" y2="{_num(y)}" stroke="{_GRID}"/>'
            f'<text x="{left - 6}" y="{_num(y + 4)}" text-anchor="end" class="tick">'
            f"{_fmt_number(value)}</text>"
        )
    return out


def _hbar_chart(
    rows: Sequence[tuple[str, int, str]], colour: str, chart_id: str, unit: str = "threats"
) -> str:
    """Horizontal bars, one per (label, value, tooltip), largest first as given."""
    rows = [r for r in rows if r[1] > 0]
    if not rows:
        return _empty(f"no {unit} in this window", width=460)
    width, label_w, value_w, row_h, top = 460, 190, 56, 26, 6
    plot_w = width - label_w - value_w
    height = top * 2 + row_h * len(rows)
    biggest = max(r[1] for r in rows)
    out = [
        f'<svg class="chart" id="chart-{chart_id}" width="{width}" height="{height}"'
        f' viewBox="0 0 {width} {height}" role="img" aria-label="{escape(unit)} by {escape(chart_id)}">'
    ]
    for i, (label, value, tip) in enumerate(rows):
        y = top + i * row_h
        w = max(1.0, plot_w * value / biggest)
        out.append(
            f'<text x="{label_w - 8}" y="{y + row_h / 2 + 4}" text-anchor="end" class="label">'
            f"<title>{escape(label)}</title>{escape(_short(label))}</text>"
            f'<rect x="{label_w}" y="{y + 4}" width="{_num(w)}" height="{row_h - 8}" fill="{colour}">'
            f"<title>{escape(tip)}</title></rect>"
            f'<text x="{_num(label_w + w + 6)}" y="{y + row_h / 2 + 4}" class="value">{value:,}</text>'
        )
    out.append("</svg>")
    return "".join(out)


def _latency_legend(rows: Sequence[LatencyRow]) -> str:
    if not rows:
        return ""
    items = "".join(
        f'<span><i style="background:{colour}"></i>{escape(name)}</span>'
        for name, colour in LATENCY_COLOURS.items()
    )
    return f'<p class="legend">{items}</p>'


def _latency_chart(rows: Sequence[LatencyRow]) -> str:
    """Grouped horizontal bars: p50, p90, p99 for each registry ("all" first)."""
    if not rows:
        return _empty("no flagged events in this window", width=460)
    width, label_w, value_w, bar_h, group_gap, top = 460, 70, 70, 14, 12, 6
    plot_w = width - label_w - value_w
    group_h = bar_h * len(LATENCY_COLOURS) + group_gap
    height = top * 2 + group_h * len(rows)
    biggest = max(max(r.p50_ms, r.p90_ms, r.p99_ms) for r in rows) or 1
    out = [
        f'<svg class="chart" id="chart-latency" width="{width}" height="{height}"'
        f' viewBox="0 0 {width} {height}" role="img" aria-label="detection latency quantiles by registry">'
    ]
    for g, row in enumerate(rows):
        y0 = top + g * group_h
        out.append(
            f'<text x="{label_w - 8}" y="{y0 + bar_h * 1.5 + 4}" text-anchor="end" class="label">'
            f"{escape(_short(row.registry))}</text>"
        )
        values = {"p50": row.p50_ms, "p90": row.p90_ms, "p99": row.p99_ms}
        for k, (name, colour) in enumerate(LATENCY_COLOURS.items()):
            y = y0 + k * bar_h
            w = max(1.0, plot_w * values[name] / biggest)
            tip = f"{row.registry} {name}: {format_ms(values[name])} over {row.events:,} flagged events"
            out.append(
                f'<rect x="{label_w}" y="{y + 1}" width="{_num(w)}" height="{bar_h - 2}" fill="{colour}">'
                f"<title>{escape(tip)}</title></rect>"
                f'<text x="{_num(label_w + w + 6)}" y="{y + bar_h - 3}" class="value">'
                f"{escape(format_ms(values[name]))}</text>"
            )
    out.append("</svg>")
    return "".join(out)


def _latency_table(rows: Sequence[LatencyRow]) -> str:
    if not rows:
        return ""
    body = "".join(
        f"<tr><td>{escape(r.registry)}</td><td>{r.events:,}</td><td>{format_ms(r.p50_ms)}</td>"
        f"<td>{format_ms(r.p90_ms)}</td><td>{format_ms(r.p99_ms)}</td><td>{format_ms(r.max_ms)}</td></tr>"
        for r in rows
    )
    head = "<tr><th>registry</th><th>flagged events</th><th>p50</th><th>p90</th><th>p99</th><th>max</th></tr>"
    return f'<table class="numbers">{head}{body}</table>'


def _breakdown_table(dimension: str, rows: Sequence[Breakdown]) -> str:
    if not rows:
        return ""
    body = "".join(
        f"<tr><td>{escape(r.key)}</td><td>{r.threats:,}</td><td>{r.packages:,}</td></tr>" for r in rows
    )
    return (
        f'<table class="numbers"><tr><th>{escape(dimension)}</th><th>threats</th><th>packages</th></tr>'
        f"{body}</table>"
    )


_CSS = """
*{box-sizing:border-box}
body{margin:0;background:#fafafa;color:#212121;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,
"Helvetica Neue",Arial,sans-serif}
main{max-width:980px;margin:0 auto;padding:20px}
header h1{margin:0 0 4px;font-size:24px}
header p{margin:0;color:#616161}
.note{margin-top:6px;color:#8d6e63}
h2{font-size:16px;margin:0 0 8px}
section{background:#fff;border:1px solid #e0e0e0;border-radius:6px;padding:14px;margin:14px 0}
.cards{display:flex;gap:12px;background:none;border:0;padding:0}
.card{flex:1;background:#fff;border:1px solid #e0e0e0;border-radius:6px;padding:10px 14px}
.card span{display:block;color:#616161;font-size:12px}
.card strong{font-size:22px}
.grid{display:grid;grid-template-columns:1fr 1fr;gap:14px}
.grid section{margin:0 0 14px}
.legend{margin:0 0 6px;color:#616161}
.legend span{margin-right:14px;white-space:nowrap}
.legend i{display:inline-block;width:10px;height:10px;margin-right:5px;vertical-align:baseline}
svg.chart{display:block;max-width:100%;height:auto}
svg text{font-size:12px;fill:#212121}
svg text.tick{fill:#616161;font-size:11px}
svg text.value{fill:#424242;font-size:11px}
table.numbers{border-collapse:collapse;margin-top:10px;width:100%}
table.numbers th,table.numbers td{text-align:right;padding:3px 8px;border-bottom:1px solid #eee;
white-space:nowrap}
table.numbers th:first-child,table.numbers td:first-child{text-align:left}
footer{color:#616161;font-size:12px}
code{font-size:12px}
"""
