"""The report page renderer (pure): charts, escaping, self-containment, scales."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser

import pytest

from typostream.agents.domain.report import (
    LATENCY_COLOURS,
    MAX_BINS,
    SEVERITY_COLOURS,
    TARGET_COLOUR,
    TECHNIQUE_COLOUR,
    Breakdown,
    HourCount,
    LatencyRow,
    ReportData,
    TargetRow,
    bin_hours,
    format_ms,
    nice_ceiling,
    render_report,
)

SINCE = datetime(2026, 11, 24, 11, tzinfo=UTC)
SVG = "{http://www.w3.org/2000/svg}"
EVIL = '<script>alert("x")</script>&"\'><img src=x onerror=alert(1)>'


def sample(**over: object) -> ReportData:
    by_hour = tuple(
        HourCount(SINCE + timedelta(hours=h), severity, n)
        for h in range(0, 168, 7)
        for severity, n in (("critical", 1 + h % 3), ("high", 5), ("medium", 2), ("low", 1))
    )
    values: dict[str, object] = {
        "generated_at": SINCE + timedelta(days=7, minutes=12),
        "since": SINCE,
        "hours": 168,
        "events": 30_100,
        "threats": 250,
        "packages": 240,
        "by_hour": by_hour,
        "by_severity": (Breakdown("high", 120, 118), Breakdown("critical", 50, 45), Breakdown("low", 24, 24)),
        "by_technique": (
            Breakdown("combosquat", 80, 79),
            Breakdown("omission", 40, 40),
            Breakdown(EVIL, 3, 3),
        ),
        "by_registry": (Breakdown("npm", 150, 146), Breakdown("pypi", 100, 94)),
        "top_targets": (
            TargetRow("npm", "react", 9, 11, 95),
            TargetRow("pypi", "requests", 4, 4, 80),
            TargetRow("npm", EVIL, 1, 1, 50),
        ),
        "latency": (
            LatencyRow("all", 200, 850, 4_200, 61_000, 3_600_000),
            LatencyRow("npm", 120, 700, 3_000, 50_000, 3_600_000),
            LatencyRow("pypi", 80, 1_000, 5_000, 70_000, 200_000),
        ),
        "latest_threat": SINCE + timedelta(days=6),
    }
    values.update(over)
    return ReportData(**values)  # type: ignore[arg-type]


def svgs(page: str) -> dict[str, ET.Element]:
    """Every inline <svg>, parsed as XML (so each is well-formed), by id."""
    out = {}
    for chunk in re.findall(r"<svg\b.*?</svg>", page, re.S):
        root = ET.fromstring(chunk.replace("<svg ", '<svg xmlns="http://www.w3.org/2000/svg" ', 1))
        out[root.get("id") or f"empty-{len(out)}"] = root
    return out


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[tuple[str, str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.urls += [
            (tag, k, v) for k, v in attrs if k in {"src", "href", "srcset", "data", "action", "poster"}
        ]


def loaded_urls(page: str) -> list[tuple[str, str, str | None]]:
    """Attributes of the page's tags that would make a browser load something."""
    parser = _Tags()
    parser.feed(page)
    return parser.urls


def rects(svg: ET.Element) -> list[ET.Element]:
    return list(svg.iter(f"{SVG}rect"))


def test_the_page_has_four_charts_in_their_series_colours() -> None:
    page = render_report(sample())
    charts = svgs(page)
    assert set(charts) == {"chart-over-time", "chart-by-technique", "chart-top-targets", "chart-latency"}
    over_time = {r.get("fill") for r in rects(charts["chart-over-time"])}
    assert over_time == set(SEVERITY_COLOURS.values())
    assert {r.get("fill") for r in rects(charts["chart-by-technique"])} == {TECHNIQUE_COLOUR}
    assert {r.get("fill") for r in rects(charts["chart-top-targets"])} == {TARGET_COLOUR}
    assert {r.get("fill") for r in rects(charts["chart-latency"])} == set(LATENCY_COLOURS.values())
    assert len(rects(charts["chart-latency"])) == 3 * 3  # p50/p90/p99 for all, npm, pypi
    for text in ("30,100", "250", "240", "850 ms", "combosquat", "react (npm)", "requests (pypi)"):
        assert text in page
    assert "2026-11-24 11:00 to 2026-12-01 11:00 UTC (last 7 days)" in page


def test_bar_lengths_follow_the_values() -> None:
    charts = svgs(render_report(sample()))
    widths = [float(r.get("width", 0)) for r in rects(charts["chart-by-technique"])]
    assert widths[0] > widths[1] > widths[2]
    assert widths[0] / widths[1] == pytest.approx(80 / 40, rel=0.01)
    stacked = rects(charts["chart-over-time"])
    column = [r for r in stacked if r.get("x") == stacked[0].get("x")]  # the first hour's stack
    heights = {r.get("fill"): float(r.get("height", 0)) for r in column}
    assert heights[SEVERITY_COLOURS["high"]] == pytest.approx(5 * heights[SEVERITY_COLOURS["low"]], rel=0.01)
    bottom = max(float(r.get("y", 0)) + float(r.get("height", 0)) for r in column)
    assert all(float(r.get("y", 0)) < bottom for r in column)  # stacked upwards from one baseline


def test_strings_from_the_data_are_escaped() -> None:
    page = render_report(sample(title="report <b>"))
    assert "<script" not in page and "<img" not in page and "<b>" not in page
    assert "&lt;script&gt;" in page
    svgs(page)  # still well-formed with the hostile names inside


def test_the_page_loads_nothing() -> None:
    page = render_report(sample())
    assert "Content-Security-Policy" in page and "default-src 'none'" in page
    assert loaded_urls(page) == []
    assert not re.search(r"(?:https?:)?//[\w.-]+\.\w", page.replace("http://www.w3.org/2000/svg", ""))
    assert "@import" not in page and "url(" not in page and "<link" not in page and "<script" not in page


def test_an_empty_window_says_so() -> None:
    page = render_report(
        ReportData(generated_at=SINCE, since=SINCE, hours=24, latest_threat=SINCE - timedelta(days=2))
    )
    assert "no threats detected in this window" in page and "no flagged events in this window" in page
    assert "No threats in this window; the last one was detected in the hour of 2026-11-22 11:00 UTC" in page
    assert all(not rects(svg) for svg in svgs(page).values())


def test_rows_outside_the_window_are_not_drawn() -> None:
    inside = HourCount(SINCE + timedelta(hours=2), "high", 4)
    outside = (
        HourCount(SINCE - timedelta(hours=1), "high", 99),
        HourCount(SINCE + timedelta(hours=24), "low", 9),
    )
    page = render_report(sample(hours=24, by_hour=(inside, *outside)))
    assert len(rects(svgs(page)["chart-over-time"])) == 1


def test_long_windows_get_coarser_bars() -> None:
    assert [bin_hours(h) for h in (1, 168, 169, 720, 2160, 8784)] == [1, 1, 2, 6, 24, 168]
    thirty_days = tuple(HourCount(SINCE + timedelta(hours=h), "high", 1) for h in range(720))
    stacked = rects(svgs(render_report(sample(hours=720, by_hour=thirty_days)))["chart-over-time"])
    assert len(stacked) == 720 // 6 <= MAX_BINS
    first = float(stacked[0].get("height", 0))
    assert all(float(r.get("height", 0)) == pytest.approx(first) for r in stacked)  # 6 threats per bar


def test_same_data_same_bytes() -> None:
    assert render_report(sample()) == render_report(sample())


@pytest.mark.parametrize(
    ("value", "top", "step"),
    [
        (0, 1.0, 1.0),
        (1, 1.0, 1.0),
        (3, 3.0, 1.0),
        (7, 8.0, 2.0),
        (95, 100.0, 50.0),
        (101, 150.0, 50.0),
        (12_345, 15_000.0, 5000.0),
    ],
)
def test_nice_ceiling(value: float, top: float, step: float) -> None:
    assert nice_ceiling(value) == (top, step)


@pytest.mark.parametrize(
    ("ms", "text"),
    [
        (0, "0 ms"),
        (850, "850 ms"),
        (4_200, "4.2 s"),
        (210_000, "3.5 min"),
        (7_200_000, "2.0 h"),
        (2_491_723_665, "28.8 d"),
    ],
)
def test_format_ms(ms: int, text: str) -> None:
    assert format_ms(ms) == text
