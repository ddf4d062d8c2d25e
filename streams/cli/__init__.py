"""Console entry point: ``typostream``. Each command group lives in its own module
(:data:`~typostream.streams.cli.app.COMMAND_MODULES`), imported when needed: ``typostream scan``
imports its module alone (no Faust, Kafka, ClickHouse or aiohttp client); any other command
line imports them all. ``cli`` (this package's or ``app``'s) is the whole CLI.

``typostream scan`` first goes the fast path, without Typer (:func:`.scanner.main`: the command
line parsed as Typer would parse it); Typer runs it when that path declines (``--help``, a bad
command line). This module imports neither Typer nor any command module itself.
"""

from __future__ import annotations

import importlib
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import typer

__all__ = ["FAST", "STANDALONE", "cli", "main"]

STANDALONE: dict[str, str] = {"scan": "scan"}
"""Commands whose module alone defines them (no other command module is imported to run them)."""
FAST: dict[str, str] = {"scan": "scanner"}
"""Commands with a fast path: ``<module>.main(args)`` runs the command and exits, or returns
having done nothing when Typer is to run it."""


def main() -> None:
    args = sys.argv[1:]
    command = args[0] if args else None
    fast = FAST.get(command or "")
    if fast is not None:
        importlib.import_module(f"{__name__}.{fast}").main(args[1:])
    import typer

    from typostream.streams.cli import app

    module = STANDALONE.get(command or "")
    if module is None:
        app.load_commands()()
        return
    importlib.import_module(f"{__name__}.{module}")
    # a group even with one command registered (Typer runs a lone command without its name)
    typer.main.get_group(app.root)()


def __getattr__(name: str) -> typer.Typer:
    if name == "cli":
        from typostream.streams.cli import app

        return app.load_commands()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
