"""``typostream demo``: the whole pipeline end to end on the embedded stack, then a summary."""

from __future__ import annotations

import asyncio
import shutil
import socket
import tempfile
import time
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from rich.console import Console
from rich.table import Table

from typostream.agents.adapters.analytics import Analytics
from typostream.data.sample import iter_sample_labels
from typostream.streams import components
from typostream.streams.cli.app import error_line
from typostream.streams.config import Settings
from typostream.streams.producer import produce_lines, progress, read_lines
from typostream.streams.stack import EmbeddedStack
from typostream.streams.topics import ensure_topics
from typostream.streams.worker_process import WorkerProcess


def sample_feed_path() -> Path:
    return Path(str(resources.files("typostream.data.sample").joinpath("feed.jsonl.gz")))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class DemoRun:
    sent: int = 0
    processed: int = 0
    rejected: int = 0
    seconds: float = 0.0

    @property
    def events_per_second(self) -> float:
        return self.processed / self.seconds if self.seconds else 0.0


def wait_processed(
    worker: WorkerProcess, expected: int, timeout_s: float, console: Console | None
) -> DemoRun:
    """Poll the worker until every sent event is in ClickHouse or in the DLQ."""
    run = DemoRun(sent=expected)
    deadline = time.monotonic() + timeout_s
    with progress(console) as bar:
        task = bar.add_task("process → ClickHouse/DLQ", total=expected)
        while time.monotonic() < deadline:
            if not worker.alive():
                raise RuntimeError(f"worker died (code {worker.returncode}); see {worker.log_path}")
            stats = worker.stats() or {}
            run.processed = int(stats.get("clickhouse_events", 0))
            run.rejected = int(stats.get("rejected", 0))
            bar.update(task, completed=run.processed + run.rejected)
            if run.processed + run.rejected >= expected:
                return run
            time.sleep(0.25)
    raise TimeoutError(f"only {run.processed + run.rejected}/{expected} events processed in {timeout_s:.0f}s")


def run_demo(
    data_dir: Path | None,
    events_file: Path | None,
    partitions: int | None,
    timeout_s: float,
    console: Console,
) -> int:
    keep = data_dir is not None
    root = data_dir or Path(tempfile.mkdtemp(prefix="typostream-demo-"))
    started = time.monotonic()
    stack = EmbeddedStack(root, die_with_parent=True)
    worker: WorkerProcess | None = None
    try:
        console.print(f"[bold]typostream demo[/] — state in {root}")
        state = stack.up()
        settings = Settings.from_env(
            data_dir=root,
            kafka_bootstrap=state.kafka_bootstrap,
            redis_url=state.redis_url,
            clickhouse_dsn=state.clickhouse_dsn,
            partitions=partitions,
            web_port=free_port(),
        )
        console.print(f"stack up: kafka {state.kafka_bootstrap}, redis {state.redis_url}, clickhouse chDB")
        asyncio.run(ensure_topics(settings))
        worker = WorkerProcess(settings).start()
        worker.wait_ready()
        lines = read_lines(events_file or sample_feed_path())
        produce_started = time.monotonic()
        asyncio.run(produce_lines(settings, lines, settings.topic_input, console=console))
        run = wait_processed(worker, len(lines), timeout_s, console)
        run.seconds = time.monotonic() - produce_started
        worker.stop()
        worker = None
        with components.open_clickhouse(settings) as connection:
            print_summary(console, components.build_analytics(connection), run, events_file is None)
        console.print(f"demo finished in {time.monotonic() - started:.1f}s")
        return 0
    except Exception as exc:  # a demo ends with one readable line, not a traceback
        log = root / "logs" / "worker.log"
        if log.exists():  # the state dir is removed below: show why the worker failed first
            tail = log.read_text(errors="replace").splitlines()[-15:]
            console.print("worker log (last lines):", *tail, sep="\n", style="dim", markup=False)
        console.print(f"typostream: error: {error_line(exc)}", style="red", markup=False, soft_wrap=True)
        return 1
    finally:
        if worker is not None:
            worker.stop()
        stack.down()
        if not keep:
            shutil.rmtree(root, ignore_errors=True)


def print_summary(console: Console, analytics: Analytics, run: DemoRun, use_labels: bool) -> None:
    summary = analytics.summary(top=10)
    overview = Table(title="Pipeline", show_header=False)
    overview.add_row("events sent", str(run.sent))
    overview.add_row("events analysed (ClickHouse)", str(summary.events_total))
    overview.add_row("rejected to DLQ", str(run.rejected))
    overview.add_row("threats (ClickHouse)", str(summary.threats_total))
    overview.add_row("throughput", f"{run.events_per_second:,.0f} events/s over {run.seconds:.1f}s")
    console.print(overview)
    severity = Table("severity", "threats", title="Threats by severity")
    for level, count in summary.threats_by_severity.items():
        severity.add_row(level, str(count))
    console.print(severity)
    targets = Table("registry", "targeted package", "imitators", "threats", title="Top targeted packages")
    for row in summary.top_targets:
        targets.add_row(row.registry, row.target, str(row.squats), str(row.threats))
    console.print(targets)
    if use_labels:
        labels = list(iter_sample_labels())
        _, rows = analytics.query("SELECT DISTINCT registry, name, target FROM threats FINAL")
        flagged = {(registry, name, target) for registry, name, target in rows}
        caught = sum((lab["registry"], lab["name"], lab["target"]) in flagged for lab in labels)
        label = "labelled threats in the sample (squats, known-malicious) caught"
        console.print(f"{label}: {caught}/{len(labels)}")
