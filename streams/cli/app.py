"""The shared Typer object, and the CLI's one error path.

Commands register with :func:`command` (not ``cli.command``): a :class:`TypostreamError` escaping
a command becomes one readable line on stderr and exit code 2, the same for every command.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import typer

from typostream.agents.domain.errors import TypostreamError

cli = typer.Typer(
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

        (group or cli).command(*args, **kwargs)(wrapper)
        return fn

    return decorate
