"""Console entry point: ``typostream``. Each command group lives in its own module
(:data:`~typostream.streams.cli.app.COMMAND_MODULES`), imported when needed: ``typostream scan``
imports its module alone (no Faust, Kafka, ClickHouse or aiohttp client); any other command
line imports them all. ``cli`` (this package's or ``app``'s) is the whole CLI.
"""

from __future__ import annotations

import importlib
import sys

import typer

__all__ = ["STANDALONE", "cli", "main"]

STANDALONE: dict[str, str] = {"scan": "scan"}
"""Commands whose module alone defines them (no other command module is imported to run them)."""


def main() -> None:
    from typostream.streams.cli import app

    args = sys.argv[1:]
    module = STANDALONE.get(args[0]) if args else None
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
