"""The shared Typer object, and the CLI's one error path.

Commands register with :func:`command` (not ``cli.command``): a :class:`TypostreamError` escaping
a command becomes one readable line on stderr and exit code 2, the same for every command.

Command modules are listed in :data:`COMMAND_MODULES` (a new one: one entry there). :data:`root` is
the Typer object they register on; :data:`cli` is the same object once every module has been
imported (reading ``cli`` imports them), so ``typostream scan`` can import its module alone.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable
from typing import Any, TypeVar

import typer

from typostream.agents.domain.errors import TypostreamError

COMMAND_MODULES: tuple[str, ...] = (
    "advisories",
    "alerts",
    "api",
    "detectors",
    "dlq_threats",
    "feeds",
    "guard",
    "query",
    "report",
    "run",
    "scan",
    "stack",
)
"""Modules of ``typostream.streams.cli`` that register commands, in ``--help`` order."""

root = typer.Typer(
    name="typostream",
    help="Real-time typosquat and malicious-package detection for npm and PyPI publishes.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

F = TypeVar("F", bound=Callable[..., Any])


def error_line(exc: BaseException) -> str:
    """One line describing ``exc``: our errors by message, anything else by type and first line."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    if isinstance(exc, TypostreamError):
        return text or type(exc).__name__
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print one readable line to stderr and return the Exit to raise."""
    typer.echo(f"typostream: error: {message}", err=True)
    return typer.Exit(code)


def command(*args: Any, group: typer.Typer | None = None, **kwargs: Any) -> Callable[[F], F]:
    """``cli.command`` (or ``group.command``) plus the error path: TypostreamError → one line, exit 2."""

    def decorate(fn: F) -> F:
        @functools.wraps(fn)
        def wrapper(*a: Any, **kw: Any) -> Any:
            try:
                return fn(*a, **kw)
            except TypostreamError as exc:
                raise fail(error_line(exc)) from exc

        (group or root).command(*args, **kwargs)(wrapper)
        return fn

    return decorate


_loading = False


def load_commands() -> typer.Typer:
    """:data:`root` with every module of :data:`COMMAND_MODULES` imported (once)."""
    global _loading
    if not _loading:
        _loading = True  # first: a module importing ``cli`` (add_typer) re-enters here
        for module in COMMAND_MODULES:
            importlib.import_module(f"typostream.streams.cli.{module}")
    return root


def __getattr__(name: str) -> typer.Typer:
    """``cli``: the whole CLI (PEP 562: importing this module imports no command module)."""
    if name == "cli":
        return load_commands()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
