"""Load on ``POST /api/v1/scan``: the seed's scenarios and a fixed 1,000 requests/s.

Usage::

    .venv/bin/python benchmarks/scan_load.py                       # every scenario, 20 s each
    .venv/bin/python benchmarks/scan_load.py --scenario peak --duration 30
    .venv/bin/python benchmarks/scan_load.py --work-dir .bench-scan-load   # keep (reuse) the advisories
    .venv/bin/python benchmarks/scan_load.py --smoke --output smoke.md     # seconds, small numbers

What runs, each in its own process, on 127.0.0.1 only:

* the server: ``typostream api`` (``streams/cli/api.py``: the worker's scan endpoint, limits, guard
  and request metrics on a plain aiohttp server, no Kafka), with every popular-name index, the
  bundled advisory seed and an on-disk advisory index of ``--advisories`` synthetic OSV advisories
  (``benchmarks/advisories.py``'s generator, synced as ``advisories sync`` does);
* the load: ``locust --headless`` with ``benchmarks/locust/scan.py`` (``FastHttpUser``), or the
  open-loop generator ``benchmarks/locust/open_loop.py`` (aiohttp); both send the body mix of
  ``benchmarks/locust/scan_bodies.py`` (the three body shapes, names from ``data/names/``, typos
  of popular names, packages with advisories);
* the baseline: a bare aiohttp endpoint (``--serve-hello``: same path, reads the body, answers a
  fixed JSON; no middleware, no scan) under the same load, right after each scan run (so both see
  about the same machine: it is shared, and others' work moves the tails more than anything here).

Runs (``--scenario``; ``all`` is every one):

* ``normal`` / ``peak`` / ``stress``: the seed's 100 / 500 / 1,000 Locust users, each waiting
  0.5-1.0 s between requests (~1.3 requests/s a user), ramped in ``RAMP_S``, then ``--duration``
  seconds measured (Locust's ``--reset-stats``); judged against the seed's thresholds (p95 < 2 s,
  p99 < 5 s, errors < 1 %, >= 100 requests/s);
* ``rate``: a fixed ``--rate`` (1,000/s), judged against the goal (p99 < 20 ms, 0 errors) with the
  open-loop generator (each request due at its time whatever the answers before it; latency from
  the time it was due; ``OPEN_LOOP_CONNECTIONS`` keep-alive connections), and shown with Locust's
  ``constant_throughput`` (``RATE_PER_USER`` requests/s a user) beside it. Locust offers the rate,
  but with 200 gevent users its own scheduling adds tens of milliseconds to what it measures
  (the bare endpoint's column shows it), so it does not judge the goal.

Latencies are the client's, every request, exact (Locust's own table rounds them). The server's RSS
is sampled every ``SAMPLE_EVERY_S`` (psutil), and so are the CPU times of the server, the generator
and the whole machine: the CPU the rest of the machine used in the measured window is shown (the
machine is shared). Writes the markdown report to ``benchmarks/results/scan_load.md``
(``--output``; ``--smoke`` writes none unless asked).
"""

from __future__ import annotations

import argparse
import bisect
import gc
import json
import math
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
from rich.console import Console
from rich.markdown import Markdown
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "benchmarks" / "results" / "scan_load.md"
LOCUST_DIR = REPO / "benchmarks" / "locust"
BIN = Path(sys.executable).parent
SCENARIOS = {"normal": 100, "peak": 500, "stress": 1000}
RAMP_S = 2.0
RATE_PER_USER = 5.0
OPEN_LOOP_CONNECTIONS = 200
SAMPLE_EVERY_S = 0.1
# The seed's thresholds, and the goal of the fixed rate.
P95_MS, P99_MS, ERRORS, MIN_RPS = 2000.0, 5000.0, 0.01, 100.0
GOAL_P99_MS = 20.0
SMOKE: dict[str, Any] = {
    "users": {"normal": 5, "peak": 10, "stress": 20},
    "rate": 50.0,
    "duration": 1.0,
    "ramp": 1.0,
    "advisories": 300,
}

console = Console(stderr=True)


# --- servers -------------------------------------------------------------------------------------
def serve_hello(port: int) -> None:
    """The baseline: a bare aiohttp server answering the scan path with a fixed body (own process)."""
    import asyncio
    import signal

    from aiohttp import web

    body = b'{"results": []}'

    async def scan(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(body=body, content_type="application/json")

    async def main() -> None:
        app = web.Application()
        app.router.add_post("/api/v1/scan", scan)
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        stop = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        host, bound = runner.addresses[0][:2]
        print(f"hello on http://{host}:{bound}", file=sys.stderr, flush=True)
        await stop.wait()
        await runner.cleanup()

    asyncio.run(main())


@dataclass
class Server:
    name: str
    proc: subprocess.Popen[bytes]
    url: str

    @property
    def ps(self) -> psutil.Process:
        return psutil.Process(self.proc.pid)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@contextmanager
def server_running(name: str, args: list[str], env: dict[str, str], work: Path) -> Iterator[Server]:
    """Start ``args`` and wait for its ``http://HOST:PORT`` line; stop it (SIGTERM) on leaving."""
    log = work / f"{name}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=work)
    server = None
    try:
        deadline = time.monotonic() + 120
        while server is None:
            found = re.search(r"http://[\w.\[\]:]+", log.read_text(errors="replace"))
            if found:
                server = Server(name, proc, found.group(0))
            elif proc.poll() is not None:
                raise SystemExit(f"{name} exited ({proc.returncode}):\n{log.read_text()[-3000:]}")
            elif time.monotonic() > deadline:
                raise SystemExit(f"{name} did not start within 120 s:\n{log.read_text()[-3000:]}")
            else:
                time.sleep(0.05)
        yield server
    finally:
        Server(name, proc, "").stop()


def clean_env(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TYPOSTREAM_")}
    env["TYPOSTREAM_DATA_DIR"] = str(data_dir)
    return env


# --- load runs -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Load:
    """One kind of load: Locust users with a wait, or the open-loop generator at a rate."""

    generator: str  # "locust" or "open-loop"
    users: int = 0  # Locust users, or open-loop connections
    wait: str = "think"  # Locust: "think" or "rate:X"
    rate: float = 0.0  # open loop: requests/s

    def describe(self) -> str:
        if self.generator == "open-loop":
            return f"open loop, {self.rate:,.0f} requests/s due, {self.users} connections"
        if self.wait.startswith("rate:"):
            return f"Locust, {self.users:,} users x constant_throughput({self.wait[5:]})"
        return f"Locust, {self.users:,} users thinking 0.5-1.0 s"


@dataclass
class Run:
    """What one load run against one server measured (the measured window only)."""

    load: Load
    requests: int = 0
    failures: int = 0
    seconds: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)
    sent_ms: list[float] = field(default_factory=list)  # open loop: from sending, not from due
    rss_peak: int = 0
    cpu_pct: dict[str, float] = field(default_factory=dict)  # server, generator, rest: % of one core

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def error_rate(self) -> float:
        return self.failures / self.requests if self.requests else 1.0

    def pct(self, q: float, sent: bool = False) -> float:
        """The ``q``-th percentile latency in ms (nearest rank)."""
        values = sorted(self.sent_ms if sent else self.latencies_ms)
        if not values:
            return float("nan")
        return values[min(len(values) - 1, max(0, math.ceil(q / 100 * len(values)) - 1))]


def cpu_seconds(process: psutil.Process) -> float:
    try:
        times = process.cpu_times()
    except psutil.Error:
        return math.nan
    return times.user + times.system


def busy_seconds() -> float:
    """CPU seconds the whole machine spent not idle, so far."""
    times = psutil.cpu_times()
    return sum(times) - times.idle - getattr(times, "iowait", 0.0)


def load_command(
    load: Load, url: str, total_s: float, ramp: float, samples: Path, queries: Path
) -> list[str]:
    if load.generator == "open-loop":
        return [
            sys.executable, str(LOCUST_DIR / "open_loop.py"), "--host", url, "--rate", f"{load.rate:g}",
            "--duration", f"{total_s - ramp:g}", "--ramp", f"{ramp:g}", "--connections", str(load.users),
            "--samples", str(samples), "--queries", str(queries),
        ]  # fmt: skip
    return [
        str(BIN / "locust"), "-f", str(LOCUST_DIR / "scan.py"), "--headless", "--host", url,
        "-u", str(load.users), "-r", f"{load.users / ramp:g}", "-t", f"{math.ceil(total_s)}s",
        "--reset-stats", "--only-summary", "--stop-timeout", "2", "--exit-code-on-error", "0",
        "--loglevel", "WARNING",
    ]  # fmt: skip


def run_load(
    server: Server, load: Load, duration: float, ramp: float, work: Path, progress: Progress, label: str
) -> Run:
    """One run of ``load`` against ``server``: ramp, then ``duration`` s measured."""
    slug = re.sub(r"\W+", "-", label)
    samples, log = work / f"samples-{slug}.json", work / f"load-{slug}.log"
    queries = work / "tree" / "queries.json"
    env = {**os.environ, "TYPOSTREAM_LOAD_WAIT": load.wait, "TYPOSTREAM_LOAD_SAMPLES": str(samples),
           "TYPOSTREAM_LOAD_QUERIES": str(queries)}  # fmt: skip
    total = ramp + duration
    task = progress.add_task(label, total=total)
    server_ps, own = server.ps, psutil.Process()
    timeline: list[tuple[float, float, float, float, float]] = []  # wall, server, generator, busy, own
    with log.open("wb") as out:
        proc = subprocess.Popen(
            load_command(load, server.url, total, ramp, samples, queries),
            stdout=out, stderr=subprocess.STDOUT, env=env, cwd=work,
        )  # fmt: skip
        generator, started = psutil.Process(proc.pid), time.monotonic()
        rss_peak = 0
        while proc.poll() is None:
            progress.update(task, completed=min(total, time.monotonic() - started))
            gen_cpu = cpu_seconds(generator)
            if not math.isnan(gen_cpu):
                timeline.append(
                    (time.time(), cpu_seconds(server_ps), gen_cpu, busy_seconds(), cpu_seconds(own))
                )
            rss_peak = max(rss_peak, server_ps.memory_info().rss)
            time.sleep(SAMPLE_EVERY_S)
    progress.update(task, completed=total)
    if proc.returncode != 0 or not samples.exists():
        raise SystemExit(f"{load.generator} failed ({proc.returncode}):\n{log.read_text()[-3000:]}")
    data = json.loads(samples.read_text())
    begin, end = data["spawned_at"] or data["samples"][0][0], data["stopping_at"]
    kept = [s for s in data["samples"] if begin <= s[0] < end]
    run = Run(load=load, rss_peak=rss_peak, seconds=end - begin)
    run.requests = len(kept)
    run.failures = sum(1 for s in kept if not s[2])
    run.latencies_ms = [s[1] for s in kept]
    run.sent_ms = [s[3] for s in kept if len(s) > 3]
    run.cpu_pct = window_cpu(timeline, begin, end)
    return run


def window_cpu(
    timeline: list[tuple[float, float, float, float, float]], begin: float, end: float
) -> dict[str, float]:
    """% of one core used by the server, the generator and everything else between ``begin`` and ``end``."""
    walls = [row[0] for row in timeline]
    first = timeline[max(0, bisect.bisect_left(walls, begin) - 1)] if timeline else None
    last = timeline[min(len(timeline) - 1, bisect.bisect_left(walls, end))] if timeline else None
    if first is None or last is None or last[0] <= first[0]:
        return {"server": math.nan, "generator": math.nan, "rest": math.nan}
    span = last[0] - first[0]
    server, gen, busy, own = (last[i] - first[i] for i in range(1, 5))
    rest = max(0.0, busy - server - gen - own)
    return {"server": 100 * server / span, "generator": 100 * gen / span, "rest": 100 * rest / span}


# --- set-up --------------------------------------------------------------------------------------
def prepare_advisories(work: Path, count: int) -> dict[str, Any]:
    """``count`` synthetic advisories (advisories.py's generator) synced into the data dir's index."""
    sys.path.insert(0, str(REPO / "benchmarks"))
    import advisories  # benchmarks/advisories.py

    from typostream.agents.adapters.advisory_index import read_status, sync

    tree, index_dir = work / "tree", work / "data" / "advisories"
    stamp = tree / "count"
    if not stamp.exists() or stamp.read_text() != str(count):
        shutil.rmtree(tree, ignore_errors=True)
        shutil.rmtree(index_dir, ignore_errors=True)
        advisories.generate(tree, count, 2000)
        stamp.write_text(str(count))
    status = read_status(index_dir)
    if status is None:
        sync(tree, index_dir)
        status = read_status(index_dir)
    assert status is not None
    return {"advisories": status.advisories, "packages": status.packages}


def library_baseline(data_dir: Path, names: int) -> dict[str, float]:
    """``Assessor.assess`` per call in this process, built as the server builds it (median, p99 µs);
    also builds the index cache the server then reads."""
    from typostream.data.names import iter_names, names_file
    from typostream.streams.components import build_assessor, build_detector
    from typostream.streams.config import Settings

    settings = Settings.from_env(clean_env(data_dir), data_dir=data_dir)
    assessor = build_assessor(settings, build_detector(settings))
    rng = random.Random(20261213)
    queries = [
        (name, registry)
        for registry in ("npm", "pypi")
        for name in rng.sample(list(iter_names(names_file(registry))), names // 2)
    ]
    rng.shuffle(queries)
    for name, registry in queries[:200]:
        assessor.assess(name, registry)
    timings = []
    gc.disable()
    try:
        for name, registry in queries:
            started = time.perf_counter_ns()
            assessor.assess(name, registry)
            timings.append((time.perf_counter_ns() - started) / 1000)
    finally:
        gc.enable()
    timings.sort()
    return {"median_us": statistics.median(timings), "p99_us": timings[math.ceil(len(timings) * 0.99) - 1]}


# --- report --------------------------------------------------------------------------------------
def ms(value: float) -> str:
    return f"{value:,.1f}" if value < 100 else f"{value:,.0f}"


def mib(value: float) -> str:
    return f"{value / 2**20:,.0f}"


def ratio(a: float, b: float) -> str:
    if not b > 0:
        return "-"
    return f"{a / b:.1f}x" if a / b >= 0.95 else f"{a / b:.2f}x"


def verdict(ok: bool) -> str:
    return "pass" if ok else "**FAIL**"


def cpu(run: Run) -> str:
    return " / ".join(f"{run.cpu_pct[k]:.0f}" for k in ("server", "generator", "rest"))


def figures(scan: Run, base: Run, judged: dict[str, tuple[str, bool]]) -> list[str]:
    """Table rows: scan API, baseline, ratio, then the threshold and verdict of ``judged`` rows."""

    def row(name: str, key: str, a: str, b: str, r: str = "") -> str:
        limit, ok = judged.get(key, ("", None))
        return f"| {name} | {a} | {b} | {r} | {limit} | {'' if ok is None else verdict(ok)} |"

    rows = [row("requests (measured s)", "", f"{scan.requests:,} ({scan.seconds:.1f})",
                f"{base.requests:,} ({base.seconds:.1f})")]  # fmt: skip
    rows.append(row("throughput (requests/s)", "rps", f"{scan.rps:,.0f}", f"{base.rps:,.0f}"))
    for q in (50, 95, 99):
        a, b = scan.pct(q), base.pct(q)
        rows.append(row(f"p{q} (ms)", f"p{q}", ms(a), ms(b), ratio(a, b)))
    rows.append(row("max (ms)", "", ms(scan.pct(100)), ms(base.pct(100))))
    rows.append(
        row("errors", "errors", f"{100 * scan.error_rate:.2f} % ({scan.failures:,})",
            f"{100 * base.error_rate:.2f} % ({base.failures:,})")
    )  # fmt: skip
    rows.append(row("server peak RSS (MiB)", "", mib(scan.rss_peak), mib(base.rss_peak)))
    rows.append(row("CPU, % of one core: server / generator / rest of machine", "", cpu(scan), cpu(base)))
    return rows


HEADER = ["| figure | scan API | bare aiohttp (baseline) | ratio | {} | |", "|---|---|---|---|---|---|"]


def scenario_table(name: str, scan: Run, base: Run) -> tuple[list[str], bool]:
    judged = {
        "rps": (f">= {MIN_RPS:.0f}", scan.rps >= MIN_RPS),
        "p95": (f"< {P95_MS:,.0f}", scan.pct(95) < P95_MS),
        "p99": (f"< {P99_MS:,.0f}", scan.pct(99) < P99_MS),
        "errors": (f"< {100 * ERRORS:.0f} %", scan.error_rate < ERRORS),
    }
    lines = [f"### {name}: {scan.load.describe()}", "", HEADER[0].format("seed threshold"), HEADER[1]]
    return [*lines, *figures(scan, base, judged), ""], all(ok for _, ok in judged.values())


def rate_table(rate: float, runs: dict[str, tuple[Run, Run]]) -> tuple[list[str], bool]:
    scan, base = runs["rate"]
    judged = {
        "rps": (f"{rate:,.0f} offered", scan.rps >= 0.95 * rate),
        "p99": (f"< {GOAL_P99_MS:.0f}", scan.pct(99) < GOAL_P99_MS),
        "errors": ("0", scan.failures == 0),
    }
    lines = [f"### fixed rate: {scan.load.describe()}", "", HEADER[0].format("goal"), HEADER[1]]
    lines += [*figures(scan, base, judged), ""]
    if scan.sent_ms and base.sent_ms:
        lines += [
            f"Open loop, latency from when each request was sent rather than due (the difference is "
            f"waiting for a free connection or for the generator to get the CPU): p99 scan API "
            f"{ms(scan.pct(99, sent=True))} ms, bare aiohttp {ms(base.pct(99, sent=True))} ms.",
            "",
        ]
    if "rate-locust" in runs:
        scan_l, base_l = runs["rate-locust"]
        lines += [
            f"Locust at the same rate ({scan_l.load.describe()}; not judged): scan API "
            f"{scan_l.rps:,.0f} requests/s, p50 / p95 / p99 {ms(scan_l.pct(50))} / {ms(scan_l.pct(95))} / "
            f"{ms(scan_l.pct(99))} ms, {scan_l.failures:,} errors; bare aiohttp p50 / p95 / p99 "
            f"{ms(base_l.pct(50))} / {ms(base_l.pct(95))} / {ms(base_l.pct(99))} ms.",
            "",
        ]
    return lines, all(ok for _, ok in judged.values())


# --- main ----------------------------------------------------------------------------------------
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scenario", choices=[*SCENARIOS, "rate", "all"], default="all")
    parser.add_argument("--duration", type=float, default=None, help="measured seconds per run (20)")
    parser.add_argument("--rate", type=float, default=None, help="requests/s of the fixed-rate run (1000)")
    parser.add_argument("--advisories", type=int, default=None, help="synthetic advisories (250000)")
    parser.add_argument("--work-dir", type=Path, default=None, help="keep the advisories here (reused)")
    parser.add_argument(
        "--output", type=Path, default=None, help="report file (default: benchmarks/results/)"
    )
    parser.add_argument("--smoke", action="store_true", help="seconds: few users, short runs, small index")
    parser.add_argument("--serve-hello", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_hello is not None:
        serve_hello(args.serve_hello)
        return
    users = SMOKE["users"] if args.smoke else SCENARIOS
    duration = args.duration or (SMOKE["duration"] if args.smoke else 20.0)
    ramp = SMOKE["ramp"] if args.smoke else RAMP_S
    rate = args.rate or (SMOKE["rate"] if args.smoke else 1000.0)
    count = args.advisories or (SMOKE["advisories"] if args.smoke else 250_000)
    output = args.output or (None if args.smoke else RESULTS)
    chosen = [*SCENARIOS, "rate"] if args.scenario == "all" else [args.scenario]
    loads: dict[str, Load] = {name: Load("locust", users[name]) for name in SCENARIOS if name in chosen}
    if "rate" in chosen:
        connections = min(OPEN_LOOP_CONNECTIONS, max(1, round(rate / 5)))
        loads["rate"] = Load("open-loop", connections, rate=rate)
        per_user = min(RATE_PER_USER, rate)
        loads["rate-locust"] = Load("locust", max(1, round(rate / per_user)), wait=f"rate:{per_user:g}")

    work = (args.work_dir or Path(tempfile.mkdtemp(prefix="typostream-scan-load-"))).resolve()
    work.mkdir(parents=True, exist_ok=True)
    data_dir = work / "data"
    load_before = os.getloadavg()
    scan_runs: dict[str, Run] = {}
    base_runs: dict[str, Run] = {}
    try:
        with console.status(f"advisories: {count:,} synthetic OSV files synced into the on-disk index"):
            adv = prepare_advisories(work, count)
        with console.status("library baseline: Assessor.assess per call (and the index cache)"):
            library = library_baseline(data_dir, 2000 if args.smoke else 20_000)
        env = clean_env(data_dir)
        api_args = [str(BIN / "typostream"), "api", "--host", "127.0.0.1", "--port", "0"]
        hello_args = [sys.executable, str(Path(__file__).resolve()), "--serve-hello", "0"]
        columns = (TextColumn("{task.description:<28}"), BarColumn(), TimeElapsedColumn())
        with (
            Progress(*columns, console=console) as progress,
            server_running("api", api_args, env, work) as api,
            server_running("hello", hello_args, env, work) as hello,
        ):
            idle_rss = api.ps.memory_info().rss
            for name, load in loads.items():  # each baseline right after its scan run: same machine load
                scan_runs[name] = run_load(api, load, duration, ramp, work, progress, f"{name}: scan API")
                base_runs[name] = run_load(hello, load, duration, ramp, work, progress, f"{name}: baseline")
            peak_rss = max(api.ps.memory_info().rss, *(r.rss_peak for r in scan_runs.values()))
    finally:
        if args.work_dir is None:
            shutil.rmtree(work, ignore_errors=True)
    load_after = os.getloadavg()
    runs = {name: (scan_runs[name], base_runs[name]) for name in loads}

    import locust

    lines = [
        "# Scan API load (`benchmarks/scan_load.py`)",
        "",
        f"Run {time.strftime('%Y-%m-%d %H:%M')} on {os.cpu_count()} cores; load average "
        f"{load_before[0]:.1f} before, {load_after[0]:.1f} after (the machine is shared: see the CPU rows).",
        f"Command: `.venv/bin/python benchmarks/scan_load.py --scenario {args.scenario}"
        f" --duration {duration:g} --rate {rate:g} --advisories {count}{' --smoke' if args.smoke else ''}`.",
        "",
        f"Server: `typostream api` on 127.0.0.1 with every popular-name index, the bundled advisory seed "
        f"and an on-disk index of {adv['advisories']:,} synthetic advisories ({adv['packages']:,} "
        f"packages). Load: Locust {locust.__version__} (`FastHttpUser`, one process, "
        f"`benchmarks/locust/scan.py`) and an open-loop aiohttp generator "
        f"(`benchmarks/locust/open_loop.py`), "
        f"the same body mix; {duration:g} s measured per run after a {ramp:g} s ramp. Latencies are the "
        f"client's, every request. Baseline: a bare aiohttp endpoint (its own process) under the same "
        f"load right after each scan run; the CPU rows show what the rest of the machine used meanwhile.",
        "",
        f"Library: `Assessor.assess` median {library['median_us']:.1f} µs, p99 {library['p99_us']:.1f} µs a "
        f"name (this process, same indexes). Server RSS: {mib(idle_rss)} MiB once serving (indexes and "
        f"advisories loaded), {mib(peak_rss)} MiB peak over the runs.",
        "",
    ]
    results: dict[str, bool] = {}
    for name in chosen:
        if name == "rate":
            table, results[name] = rate_table(rate, runs)
        else:
            table, results[name] = scenario_table(name, *runs[name])
        lines += table
    summary = ", ".join(f"{name} {'pass' if ok else 'FAIL'}" for name, ok in results.items())
    lines += [f"Result: {summary}.", ""]
    report = "\n".join(lines)
    Console(width=160).print(Markdown(report))
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(report)
        console.print(f"written to {output}")


if __name__ == "__main__":
    main()
