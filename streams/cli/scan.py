"""Commands: scan.

``typostream scan --registry {npm,pypi,rubygems} [--watchlist FILE] [--allowlist FILE]
[--format json|sarif|table] [--fail-on SEVERITY] (NAME... | --file FILE)``; ``--json`` is an alias
of ``--format json``. Formats are the plug-ins in :mod:`typostream.streams.reports`.

Settings come from :meth:`Settings.from_env` like the worker's (``TYPOSTREAM_WATCHLIST_FILE``,
``TYPOSTREAM_ALLOWLIST_FILE``, ``TYPOSTREAM_KNOWN_MALICIOUS_PATHS``; the flags override the first
two), so the CLI and the worker answer a name the same way. A watchlist-only registry (no bundled
popular-name index, e.g. rubygems) needs a watchlist. Exit 0, or 1 when a threat reaches
``--fail-on``; usage or input errors exit 2 with one line.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from typostream.agents.domain.detection import Detector
from typostream.agents.domain.errors import UnknownRegistryError
from typostream.agents.domain.vocabulary import (
    DETECTOR_REGISTRIES,
    REGISTRIES,
    SEVERITIES,
    WATCHLIST_ONLY_REGISTRIES,
    at_least,
)
from typostream.streams.cli.app import command, fail
from typostream.streams.components import build_assessor
from typostream.streams.config import Settings
from typostream.streams.reports import REPORTERS

__all__ = ["scan"]

# choices from the registries (a new format or severity needs no edit here)
OutputFormat = StrEnum("OutputFormat", {fmt: fmt for fmt in REPORTERS})  # type: ignore[misc]
FailOn = StrEnum("FailOn", {severity: severity for severity in SEVERITIES})  # type: ignore[misc]
DEFAULT_FORMAT = OutputFormat(next(iter(REPORTERS)))
_REGISTRY_HELP = (
    f"One of: {', '.join(REGISTRIES)}; {', '.join(WATCHLIST_ONLY_REGISTRIES)} with a watchlist only."
)


def _settings(watchlist: Path | None, allowlist: Path | None) -> Settings:
    try:
        return Settings.from_env(watchlist_file=watchlist, allowlist_file=allowlist)
    except ValueError as exc:  # a malformed TYPOSTREAM_* value
        raise fail(str(exc)) from exc


@command()
def scan(
    names: Annotated[
        list[str] | None, typer.Argument(help="Package names to scan.", show_default=False)
    ] = None,
    registry: Annotated[str, typer.Option("--registry", "-r", help=_REGISTRY_HELP)] = "",
    watchlist: Annotated[
        Path | None,
        typer.Option(
            help="Own/internal names to protect (one per line). Default: $TYPOSTREAM_WATCHLIST_FILE."
        ),
    ] = None,
    allowlist: Annotated[
        Path | None,
        typer.Option(help="Names never to flag (one per line). Default: $TYPOSTREAM_ALLOWLIST_FILE."),
    ] = None,
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
        Path | None, typer.Option("--file", help="Names, one per line, or a requirements.txt / package.json.")
    ] = None,
) -> None:
    """Scan package names for typosquatting, dependency confusion and known-malicious packages."""
    if not registry:
        raise fail(f"--registry is required ({' or '.join(REGISTRIES)})")
    if registry.lower() not in DETECTOR_REGISTRIES:
        raise fail(str(UnknownRegistryError(registry, DETECTOR_REGISTRIES)))
    if json_alias:
        output = OutputFormat("json")
    if bool(names) == bool(file):
        raise fail("give package names or --file FILE (exactly one of them)")
    settings = _settings(watchlist, allowlist)
    watchlist_only = registry.lower() in WATCHLIST_ONLY_REGISTRIES
    if watchlist_only and settings.watchlist_file is None:
        raise fail(f"{registry.lower()} has no bundled popular-name index; pass --watchlist FILE")
    # a TypostreamError (unreadable file, bad advisory path...) becomes one line via @command
    to_scan = Detector.load_names(file) if file is not None else list(names or [])
    assessor = build_assessor(settings)
    if watchlist_only and not assessor.detector.index(registry).by_key:
        raise fail(
            f"{registry.lower()} has no bundled popular-name index and watchlist "
            f"{settings.watchlist_file} lists no names"
        )
    results = [assessor.assess(name, registry) for name in to_scan]
    REPORTERS[output.value].write(results, str(file) if file else None, typer.get_text_stream("stdout"))
    if fail_on is not None and any(at_least(t.severity, fail_on.value) for r in results for t in r.threats):
        raise typer.Exit(1)
