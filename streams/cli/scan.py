"""Command: scan.

``typostream scan PATH...`` walks each directory (or reads each file) for manifests and lockfiles
(:mod:`typostream.agents.domain.manifests`), infers the registry per file and assesses every
package with its version; ``typostream scan --registry R NAME[==V|@V]...`` assesses packages by
name; ``--file FILE`` reads one file (a manifest, a lockfile, or with ``--registry`` a list of
names), ``--format-in`` forces the file format. Findings carry the file (relative to the scan
root: the one directory scanned, else the directory the scanned files share) and line.

``[--watchlist FILE] [--allowlist FILE] [--format json|sarif|table] [--fail-on SEVERITY]``;
``--json`` is an alias of ``--format json``. Output formats are the plug-ins in
:mod:`typostream.streams.reports`.

Settings come from :meth:`Settings.from_env` like the worker's (``TYPOSTREAM_WATCHLIST_FILE``,
``TYPOSTREAM_ALLOWLIST_FILE``, ``TYPOSTREAM_KNOWN_MALICIOUS_PATHS``; the flags override the first
two), so the CLI and the worker answer a package the same way. A watchlist-only registry (no
bundled popular-name index, e.g. rubygems) needs a watchlist. Exit 0, or 1 when a threat reaches
``--fail-on``; usage and input errors — a manifest that cannot be parsed, a directory without any
manifest — exit 2 with one line.

Start-up: ``typostream scan`` first tries the fast path of :mod:`typostream.streams.cli.scanner`,
which parses the command line itself, without Typer, whenever it can reach exactly the values
this declaration would (it hands ``--help`` and every bad command line to it), and runs the same
:func:`~typostream.streams.cli.scanner.run`. No other command module is loaded for it, and only the
candidate indexes of the registries scanned are read, from ``<data dir>/cache``
(``agents/adapters/index_cache.py``; built and stored on the first run, rebuilt when the
snapshots, the watchlist or the detection code change; ``TYPOSTREAM_DETECTOR_CACHE``).
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from typostream.agents.domain.manifests import FORMATS
from typostream.agents.domain.vocabulary import REGISTRIES, WATCHLIST_ONLY_REGISTRIES
from typostream.streams.cli import scanner
from typostream.streams.cli.app import command, fail
from typostream.streams.cli.options import Allowlist, FailOn, OutputFormat, Watchlist
from typostream.streams.reports import REPORTERS

__all__ = ["scan"]

# choices from the registries (a new format needs no edit here)
InputFormat = StrEnum("InputFormat", {fmt: fmt for fmt in FORMATS})  # type: ignore[misc]
DEFAULT_FORMAT = OutputFormat(scanner.DEFAULTS["output"])
_REGISTRY_HELP = (
    f"Scan package names (the arguments) in this registry: {', '.join(REGISTRIES)}; "
    f"{', '.join(WATCHLIST_ONLY_REGISTRIES)} with a watchlist only. Without it, the arguments are paths."
)


@command()
def scan(
    targets: Annotated[
        list[str] | None,
        typer.Argument(
            help="Paths (project directories, manifests, lockfiles); with --registry, package names "
            "(NAME, NAME==VERSION, NAME@VERSION).",
            show_default=False,
        ),
    ] = None,
    registry: Annotated[str, typer.Option("--registry", "-r", help=_REGISTRY_HELP)] = "",
    watchlist: Watchlist = None,
    allowlist: Allowlist = None,
    output: Annotated[
        OutputFormat,
        typer.Option(
            "--format",
            "-f",
            help="Output format. "
            + " ".join(f"{fmt}: {reporter.description}" for fmt, reporter in REPORTERS.items()),
        ),
    ] = DEFAULT_FORMAT,
    json_alias: Annotated[bool, typer.Option("--json", help="Alias of --format json.")] = False,
    fail_on: Annotated[
        FailOn | None, typer.Option(help="Exit 1 when a threat reaches this severity.")
    ] = None,
    file: Annotated[
        Path | None,
        typer.Option(
            "--file",
            help="One manifest, lockfile or requirements file (any name: recognized by its content), "
            "or with --registry a list of names.",
        ),
    ] = None,
    format_in: Annotated[
        InputFormat | None,
        typer.Option(
            "--format-in", help="Read files as this format: " + ", ".join(FORMATS) + " (default: detected)."
        ),
    ] = None,
) -> None:
    """Scan a project's manifests and lockfiles, or package names, for typosquats, dependency
    confusion and known-malicious versions."""
    try:
        code = scanner.run(
            targets,
            registry,
            watchlist,
            allowlist,
            output.value,
            json_alias,
            fail_on.value if fail_on is not None else None,
            file,
            format_in.value if format_in is not None else None,
            stdout=lambda: typer.get_text_stream("stdout"),
        )
    except scanner.Refusal as exc:
        raise fail(exc.message) from exc
    if code:
        raise typer.Exit(code)
