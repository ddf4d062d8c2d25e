"""The shared Typer object every command module registers on."""

from __future__ import annotations

import typer

cli = typer.Typer(
    name="typostream",
    help="Real-time typosquat and malicious-package detection for npm and PyPI publishes.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print one readable line to stderr and return the Exit to raise."""
    typer.echo(f"typostream: error: {message}", err=True)
    return typer.Exit(code)
