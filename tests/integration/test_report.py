"""The report page on the real embedded stack: a worker replays the bundled sample feed into chDB and
serves ``GET /report``; ``typostream report`` builds the same page through that worker (``--api``)
and, once it stopped, from chDB directly; headless Chromium renders it and the screenshot shows the
charts in their series colours. A data dir from before migrations gets its views when reported on.
"""

from __future__ import annotations

import asyncio
import gzip
import os
import re
import shutil
import struct
import subprocess
import sys
import urllib.error
import urllib.request
import uuid
import zlib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, fields
from importlib import resources
from pathlib import Path

import pytest

from tests.agents.test_migrations import (
    EVENTS_DDL_FIRST_RELEASE,
    THREATS_DDL_BEFORE_MIGRATIONS,
    analysed_sample,
)
from tests.integration.conftest import produce, wait_for
from typostream.agents.domain.report import LATENCY_COLOURS, SEVERITY_COLOURS, TARGET_COLOUR, TECHNIQUE_COLOUR
from typostream.streams.config import Settings
from typostream.streams.stack import StackState
from typostream.streams.stack.processes import free_port
from typostream.streams.web.report import CSP
from typostream.streams.worker_process import WorkerProcess, settings_env

pytestmark = pytest.mark.integration

TOKEN = "report-token-91c2"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
HOURS = 6  # a short window: wide bars, so every series covers many pixels


@dataclass
class Run:
    settings: Settings
    threats: int
    events: int
    severities: set[str]
    worker_page: str
    worker_headers: dict[str, str]
    denied: tuple[int, str]
    bad_params: list[tuple[int, str]]
    api_cli: subprocess.CompletedProcess[str]
    api_page: str
    refused_cli: subprocess.CompletedProcess[str]
    refused_file: str
    direct_cli: subprocess.CompletedProcess[str]
    direct_page: str


def get(url: str, token: str = "") -> tuple[int, dict[str, str], str]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=60) as response:
            return response.status, dict(response.headers), response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read().decode()


def api_query(worker: WorkerProcess, sql: str) -> list[list[object]]:
    import orjson

    request = urllib.request.Request(
        worker.base_url + "/api/v1/query",
        data=orjson.dumps({"sql": sql}),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {TOKEN}"},
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        rows: list[list[object]] = orjson.loads(response.read())["rows"]
    return rows


def cli_report(settings: Settings, *args: str, token: str = "") -> subprocess.CompletedProcess[str]:
    env = {**settings_env(settings), "TYPOSTREAM_API_TOKEN": token}
    return subprocess.run(
        [sys.executable, "-m", "typostream.streams.cli", "report", *args],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
        env=env,
    )


@pytest.fixture(scope="module")
def run(embedded_stack: StackState, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    """One worker, the whole sample feed, every way of getting the page (once for the module)."""
    root = tmp_path_factory.mktemp("report")
    suffix = uuid.uuid4().hex[:8]
    settings = Settings(
        data_dir=root / "typostream",
        kafka_bootstrap=embedded_stack.kafka_bootstrap,
        redis_url=embedded_stack.redis_url,
        clickhouse_dsn=f"chdb://{root / 'clickhouse'}",
        app_id=f"typostream-{suffix}",
        web_port=free_port(),
        sink_batch_seconds=0.2,
        api_token=TOKEN,
        **{f.name: f"{f.default}-{suffix}" for f in fields(Settings) if f.name.startswith("topic_")},  # type: ignore[arg-type]
    )
    lines = gzip.decompress(
        resources.files("typostream.data.sample").joinpath("feed.jsonl.gz").read_bytes()
    ).splitlines()
    values = [line for line in lines if line.strip()]
    worker = WorkerProcess(settings).start()
    try:
        worker.wait_ready(timeout_s=90)
        asyncio.run(produce(settings, values))
        stats = wait_for(  # every event analysed or dead-lettered, every threat it raised stored
            worker,
            lambda s: (
                s["clickhouse_events"] + s["rejected"] >= len(values)
                and s["clickhouse_threats"] >= s["threats_emitted"] > 0
            ),
            timeout_s=180,
        )
        severities = {r[0] for r in api_query(worker, "SELECT DISTINCT severity FROM threats FINAL")}
        url = f"{worker.base_url}/report?hours={HOURS}"
        status, headers, page = get(url, TOKEN)
        assert status == 200, page
        denied = get(url)[0], get(url)[2]
        bad_params = [
            get(f"{worker.base_url}/report?{q}", TOKEN)[::2]
            for q in ("hours=0", "hours=abc", "top=101", "x=1")
        ]
        api_file = root / "api.html"
        api_cli = cli_report(
            settings, "--api", worker.base_url, "--hours", str(HOURS), "-o", str(api_file), token=TOKEN
        )
        api_page = api_file.read_text() if api_file.exists() else ""
        refused_file = root / "refused.html"
        refused_file.write_text("previous report")
        refused_cli = cli_report(settings, "--api", worker.base_url, "-o", str(refused_file))  # no token
    finally:
        worker.stop()
    direct_file = root / "direct.html"
    direct_cli = cli_report(settings, "--hours", str(HOURS), "--output", str(direct_file))
    yield Run(
        settings=settings,
        threats=int(stats["clickhouse_threats"]),
        events=int(stats["clickhouse_events"]),
        severities=severities,
        worker_page=page,
        worker_headers=headers,
        denied=denied,
        bad_params=bad_params,
        api_cli=api_cli,
        api_page=api_page,
        refused_cli=refused_cli,
        refused_file=refused_file.read_text(),
        direct_cli=direct_cli,
        direct_page=direct_file.read_text() if direct_file.exists() else "",
    )


def headline(page: str) -> dict[str, str]:
    """The headline cards: {label: value}."""
    return dict(re.findall(r'<div class="card"><span>([^<]+)</span><strong>([^<]+)</strong>', page))


def test_the_worker_serves_the_report_behind_the_api_guard(run: Run) -> None:
    assert run.worker_headers["Content-Type"] == "text/html; charset=utf-8"
    assert run.worker_headers["Content-Security-Policy"] == CSP
    numbers = headline(run.worker_page)
    assert run.threats > 50 and run.events > 3000
    assert (
        numbers["threats detected"] == f"{run.threats:,}" and numbers["events analysed"] == f"{run.events:,}"
    )
    for chart in ("chart-over-time", "chart-by-technique", "chart-top-targets", "chart-latency"):
        assert f'id="{chart}"' in run.worker_page
    assert run.denied[0] == 401 and "TYPOSTREAM_API_TOKEN" in run.denied[1]
    assert [status for status, _ in run.bad_params] == [400, 400, 400, 400]
    assert "'hours' must be a whole number 1..8784" in run.bad_params[0][1]
    assert "unknown query parameter 'x'" in run.bad_params[3][1]


def test_typostream_report_through_the_worker_and_from_chdb_directly(run: Run) -> None:
    assert run.api_cli.returncode == 0, run.api_cli.stderr
    assert run.direct_cli.returncode == 0, run.direct_cli.stderr
    assert "report written to" in run.direct_cli.stderr
    for page in (run.api_page, run.direct_page):
        assert headline(page) == headline(run.worker_page)
        assert page.count("<svg") == run.worker_page.count("<svg")
    # the same numbers and bars, whichever way it was built (the timestamps differ)
    strip = re.compile(r"generated [\d-]+ [\d:]+|<title>[^<]*</title>")
    assert strip.sub("", run.direct_page).count("<rect") == strip.sub("", run.worker_page).count("<rect")


def test_typostream_report_without_a_token_gets_the_servers_refusal(run: Run) -> None:
    assert run.refused_cli.returncode == 2, run.refused_cli.stderr
    assert "HTTP 401" in run.refused_cli.stderr and "TYPOSTREAM_API_TOKEN" in run.refused_cli.stderr
    assert run.refused_file == "previous report"  # a failed report leaves the old file alone


def read_png(data: bytes) -> tuple[int, int, list[bytes], int]:
    """(width, height, rows of pixel bytes, bytes per pixel) of an 8-bit RGB/RGBA, non-interlaced PNG."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, chunks, width, height, bpp = 8, [], 0, 0, 0
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        body = data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", body)
            assert depth == 8 and colour in (2, 6) and interlace == 0, (depth, colour, interlace)
            bpp = 3 if colour == 2 else 4
        elif kind == b"IDAT":
            chunks.append(body)
        elif kind == b"IEND":
            break
        pos += 12 + length
    raw = zlib.decompress(b"".join(chunks))
    stride, prev, rows = width * bpp, bytearray(width * bpp), []
    for y in range(height):
        start = y * (stride + 1)
        kind, line = raw[start], bytearray(raw[start + 1 : start + 1 + stride])
        if kind == 1:  # Sub
            for i in range(bpp, stride):
                line[i] = (line[i] + line[i - bpp]) & 255
        elif kind == 2:  # Up
            line = bytearray((a + b) & 255 for a, b in zip(line, prev, strict=True))
        elif kind == 3:  # Average
            for i in range(stride):
                line[i] = (line[i] + (((line[i - bpp] if i >= bpp else 0) + prev[i]) >> 1)) & 255
        elif kind == 4:  # Paeth
            for i in range(stride):
                a, b = (line[i - bpp] if i >= bpp else 0), prev[i]
                c = prev[i - bpp] if i >= bpp else 0
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(bytes(line))
        prev = line
    return width, height, rows, bpp


def colour_counts(png: bytes) -> Counter[tuple[int, int, int]]:
    _w, _h, rows, bpp = read_png(png)
    counts: Counter[tuple[int, int, int]] = Counter()
    for row in rows:
        counts.update(zip(row[0::bpp], row[1::bpp], row[2::bpp], strict=True))
    return counts


def rgb(hex_colour: str) -> tuple[int, int, int]:
    return int(hex_colour[1:3], 16), int(hex_colour[3:5], 16), int(hex_colour[5:7], 16)


def screenshot(page: str, tmp_path: Path) -> bytes:
    tmp_path.mkdir(parents=True, exist_ok=True)
    html, png = tmp_path / "report.html", tmp_path / "report.png"
    html.write_text(page)
    result = subprocess.run(
        [
            str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run", "--force-color-profile=srgb",
            "--hide-scrollbars", f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={png}",
            "--window-size=1280,2000", html.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "HOME": str(tmp_path)},
    )  # fmt: skip
    assert result.returncode == 0 and png.exists(), result.stderr[-2000:]
    return png.read_bytes()


LEGEND_PIXELS = 10 * 10  # a legend swatch: the series colour outside the charts


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (.ci/install apt-installs it)")
def test_headless_chromium_shows_the_charts(run: Run, tmp_path: Path) -> None:
    counts = colour_counts(screenshot(run.worker_page, tmp_path))
    expected = {f"severity {s}": SEVERITY_COLOURS[s] for s in run.severities}
    expected |= {"technique bars": TECHNIQUE_COLOUR, "target bars": TARGET_COLOUR}
    expected |= {f"latency {q}": colour for q, colour in LATENCY_COLOURS.items()}
    seen = {name: counts[rgb(colour)] for name, colour in expected.items()}
    assert all(n > 3 * LEGEND_PIXELS for n in seen.values()), seen  # drawn bars, not just the legend
    absent = set(SEVERITY_COLOURS) - run.severities
    assert all(counts[rgb(SEVERITY_COLOURS[s])] == 0 for s in absent), absent  # no series without data
    # an empty window draws no bars at all: the colours come from the charts
    empty = re.sub(r"<svg\b.*?</svg>", "", run.worker_page, flags=re.S)
    bare = colour_counts(screenshot(empty, tmp_path / "empty"))
    assert all(bare[rgb(c)] <= LEGEND_PIXELS * 2 for c in expected.values()), bare


def test_a_data_dir_from_before_migrations_gets_its_views_when_reported_on(run: Run, tmp_path: Path) -> None:
    path = tmp_path / "old-clickhouse"
    events, threats = analysed_sample()
    build = (
        "import sys, orjson\n"
        "from pathlib import Path\n"
        "from typostream.agents.adapters.clickhouse import ClickHouseConnection\n"
        "from typostream.agents.adapters.sinks.clickhouse import ClickHouseSink\n"
        "from typostream.agents.domain.messages import threat_db_rows\n"
        f"c = ClickHouseConnection.open('chdb://{path}', Path('unused'))\n"
        f"c.client.command({EVENTS_DDL_FIRST_RELEASE!r})\n"
        f"c.client.command({THREATS_DDL_BEFORE_MIGRATIONS!r})\n"
        "rows = orjson.loads(sys.stdin.buffer.read())\n"
        "sink = ClickHouseSink(c)\n"
        "sink.insert_events(rows['events'])\n"
        "sink.insert_threats(threat_db_rows(rows['threats']))\n"
        "c.close()\n"
    )
    import orjson

    made = subprocess.run(
        [sys.executable, "-c", build],
        input=orjson.dumps({"events": events, "threats": threats}),
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert made.returncode == 0, made.stderr.decode()
    out = tmp_path / "old.html"
    settings = run.settings.replace(clickhouse_dsn=f"chdb://{path}", data_dir=tmp_path / "d")
    result = cli_report(settings, "--output", str(out))
    assert result.returncode == 0, result.stderr
    assert headline(out.read_text())["threats detected"] == f"{len(threats):,}"
    assert 'id="chart-over-time"' in out.read_text()
