"""Replay benchmark: every PyPI project name published once through a typostream worker, wall time.

Issue 13's goal: every PyPI name replayed in <= 90 s on the 2-core machine, each worker process
under 500 MB resident with the full detection indexes and an advisory index at full scale loaded.

* **names**: ``data/names/pypi-all.txt.xz`` (every PyPI project name, PEP 503 normalised, 886,323;
  ``data/names/generate.py`` writes it). ``--limit N`` takes N of them evenly spaced through the
  sorted list (every k-th name, so each part of the alphabet is represented).
* **events**: one OpenSSF package-feeds publish per name, in the shape ``benchmarks/pipeline.py``'s
  ``make_events`` sends (its PyPI publishes are the templates, cycled: version, date, schema
  version; the name replaced), with ``artifact_id`` set to a tag of the run, so this run's rows are
  found in ClickHouse by it.
* **advisories**: ``--advisories N`` synthetic OSV advisories (``benchmarks/advisories.py``'s
  generator, 250,000 by default: the ossf/malicious-packages scale) synced into an on-disk advisory
  index that the worker and the baselines look up per event. The tree and index are kept in
  ``--work-dir`` (when given) and reused by the next run. They name real PyPI names (of
  ``data/names/pypi.tsv.gz``) with listed versions or every version, so part of the replay is
  flagged known-malicious; ``0`` uses the bundled seed only.
* **raw baselines** (``benchmarks/pipeline.py``'s ``raw_same_work`` and ``raw_passthrough``, same
  run, same events, same assessor): one aiokafka process consuming the events, published before
  its clock starts, doing the worker's work without Faust (same-work: detect, produce, RocksDB
  state, chDB inserts) or only validate + detect + produce (pass-through).
* **worker**: ``typostream worker`` (``--processes N`` for each N of ``--processes``) on its own
  topics and chDB. After start-up and a 200-event warm-up through every process, the clock starts
  at the first publish of the replay. It stops at the last event row in ClickHouse (the store's
  ``typostream_sink_rows_total{table="events",sink="clickhouse"}``, polled every 0.2 s, then
  confirmed by a ``count() FINAL``); the last analysed record is the newest producer timestamp on
  ``typostream.analysed``, read after the run (exact, no polling).
* **completeness**: after the worker stopped, the run's rows are read from its chDB: event rows,
  distinct names (each published name must be there; missing names are listed), threats by type.
* **RSS**: each worker process (supervisor, store, detect-i) sampled every 0.25 s during the
  replay, and its lifetime peak (``VmHWM``: start-up and index loading included) read before it
  stops; CPU time per event of each process during the replay.

    .venv/bin/python benchmarks/replay.py --work-dir .typostream/bench-replay  # every name, 1 and 2 processes
    .venv/bin/python benchmarks/replay.py --limit 100000 --processes 2 --baselines same
    .venv/bin/python benchmarks/replay.py --smoke                       # seconds: 3,000 names, CI

Results are printed as markdown tables and written to ``benchmarks/results/replay.md``
(``--output``; ``--smoke`` and ``--limit`` write nothing unless asked), ``--json`` writes the
figures as JSON. Progress goes to stderr (rich).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from typostream.data.names import pypi_all_names
from typostream.streams import components
from typostream.streams.config import Settings
from typostream.streams.producer import produce_lines
from typostream.streams.stack import EmbeddedStack
from typostream.streams.topics import ensure_topics
from typostream.streams.worker_process import WorkerProcess

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
# Helpers of the pipeline benchmark, imported read-only (that file belongs to its own benchmark).
from pipeline import (  # noqa: E402
    clickhouse_events,
    cmd_role,
    cpu_seconds,
    free_ports,
    loadavg,
    make_events,
    markdown,
    metrics_ready,
    proc_status_mb,
    process_tree,
    raw_passthrough,
    raw_same_work,
    rss_mb,
    sink_rows,
    wait_for,
    worker_label,
)

RESULTS = HERE / "results" / "replay.md"
GOAL_SECONDS = 90.0
GOAL_RSS_MB = 500.0
SMOKE_NAMES = 3_000
SMOKE_ADVISORIES = 2_000
DEFAULT_ADVISORIES = 250_000
WARM_UP = 200
PROJECT_FROM = 50_000  # a partial replay this long is projected to every name (start-up effects amortised)
TOPICS = ("input", "events", "analysed", "threats", "dlq")
BASELINES = {
    "same": "raw same-work baseline (aiokafka + rocksdict + chDB, 1 process)",
    "pass": "raw pass-through (validate + detect + produce, 1 process)",
}


# -- names and events --------------------------------------------------------------------------


def select_names(limit: int | None) -> tuple[list[str], int]:
    """``limit`` names evenly spaced through the sorted list (all when None); and the list's size."""
    names = pypi_all_names()
    total = len(names)
    if limit is None or limit >= total:
        return names, total
    if limit <= 0:
        raise SystemExit("--limit must be a positive number of names")
    return [names[i * total // limit] for i in range(limit)], total


def replay_events(names: Sequence[str], tag: str) -> list[bytes]:
    """One package-feeds publish per name, the fields of ``make_events``' PyPI publishes (cycled)."""
    templates = [doc for doc in map(orjson.loads, make_events(5_000)) if doc.get("type") == "pypi"]
    if not templates:
        raise RuntimeError("the sample feed has no PyPI publish to copy the event shape from")
    out = []
    for i, name in enumerate(names):
        doc = dict(templates[i % len(templates)])
        doc["name"] = name
        doc["artifact_id"] = tag
        # An exact-size copy: kept orjson.dumps results hold ~4 KB of heap each (measured here:
        # 200,000 kept results grew this process by 786 MB, their copies by 37 MB).
        out.append(b"%b" % orjson.dumps(doc))
    return out


# -- advisories --------------------------------------------------------------------------------


def prepare_advisories(count: int, work: Path, console: Console) -> tuple[Path | None, dict[str, Any]]:
    """An advisory index of ``count`` synthetic advisories under ``work`` (reused when there already)."""
    if count <= 0:
        return None, {"advisories": 0}
    from advisories import generate  # benchmarks/advisories.py, read-only

    from typostream.agents.adapters.advisory_index import index_path, sync

    tree = work / f"advisories-{count}"
    index_dir = tree / "index"
    info: dict[str, Any] = {"advisories": count}
    marker = tree / "generated.json"
    if not marker.is_file():
        shutil.rmtree(tree, ignore_errors=True)
        tree.mkdir(parents=True)
        with console.status(f"generating {count:,} advisories (once per --work-dir)"):
            made = generate(tree, count, 0)
        marker.write_text(json.dumps(made))
        info["generated_s"] = round(made["seconds"], 1)
    if not index_path(index_dir).is_file():
        with console.status(f"advisories sync of {count:,} files"):
            report = sync(tree, index_dir)  # reads its osv/malicious/
        info["sync_s"] = round(report.seconds, 1)
    info["index_mb"] = round(index_path(index_dir).stat().st_size / 2**20, 1)
    return index_dir, info


# -- per-process memory --------------------------------------------------------------------------


def vm_hwm_mb(pid: int) -> float:
    """The kernel's peak resident set of ``pid`` (VmHWM), in MiB; 0 when it is gone."""
    return proc_status_mb(pid, "VmHWM").get("VmHWM", 0.0)


@dataclass
class Sampler:
    """RSS of every process of a worker by role, sampled every 0.25 s; peaks per phase."""

    pid: int
    phase: str = "start"
    peaks: dict[str, dict[str, float]] = field(default_factory=dict)
    loads: dict[str, list[float]] = field(default_factory=dict)  # 1-minute load average, per phase
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> Sampler:
        def sample() -> None:
            while not self._stop.is_set():
                peaks = self.peaks.setdefault(self.phase, {})
                with contextlib.suppress(OSError, ValueError, IndexError):
                    load = float(Path("/proc/loadavg").read_text().split()[0])
                    self.loads.setdefault(self.phase, []).append(load)
                for pid in process_tree(self.pid):
                    role = cmd_role(pid)
                    peaks[role] = max(peaks.get(role, 0.0), rss_mb(pid))
                self._stop.wait(0.25)

        self._thread = threading.Thread(target=sample, daemon=True)
        self._thread.start()
        return self

    def lifetime_peaks(self) -> dict[str, float]:
        return {cmd_role(pid): vm_hwm_mb(pid) for pid in process_tree(self.pid)}

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()


# -- publishing and waiting ----------------------------------------------------------------------


@dataclass
class Publisher:
    """Publishes the events from a thread of its own; counts acknowledged records as it goes."""

    settings: Settings
    events: list[bytes]
    acked: int = 0
    started: float = 0.0
    finished: float | None = None
    error: BaseException | None = None

    def run(self) -> None:
        try:
            asyncio.run(self._publish())
        except BaseException as exc:  # reported by the waiting loop
            self.error = exc

    async def _publish(self) -> None:
        producer = AIOKafkaProducer(bootstrap_servers=self.settings.kafka_bootstrap, linger_ms=5, acks="all")
        await producer.start()
        try:
            pending = []
            self.started = time.monotonic()
            for value in self.events:
                pending.append(await producer.send(self.settings.topic_input, value))
                if len(pending) >= 2_000:
                    for delivery in pending:
                        await delivery
                    self.acked += len(pending)
                    pending.clear()
            for delivery in pending:
                await delivery
            self.acked += len(pending)
            self.finished = time.monotonic()
        finally:
            await producer.stop()


async def last_analysed(settings: Settings, expected: int, idle_s: float = 3.0) -> tuple[int, float | None]:
    """Records on the analysed topic and the newest producer timestamp (epoch seconds) among them.

    Read to the end by fetching until ``expected`` records arrived and nothing more came for
    ``idle_s`` (Tansu's end offsets are not the high watermark, infra notes).
    """
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        tps = [TopicPartition(settings.topic_analysed, p) for p in range(settings.partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        count, newest, quiet_since = 0, 0, time.monotonic()
        while True:
            batch = await consumer.getmany(timeout_ms=500, max_records=10_000)
            got = sum(len(records) for records in batch.values())
            for records in batch.values():
                count += len(records)
                newest = max([newest, *(r.timestamp for r in records)])
            now = time.monotonic()
            if got:
                quiet_since = now
            elif now - quiet_since > (idle_s if count >= expected else 30.0):
                break
        return count, (newest / 1000 if newest else None)
    finally:
        await consumer.stop()


async def delete_topics(settings: Settings) -> None:
    """Best effort: free the broker's memory of a finished run (memory storage keeps every record)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap, request_timeout_ms=10_000)
    await admin.start()
    try:
        prefix = settings.topic_input.rsplit(".", 1)[0] + "."
        names = [t for t in await admin.list_topics() if t.startswith((prefix, settings.app_id + "-"))]
        if names:
            await admin.delete_topics(names)
    finally:
        await admin.close()


# -- one worker run ----------------------------------------------------------------------------


@dataclass
class WorkerRun:
    processes: int
    names: int
    tag: str = ""
    clickhouse_dsn: str = ""
    complete: bool = False
    stopped_s: float | None = None
    rows_at_stop: int = 0
    publish_s: float | None = None
    analysed_s: float | None = None
    clickhouse_s: float | None = None
    rows: int = 0
    rows_final: int = 0
    distinct_names: int = 0
    missing: list[str] = field(default_factory=list)
    missing_count: int = 0
    analysed_records: int = 0
    threats: int = 0
    flagged_names: int = 0
    threats_by_type: dict[str, int] = field(default_factory=dict)
    replay_rss_mb: dict[str, float] = field(default_factory=dict)
    start_rss_mb: dict[str, float] = field(default_factory=dict)
    lifetime_rss_mb: dict[str, float] = field(default_factory=dict)
    cpu_us_per_event: dict[str, float] = field(default_factory=dict)
    load_during: tuple[float, float] | None = None  # min, max of the 1-minute load average
    log: str = ""

    @property
    def rate(self) -> float:
        return self.names / self.clickhouse_s if self.clickhouse_s else 0.0

    @property
    def label(self) -> str:
        return worker_label(self.processes)


def run_worker(
    base: Settings, root: Path, processes: int, names: list[str], console: Console, timeout_s: float
) -> WorkerRun:
    run_id = uuid.uuid4().hex[:6]
    tag = f"replay-{run_id}"
    port = free_ports(processes + 1)
    settings = base.replace(
        data_dir=root / f"worker-{processes}-{run_id}",
        clickhouse_dsn=f"chdb://{root / f'clickhouse-{processes}-{run_id}'}",
        app_id=f"replay-{processes}-{run_id}",
        web_port=port,
        worker_processes=processes,
        **{f"topic_{t}": f"replay-{run_id}.{t}" for t in TOPICS},
    )
    events = replay_events(names, tag)
    result = WorkerRun(
        processes, len(names), tag, settings.clickhouse_dsn, log=str(settings.data_dir / "worker.log")
    )
    asyncio.run(ensure_topics(settings))
    worker = WorkerProcess(settings, log_path=settings.data_dir / "worker.log").start()
    sampler = Sampler(worker.process.pid if worker.process else 0).start()
    try:
        with console.status(f"{result.label}: starting, warm-up"):
            worker.wait_ready(timeout_s=180)
            warm = make_events(WARM_UP, tag="w")
            asyncio.run(produce_lines(settings, warm, settings.topic_input))
            wait_for(worker, lambda: clickhouse_events(worker) >= len(warm), 180, "warm-up")
            if processes > 1:
                detects = range(1, min(processes, base.partitions) + 1)
                wait_for(
                    worker,
                    lambda: all((metrics_ready(port + i) or 0) > 0 for i in detects),
                    60,
                    "every detect process consuming",
                )
        expected = len(warm) + len(events)
        pid = worker.process.pid if worker.process else 0
        cpu_before = cpu_seconds(pid)
        sampler.phase = "replay"
        publisher = Publisher(settings, events)
        wall_started = time.time()
        thread = threading.Thread(target=publisher.run, daemon=True)
        started = time.monotonic()
        thread.start()
        done_at, rows_seen = _follow(worker, publisher, port, expected, started, timeout_s, console)
        thread.join(timeout=60)
        sampler.phase = "after"
        if publisher.finished is not None:
            result.publish_s = publisher.finished - started
        if done_at is not None:
            result.clickhouse_s = done_at - started
            result.complete = True
            cpu = {role: t - cpu_before.get(role, 0.0) for role, t in cpu_seconds(pid).items()}
            result.cpu_us_per_event = {r: 1e6 * t / len(events) for r, t in cpu.items()}
        else:
            result.stopped_s = time.monotonic() - started
            result.rows_at_stop = max(0, int(rows_seen) - len(warm))
            console.print(
                f"[red]{result.label}: stopped after {result.stopped_s:.0f} s with {result.rows_at_stop:,}"
                f" of {len(events):,} rows in ClickHouse; see {worker.log_path}"
            )
        result.lifetime_rss_mb = sampler.lifetime_peaks()
    finally:
        sampler.stop()
        tree = process_tree(worker.process.pid) if worker.process else []
        worker.stop()
        _kill_leftovers(tree)
    result.start_rss_mb = dict(sampler.peaks.get("start", {}))
    result.replay_rss_mb = dict(sampler.peaks.get("replay", {}))
    loads = sampler.loads.get("replay")
    if loads:
        result.load_during = (min(loads), max(loads))
    with console.status("reading the analysed topic and ClickHouse"):
        count, newest = asyncio.run(last_analysed(settings, expected))
        result.analysed_records = count
        if newest is not None and result.complete:
            result.analysed_s = newest - wall_started
        _read_clickhouse(settings, tag, names, result)
        with contextlib.suppress(Exception):
            asyncio.run(delete_topics(settings))
    return result


def _kill_leftovers(pids: Sequence[int]) -> None:
    """SIGKILL the processes of a stopped worker that outlived it (a stuck detect or store child)."""
    for pid in pids:
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue  # gone
        if b"typostream.streams.cli" in cmdline:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)


def _follow(
    worker: WorkerProcess,
    publisher: Publisher,
    port: int,
    expected: int,
    started: float,
    timeout_s: float,
    console: Console,
) -> tuple[float | None, float]:
    """Poll until every row is in ClickHouse: (the monotonic time it was seen there, None when no
    row came for 120 s or ``timeout_s`` passed; the rows written by then)."""
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    )
    n = len(publisher.events)
    last_rows, last_change = -1.0, started
    with progress:
        published = progress.add_task("published", total=n)
        stored = progress.add_task("in ClickHouse", total=n)
        while True:
            now = time.monotonic()
            if publisher.error is not None:
                raise RuntimeError(f"publishing failed: {publisher.error!r}")
            if not worker.alive():
                raise RuntimeError(f"worker died (code {worker.returncode}); see {worker.log_path}")
            rows = sink_rows(port)
            progress.update(published, completed=publisher.acked)
            if rows is not None:
                progress.update(stored, completed=max(0.0, min(n, rows - WARM_UP)))
                if rows != last_rows:
                    last_rows, last_change = rows, now
                if rows >= expected and clickhouse_events(worker) >= expected:
                    return now, rows
            if now - last_change > 120 or now - started > timeout_s:
                return None, max(last_rows, 0.0)
            time.sleep(0.2)


def _read_clickhouse(settings: Settings, tag: str, names: list[str], result: WorkerRun) -> None:
    """The run's rows, read from the worker's chDB after it stopped (chDB: one process at a time)."""
    connection = components.open_clickhouse(settings)
    try:
        where = f"artifact_id = '{tag}'"
        rows, distinct_ids, distinct_names = connection.rows(
            f"SELECT count(), uniqExact(event_id), uniqExact(name) FROM events WHERE {where}"
        )[0]
        result.rows, result.rows_final, result.distinct_names = (
            int(rows),
            int(distinct_ids),
            int(distinct_names),
        )
        if result.distinct_names < len(names):
            stored = {r[0] for r in connection.rows(f"SELECT DISTINCT name FROM events WHERE {where}")}
            missing = [name for name in names if name not in stored]
            result.missing_count, result.missing = len(missing), missing[:20]
        threat_rows = connection.rows(
            "SELECT threat_type, count(), uniqExact(name) FROM threats FINAL"
            f" WHERE event_id IN (SELECT event_id FROM events WHERE {where})"
            " GROUP BY threat_type ORDER BY 2 DESC"
        )
        result.threats_by_type = {str(t): int(c) for t, c, _ in threat_rows}
        result.threats = sum(result.threats_by_type.values())
        result.flagged_names = int(
            connection.rows(
                "SELECT uniqExact(name) FROM threats FINAL"
                f" WHERE event_id IN (SELECT event_id FROM events WHERE {where})"
            )[0][0]
        )
    finally:
        connection.close()


# -- report ------------------------------------------------------------------------------------


@dataclass
class RawResult:
    key: str
    label: str
    events: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.events / self.seconds


def _shown(arg: str) -> str:
    """A command-line argument as the report shows it: no path of this machine outside the repository."""
    path = Path(arg)
    if not path.is_absolute():
        return arg
    try:
        return str(path.resolve().relative_to(HERE.parent))
    except ValueError:
        return f"<dir>/{path.name}"


def _s(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def report(
    args: argparse.Namespace,
    total: int,
    raws: list[RawResult],
    runs: list[WorkerRun],
    advisories: dict[str, Any],
    load: tuple[str, str],
) -> list[str]:
    n = runs[0].names if runs else (raws[0].events if raws else 0)
    partial = n < total
    adv = (
        f"{advisories['advisories']:,} synthetic advisories in the on-disk index"
        f" ({advisories['index_mb']} MB)"
        if advisories.get("advisories")
        else "the bundled advisory seed only"
    )
    out = [
        f"# Replay benchmark ({datetime.now(UTC):%Y-%m-%d %H:%M} UTC)",
        "",
        f"`{' '.join(['benchmarks/replay.py', *map(_shown, sys.argv[1:])])}`"
        f" on a {os.cpu_count()}-core machine;"
        f" {n:,} of {total:,} PyPI names{' (evenly spaced)' if partial else ''};"
        f" {args.partitions} partitions;"
        f" {adv}; load average before / after: {load[0]} / {load[1]}; peak RSS of this benchmark"
        f" process (publisher, raw baselines): {vm_hwm_mb(os.getpid()):,.0f} MB.",
        "",
    ]
    same = next((r for r in raws if r.key == "same"), None)
    through = next((r for r in raws if r.key == "pass"), None)
    goal_head = f"goal <= {GOAL_SECONDS:.0f} s" + (" (projected to every name)" if partial else "")

    def goal(seconds: float | None) -> str:
        if seconds is None:
            return "not met (not finished)"
        if partial and n < PROJECT_FROM:
            return "- (too few names to project)"
        projected = seconds * total / n if n else seconds
        verdict = "met" if projected <= GOAL_SECONDS else "not met"
        return f"{verdict} ({projected:.0f} s)" if partial else verdict

    rows = []
    for raw in raws:
        ratio = f"{raw.rate / same.rate:.0%}" if same else "-"
        rows.append(
            [
                raw.label,
                f"{raw.events:,}",
                "-",
                "-",
                f"{raw.seconds:.1f}",
                f"{raw.rate:,.0f}",
                ratio,
                "-",
                "-",
            ]
        )
    for run in runs:
        vs_same = f"{run.rate / same.rate:.0%}" if same and run.complete else "-"
        vs_pass = f"{run.rate / through.rate:.0%}" if through and run.complete else "-"
        rows.append(
            [
                run.label,
                f"{run.names:,}",
                _s(run.publish_s),
                _s(run.analysed_s),
                _s(run.clickhouse_s)
                if run.complete
                else f"stopped at {_s(run.stopped_s)}: {run.rows_at_stop:,} rows",
                f"{run.rate:,.0f}" if run.complete else "-",
                vs_same,
                vs_pass,
                goal(run.clickhouse_s),
            ]
        )
    out += ["## Wall time: first publish → last analysed record → last event row in ClickHouse", ""]
    out += markdown(
        rows,
        [
            "pipeline",
            "names",
            "publish s",
            "→ last analysed s",
            "→ last ClickHouse row s",
            "events/s",
            "vs raw same-work",
            "vs raw pass-through",
            goal_head,
        ],
    )
    out += [
        "",
        "The raw baselines consume events published before their clock starts; the worker's clock"
        " includes publishing (the publisher shares the 2 cores with the worker).",
        "",
    ]
    loads = [
        f"{run.label}: {run.load_during[0]:.2f}-{run.load_during[1]:.2f}" for run in runs if run.load_during
    ]
    if loads:
        out += [
            "1-minute load average during each replay (other work on the machine): " + "; ".join(loads) + ".",
            "",
        ]
    if runs:
        out += ["## Every name in ClickHouse, threats found", ""]
        out += markdown(
            [
                [
                    run.label,
                    f"{run.names:,}",
                    f"{run.analysed_records - WARM_UP:,}",
                    f"{run.rows:,}",
                    f"{run.distinct_names:,}",
                    f"{run.missing_count:,}"
                    + (f" (e.g. {', '.join(run.missing[:3])})" if run.missing else ""),
                    f"{run.threats:,}",
                    f"{run.flagged_names:,}",
                    ", ".join(f"{t} {c:,}" for t, c in run.threats_by_type.items()) or "-",
                ]
                for run in runs
            ],
            [
                "worker",
                "names published",
                "analysed records",
                "event rows",
                "distinct names",
                "names missing",
                "threats",
                "names flagged",
                "threats by type",
            ],
        )
        out.append("")
        memory_rows = []
        for run in runs:
            for role in sorted(run.lifetime_rss_mb or run.replay_rss_mb):
                replay = run.replay_rss_mb.get(role)
                life = run.lifetime_rss_mb.get(role)
                peak = max(replay or 0.0, life or 0.0)
                memory_rows.append(
                    [
                        run.label,
                        role,
                        f"{run.start_rss_mb.get(role, 0.0):,.0f}",
                        f"{replay:,.0f}" if replay is not None else "-",
                        f"{life:,.0f}" if life else "-",
                        f"{run.cpu_us_per_event[role]:,.0f}" if role in run.cpu_us_per_event else "-",
                        "met" if peak < GOAL_RSS_MB else "not met",
                    ]
                )
        out += ["## Worker processes: peak RSS, CPU per event during the replay", ""]
        out += markdown(
            memory_rows,
            [
                "worker",
                "process",
                "start-up + warm-up MB (sampled)",
                "replay MB (sampled)",
                "lifetime peak MB (VmHWM)",
                "CPU µs/event",
                f"goal < {GOAL_RSS_MB:.0f} MB",
            ],
        )
        out.append("")
    return out


def as_json(
    total: int, raws: list[RawResult], runs: list[WorkerRun], advisories: dict[str, Any]
) -> dict[str, Any]:
    return {
        "total_names": total,
        "advisories": advisories,
        "goal_seconds": GOAL_SECONDS,
        "goal_rss_mb": GOAL_RSS_MB,
        "benchmark_process_peak_mb": vm_hwm_mb(os.getpid()),
        "raw": [{**asdict(r), "rate": r.rate} for r in raws],
        "workers": [{**asdict(r), "rate": r.rate, "label": r.label} for r in runs],
    }


def write_results(lines: list[str], output: Path | None, figures: Path | None, data: dict[str, Any]) -> None:
    """The report and the JSON (rewritten after each configuration, so a run cut short leaves its part)."""
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text("\n".join(lines) + "\n")
    if figures is not None:
        figures.parent.mkdir(parents=True, exist_ok=True)
        figures.write_text(json.dumps(data, indent=2) + "\n")


# -- main --------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--limit", type=int, default=None, help="replay N names (evenly spaced), not all")
    parser.add_argument("--processes", default="1,2", help="worker configurations, e.g. 1,2")
    parser.add_argument("--partitions", type=int, default=2)
    parser.add_argument("--baselines", default="same,pass", help="raw baselines to run: same, pass, none")
    parser.add_argument(
        "--advisories", type=int, default=DEFAULT_ADVISORIES, help="synthetic advisories (0: seed)"
    )
    parser.add_argument("--work-dir", type=Path, default=None, help="keep the advisory tree and index here")
    parser.add_argument("--keep", action="store_true", help="keep the run's data dirs and worker logs")
    parser.add_argument(
        "--root", type=Path, default=None, help="where the run's data dirs go (a new temp dir)"
    )
    parser.add_argument("--timeout", type=float, default=None, help="seconds a worker run may take")
    parser.add_argument(
        "--smoke", action="store_true", help=f"seconds: {SMOKE_NAMES:,} names, CI checks it runs"
    )
    parser.add_argument("--output", type=Path, default=None)
    parser.add_argument("--json", type=Path, default=None, help="also write the figures as JSON")
    args = parser.parse_args(argv)
    if args.smoke:
        args.limit, args.processes = args.limit or SMOKE_NAMES, "2"
        args.advisories = min(args.advisories, SMOKE_ADVISORIES)
    processes = [int(p) for p in args.processes.split(",") if p.strip()]
    baselines = [b.strip() for b in args.baselines.split(",") if b.strip() and b.strip() != "none"]
    unknown = sorted(set(baselines) - set(BASELINES))
    if unknown:
        parser.error(f"--baselines: unknown {', '.join(unknown)} (have: {', '.join(BASELINES)}, none)")
    output = args.output if args.output is not None else (None if args.smoke or args.limit else RESULTS)
    console = Console(stderr=True)

    load_before = loadavg()
    names, total = select_names(args.limit)
    # 10x the goal's pace (900 s for every name), at least 300 s.
    timeout_s = args.timeout or max(300.0, 10 * GOAL_SECONDS * len(names) / total)
    if args.root is not None:
        args.root.mkdir(parents=True, exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix="typostream-replay-", dir=args.root)).resolve()
    work = args.work_dir.resolve() if args.work_dir else root
    raws: list[RawResult] = []
    runs: list[WorkerRun] = []
    try:
        index_dir, advisories = prepare_advisories(args.advisories, work, console)
        with EmbeddedStack(root / "stack", die_with_parent=True) as state:
            base = Settings(
                data_dir=root,
                kafka_bootstrap=state.kafka_bootstrap,
                redis_url=state.redis_url,
                clickhouse_dsn=state.clickhouse_dsn,
                partitions=args.partitions,
                advisories_dir=index_dir or root / "no-advisories",
            )

            def save() -> None:
                lines = report(args, total, raws, runs, advisories, (load_before, loadavg()))
                write_results(lines, output, args.json, as_json(total, raws, runs, advisories))

            if baselines:
                assessor = components.build_assessor(base)
                events = replay_events(names, "replay-raw")
                for key in baselines:
                    raw = base.replace(
                        app_id=f"raw-{key}", **{f"topic_{t}": f"raw-{key}.{t}" for t in TOPICS}
                    )
                    asyncio.run(ensure_topics(raw))
                    asyncio.run(produce_lines(raw, events, raw.topic_input, console=console))
                    with console.status(f"{BASELINES[key]}: {len(events):,} events"):
                        if key == "same":
                            seconds = asyncio.run(raw_same_work(raw, assessor, len(events), root))
                        else:
                            seconds = asyncio.run(raw_passthrough(raw, assessor, len(events)))
                    raws.append(RawResult(key, BASELINES[key], len(events), seconds))
                    console.print(f"{BASELINES[key]}: {len(events) / seconds:,.0f} events/s")
                    with contextlib.suppress(Exception):
                        asyncio.run(delete_topics(raw))
                del assessor, events
                save()
            for n in processes:
                run = run_worker(base, root, n, names, console, timeout_s)
                runs.append(run)
                save()
                console.print(
                    f"{run.label}: {_s(run.clickhouse_s)} s to the last ClickHouse row,"
                    f" {run.rate:,.0f} events/s,"
                    f" {run.distinct_names:,}/{run.names:,} names in ClickHouse"
                )
    finally:
        failed = len(runs) < len(processes) or any(not r.complete for r in runs)
        if args.keep or failed:
            console.print(f"data dirs and worker logs kept in {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    lines = report(args, total, raws, runs, advisories, (load_before, loadavg()))
    print("\n".join(lines))
    write_results(lines, output, args.json, as_json(total, raws, runs, advisories))
    if output is not None:
        console.print(f"written to {output}")
    incomplete = [r for r in runs if not r.complete or r.missing_count or r.distinct_names < r.names]
    return 1 if incomplete else 0


if __name__ == "__main__":
    sys.exit(main())
