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

Start-up: the command imports only what scanning needs (``typostream.streams.cli`` loads no other
command module for it) and reads the candidate indexes of the registries it scans, and only those,
from ``<data dir>/cache`` (``agents/adapters/index_cache.py``; built and stored on the first run,
rebuilt when the snapshots, the watchlist or the detection code change; ``TYPOSTREAM_DETECTOR_CACHE``).
"""

from __future__ import annotations

import gc
import os
import stat
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from typostream.agents.domain.errors import ManifestError, UnknownRegistryError
from typostream.agents.domain.manifests import FORMATS, Entry, find_manifests, parse_file, parse_spec
from typostream.agents.domain.vocabulary import (
    DETECTOR_REGISTRIES,
    REGISTRIES,
    SEVERITIES,
    WATCHLIST_ONLY_REGISTRIES,
    at_least,
)
from typostream.streams.cli.app import command, fail
from typostream.streams.components import build_assessor, build_detector
from typostream.streams.config import Settings
from typostream.streams.reports import REPORTERS, Finding

__all__ = ["scan"]

# choices from the registries (a new format or severity needs no edit here)
OutputFormat = StrEnum("OutputFormat", {fmt: fmt for fmt in REPORTERS})  # type: ignore[misc]
FailOn = StrEnum("FailOn", {severity: severity for severity in SEVERITIES})  # type: ignore[misc]
InputFormat = StrEnum("InputFormat", {fmt: fmt for fmt in FORMATS})  # type: ignore[misc]
DEFAULT_FORMAT = OutputFormat(next(iter(REPORTERS)))
_REGISTRY_HELP = (
    f"Scan package names (the arguments) in this registry: {', '.join(REGISTRIES)}; "
    f"{', '.join(WATCHLIST_ONLY_REGISTRIES)} with a watchlist only. Without it, the arguments are paths."
)


def _settings(watchlist: Path | None, allowlist: Path | None) -> Settings:
    try:
        return Settings.from_env(watchlist_file=watchlist, allowlist_file=allowlist)
    except ValueError as exc:  # a malformed TYPOSTREAM_* value
        raise fail(str(exc)) from exc


def _looks_like_path(target: str) -> bool:
    """A scan argument given with --registry that is surely a path, not a package name."""
    try:
        mode = os.stat(target).st_mode  # one system call per argument (it runs for every name)
    except (OSError, ValueError):
        return target in (".", "..")
    if stat.S_ISDIR(mode):
        return True
    return stat.S_ISREG(mode) and any(fmt.matches_name(Path(target)) for fmt in FORMATS.values())


def _collect(
    paths: list[Path], file: Path | None, fmt: str | None, registry: str | None
) -> tuple[list[Entry], Path | None]:
    """Entries of every manifest under ``paths`` and of ``file``, and the root their files are relative to."""
    forced = FORMATS[fmt] if fmt else None
    files: list[tuple[Path, bool]] = [(file, True)] if file is not None else []
    directories = []
    for path in paths:
        if path.is_dir():
            if forced is not None:
                raise ManifestError(f"--format-in applies to files; {path} is a directory")
            found = find_manifests(path)
            if not found:
                raise ManifestError(f"{path}: no manifest or lockfile found (formats: {', '.join(FORMATS)})")
            files.extend((manifest, False) for manifest, _ in found)
            directories.append(path)
        elif path.exists():
            files.append((path, True))
        else:
            raise ManifestError(f"no such file or directory: {path}")
    entries: list[Entry] = []
    for manifest, explicit in files:
        # a file named on the command line may be any format (by content); a walk finds by name
        _, found_entries = parse_file(manifest, forced if explicit else None, registry if explicit else None)
        entries.extend(found_entries)
    if not files:
        return entries, None
    bases = [d.resolve() for d in directories] + [m.resolve().parent for m, explicit in files if explicit]
    return entries, Path(os.path.commonpath(bases)) if bases else None


def _relative(file: str, root: Path | None) -> str:
    """``file`` relative to ``root``, POSIX (climbing out of it for an included file outside it)."""
    path = Path(file).resolve()
    return Path(os.path.relpath(path, root)).as_posix() if root is not None else path.as_posix()


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
    registry = registry.lower()
    if registry and registry not in DETECTOR_REGISTRIES:
        raise fail(str(UnknownRegistryError(registry, DETECTOR_REGISTRIES)))
    if json_alias:
        output = OutputFormat("json")
    targets = list(targets or [])
    if not targets and file is None:
        raise fail("give PATH... (a project or manifest), NAME... with --registry, or --file FILE")
    if registry:
        for target in targets:
            if _looks_like_path(target):
                raise fail(f"{target} is a path: scan paths without --registry, or use --file {target}")
    settings = _settings(watchlist, allowlist)
    watchlist_only = registry in WATCHLIST_ONLY_REGISTRIES
    if watchlist_only and settings.watchlist_file is None:
        raise fail(f"{registry} has no bundled popular-name index; pass --watchlist FILE")
    # a TypostreamError (unparsable manifest, bad spec, bad advisory path...) becomes one line via @command
    named = [Entry(registry, *parse_spec(t, registry), file="") for t in targets] if registry else []
    paths = [] if registry else [Path(t) for t in targets]
    entries, root = _collect(paths, file, format_in.value if format_in else None, registry or None)
    # lazy: only the registries scanned are read from the index cache (or built)
    assessor = build_assessor(settings, build_detector(settings, lazy=True))
    if watchlist_only and not assessor.detector.index(registry).by_key:
        raise fail(
            f"{registry} has no bundled popular-name index and watchlist "
            f"{settings.watchlist_file} lists no names"
        )
    for used in {e.registry for e in named} | {e.registry for e in entries}:
        assessor.detector.index(used)
    # The indexes are most of the heap and live until exit: keep the collector from walking
    # them again each time the findings grow (20,000 names: 0.3 s of full collections).
    gc.freeze()
    findings = [Finding(assessor.assess(e.name, e.registry, e.version)) for e in named]
    relative: dict[str, str] = {}  # per file, not per entry: resolving a path costs syscalls
    for e in entries:
        where = relative.get(e.file)
        if where is None:
            where = relative[e.file] = _relative(e.file, root)
        findings.append(Finding(assessor.assess(e.name, e.registry, e.version), where, e.line))
    REPORTERS[output.value].write(findings, root, typer.get_text_stream("stdout"))
    if fail_on is not None and any(
        at_least(t.severity, fail_on.value) for f in findings for t in f.result.threats
    ):
        raise typer.Exit(1)
