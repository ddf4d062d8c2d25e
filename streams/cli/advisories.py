"""Commands: ``advisories sync SOURCE`` (build/update the on-disk advisory index) and ``advisories status``.

The index (``agents/adapters/advisory_index.py``) lives in ``TYPOSTREAM_ADVISORIES_DIR`` (default
``<data dir>/advisories``); ``scan`` and the worker use it when it is there, and a running worker
swaps in a newer one by itself. ``sync`` exits 0 when the index is up to date, 1 when some source
files could not be read or parsed (each named on stderr; the rest is indexed, their previous
records are kept), 2 on an error (nothing published).
"""

from __future__ import annotations

import datetime as dt
import time
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import orjson
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from typostream.agents.adapters.advisory_index import IndexStatus, SyncReport, index_path, read_status, sync
from typostream.streams.cli.app import cli, command
from typostream.streams.cli.options import DataDir, load_settings
from typostream.streams.components import advisories_dir

__all__ = ["advisories_app", "describe_age", "human_bytes"]

console = Console(stderr=True)
stdout = Console(highlight=False, soft_wrap=True)

advisories_app = typer.Typer(
    help="Keep the known-malicious advisory index: sync it from an OSV source, show its status.",
    no_args_is_help=True,
)
cli.add_typer(advisories_app, name="advisories")

IndexDir = Annotated[
    Path | None,
    typer.Option(
        "--dir", help="Index directory (env TYPOSTREAM_ADVISORIES_DIR; default <data dir>/advisories)."
    ),
]
SHOWN_INVALID = 20


class Output(StrEnum):
    text = "text"
    json = "json"


def _directory(data_dir: Path | None, directory: Path | None) -> Path:
    return directory or advisories_dir(load_settings(data_dir))


def human_bytes(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"  # pragma: no cover


def describe_age(seconds: float) -> str:
    """``42 s``, ``5 min``, ``3.2 h``, ``4.0 d``."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"


def _when(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@command("sync", group=advisories_app)
def sync_command(
    source: Annotated[
        Path,
        typer.Argument(
            help="An OSV directory, a zip of one, one OSV JSON file, or a checkout (or GitHub zip) of "
            "ossf/malicious-packages (its osv/malicious/ is read).",
            show_default=False,
        ),
    ],
    data_dir: DataDir = None,
    directory: IndexDir = None,
    output: Annotated[Output, typer.Option("--format", help="text, or json (one object).")] = Output.text,
) -> None:
    """Build or update the advisory index from SOURCE (only changed files are re-read)."""
    target = _directory(data_dir, directory)
    report = sync(source, target)
    if output is Output.json:
        typer.echo(orjson.dumps(_report_dict(report)).decode())
    else:
        stdout.print(
            f"advisories: {report.advisories:,} advisories for {report.packages:,} packages in "
            f"{escape(report.path)} (generation {report.generation}, {human_bytes(report.size_bytes)}); "
            f"{report.files:,} files: {report.added:,} added, {report.changed:,} changed, "
            f"{report.removed:,} removed, {report.unchanged:,} unchanged, {len(report.invalid):,} invalid; "
            f"{report.seconds:.2f} s",
        )
        if report.rebuilt:
            console.print(f"advisories: rebuilt from scratch: {escape(report.rebuilt)}", highlight=False)
    for path, reason in report.invalid[:SHOWN_INVALID]:
        console.print(f"typostream: invalid advisory file {escape(path)}: {escape(reason)}", highlight=False)
    if len(report.invalid) > SHOWN_INVALID:
        console.print(f"typostream: ... and {len(report.invalid) - SHOWN_INVALID} more invalid files")
    if report.invalid:
        raise typer.Exit(1)


def _report_dict(report: SyncReport) -> dict[str, object]:
    return {
        "path": report.path,
        "source": report.source,
        "kind": report.kind,
        "generation": report.generation,
        "advisories": report.advisories,
        "packages": report.packages,
        "records": report.records,
        "files": report.files,
        "added": report.added,
        "changed": report.changed,
        "removed": report.removed,
        "unchanged": report.unchanged,
        "invalid": [{"file": path, "reason": reason} for path, reason in report.invalid],
        "rebuilt": report.rebuilt,
        "size_bytes": report.size_bytes,
        "seconds": round(report.seconds, 3),
    }


@command("status", group=advisories_app)
def status_command(
    data_dir: DataDir = None,
    directory: IndexDir = None,
    output: Annotated[Output, typer.Option("--format", help="text, or json (one object).")] = Output.text,
) -> None:
    """Show the advisory index: size, advisory count, age and source (exit 1 when there is none)."""
    target = _directory(data_dir, directory)
    status = read_status(target)
    if status is None:
        if output is Output.json:
            typer.echo(orjson.dumps({"path": str(index_path(target)), "exists": False}).decode())
        console.print(
            f"typostream: no advisory index at {escape(str(index_path(target)))}; "
            "run `typostream advisories sync SOURCE` (scan and the worker use the bundled seed only)",
            highlight=False,
        )
        raise typer.Exit(1)
    now = time.time()
    if output is Output.json:
        typer.echo(orjson.dumps({**status.to_dict(now), "exists": True}).decode())
        return
    stdout.print(_table(status, now))


def _table(status: IndexStatus, now: float) -> Table:
    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column(style="bold")
    table.add_column()
    last = status.last_sync
    rows = [
        ("index", status.path),
        ("size", f"{human_bytes(status.size_bytes)} ({status.size_bytes:,} bytes)"),
        (
            "advisories",
            f"{status.advisories:,} for {status.packages:,} packages ({status.records:,} records)",
        ),
        (
            "files",
            f"{status.files:,}"
            + (f", {status.invalid:,} invalid at the last sync" if status.invalid else ""),
        ),
        ("synced", f"{_when(status.synced_at)} ({describe_age(status.age_s(now))} ago)"),
        ("changed", f"{_when(status.changed_at)}, generation {status.generation}"),
        ("source", f"{status.source} ({status.source_kind})"),
        (
            "last sync",
            f"{last.get('added', 0):,} added, {last.get('changed', 0):,} changed, "
            f"{last.get('removed', 0):,} removed, {last.get('unchanged', 0):,} unchanged",
        ),
    ]
    for path, reason in (last.get("invalid") or [])[:SHOWN_INVALID]:
        rows.append(("invalid", f"{path}: {reason}"))
    for key, value in rows:
        table.add_row(key, escape(value))
    return table
