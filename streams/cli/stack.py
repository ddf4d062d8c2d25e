"""Commands: ``typostream stack up|down|status`` for the embedded Kafka/Redis/ClickHouse stack."""

from __future__ import annotations

import shlex
import signal
import threading
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from typostream.streams.cli.app import cli, command, fail
from typostream.streams.config import ENV_PREFIX, Settings
from typostream.streams.stack import EmbeddedStack, StackState

stack_app = typer.Typer(
    help="Run the embedded stack: Tansu (Kafka protocol), redis-server and chDB on 127.0.0.1.",
    no_args_is_help=True,
)
cli.add_typer(stack_app, name="stack")

DataDirOption = Annotated[
    Path | None,
    typer.Option("--data-dir", help="Stack data directory [default: TYPOSTREAM_DATA_DIR or .typostream]."),
]

_err = Console(stderr=True)


def _data_dir(data_dir: Path | None) -> Path:
    if data_dir is not None:
        return data_dir.resolve()
    return Settings.from_env().data_dir.resolve()


def _table(state: StackState, title: str) -> Table:
    alive = state.alive()
    table = Table(title=title)
    for column in ("service", "url", "pid", "state"):
        table.add_column(column)
    table.add_row("kafka", state.kafka_bootstrap, str(state.pids.get("kafka", "")), _alive(alive, "kafka"))
    if state.durable:
        table.add_row(
            "kafka storage", state.objects_url, str(state.pids.get("objects", "")), _alive(alive, "objects")
        )
    table.add_row("redis", state.redis_url, str(state.pids.get("redis", "")), _alive(alive, "redis"))
    table.add_row("clickhouse", state.clickhouse_dsn, "in-process", "-")
    return table


def _storage_note(state: StackState) -> str:
    if state.durable:
        return f"broker storage: durable, kept in {state.data_dir / 'broker'} across restarts"
    return "broker storage: memory, lost when the broker stops (`stack up --durable` keeps it)"


def _alive(alive: dict[str, bool], name: str) -> str:
    return "up" if alive.get(name) else "DEAD"


def _print_state(state: StackState, title: str) -> None:
    """The table goes to stderr and the exports to stdout, so ``eval "$(typostream stack up)"`` works."""
    _err.print(_table(state, title))
    _err.print(_storage_note(state), soft_wrap=True)
    exports = {"DATA_DIR": str(state.data_dir), **{k.upper(): v for k, v in state.urls().items()}}
    for key, value in exports.items():
        typer.echo(f"export {ENV_PREFIX}{key}={shlex.quote(value)}")


@command("up", group=stack_app)
def up(
    data_dir: DataDirOption = None,
    foreground: Annotated[
        bool, typer.Option("--foreground", help="Stay up until Ctrl-C/SIGTERM, then stop everything.")
    ] = False,
    durable: Annotated[
        bool | None,
        typer.Option(
            "--durable/--memory",
            help="Keep broker data across restarts (object store under <data-dir>/broker), or keep it "
            "in memory only [default: TYPOSTREAM_STACK_DURABLE or --memory].",
        ),
    ] = None,
) -> None:
    """Start the stack (detached unless --foreground) and print its URLs."""
    directory = _data_dir(data_dir)
    if durable is None:
        durable = Settings.from_env().stack_durable
    stack = EmbeddedStack(directory, die_with_parent=foreground, durable=durable)
    if foreground and stack.status() is not None:
        raise fail(f"a stack is already running in {directory}; stop it with `typostream stack down`")
    existing = stack.status()
    if existing is not None and existing.durable != durable:
        note = f"the running stack keeps broker data in {existing.storage}; restart it to change that"
        _err.print(f"[yellow]{note}[/yellow]")
    state = stack.up()
    _print_state(state, f"embedded stack {'already running' if existing else 'up'} in {directory}")
    if foreground:
        _serve(stack, state)


def _serve(stack: EmbeddedStack, state: StackState) -> None:
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    _err.print("[dim]running in the foreground; Ctrl-C stops the stack[/dim]")
    dead: list[str] = []
    try:
        while not stop.wait(0.5):
            dead = [name for name, ok in state.alive().items() if not ok]
            if dead:
                break
    finally:
        stack.down()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if dead:
        raise fail(f"{', '.join(dead)} exited unexpectedly; see logs in {state.data_dir / 'logs'}", code=1)
    _err.print("embedded stack stopped")


@command("down", group=stack_app)
def down(data_dir: DataDirOption = None) -> None:
    """Stop the stack of the data dir and remove its state file (safe if nothing runs)."""
    directory = _data_dir(data_dir)
    stack = EmbeddedStack(directory)
    had_state = stack.state_file.exists()
    try:
        stack.down()
    except OSError as exc:
        raise fail(str(exc)) from exc
    typer.echo(f"embedded stack in {directory} {'stopped' if had_state else 'was not running'}")


@command("status", group=stack_app)
def status(data_dir: DataDirOption = None) -> None:
    """Show the stack's URLs and pids; exit 1 if it is not running."""
    directory = _data_dir(data_dir)
    recorded = StackState.load(directory)
    if recorded is None:
        typer.echo(f"no embedded stack in {directory}", err=True)
        raise typer.Exit(1)
    _print_state(recorded, f"embedded stack in {directory}")
    if not recorded.is_alive():
        typer.echo("embedded stack is not (fully) running; `typostream stack down` cleans up", err=True)
        raise typer.Exit(1)
