"""Command: guard.

``typostream guard [OPTIONS] -- pip install ARGS`` (also ``python -m pip install``) and
``typostream guard [OPTIONS] -- npm install ARGS`` find out what the install would put in place
without installing anything (:mod:`typostream.agents.domain.resolution`), assess every resolved
``name@version`` with the same :class:`Assessor` as ``scan``, print the findings with the scan
reporters, and then run the install command unchanged (``exec``: its exit code is the guard's)
only when no finding reaches ``--fail-on`` (default ``high``) and, with ``--min-age-days N``, no
release is younger than N days. Otherwise it exits 1 and installs nothing.

- pip: requirements named on the command line and in ``-r`` files are assessed *before* pip runs,
  since pip's resolution builds the metadata of source distributions and so runs their build
  backend; then ``pip install ARGS --dry-run --report FILE --quiet`` resolves the whole set.
  Dependencies that only exist as source distributions still have their backend run during
  resolution; add ``--only-binary :all:`` to the pip arguments to rule that out.
- npm: ``npm install ARGS --package-lock-only --ignore-scripts`` runs in a temporary copy of the
  project's ``package.json``, lockfile and ``.npmrc`` (the project is ``--prefix``/``-C``, else the
  nearest directory upwards with a ``package.json`` or ``node_modules``, as npm finds it), plus the
  ``package.json`` of each local package inside the project it depends on, so nothing in the
  project changes and no package script runs; its ``package-lock.json`` is the resolved tree.
  Packages from git or local folders are listed as not assessed (their dependencies are).
- Release ages come from ``TYPOSTREAM_PYPI_URL`` (``/pypi/<name>/<version>/json``) and
  ``TYPOSTREAM_NPM_REGISTRY_URL`` (the packument's ``time``) through the registry client.

Exit 1: something reached ``--fail-on`` or is too new (nothing installed). Exit 2, with one line:
the command is not one the guard knows, the installer could not resolve it, its answer or a
release time cannot be read — never a silent "clean". Else the install's own exit code. The
install runs again after the check: an index that changes in between can still change what it
gets (pin versions or use a lockfile to rule that out).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Final, TextIO

import typer

from typostream.agents.domain.assess import Assessor
from typostream.agents.domain.errors import PackageSpecError, ResolutionError
from typostream.agents.domain.manifests import FORMATS, Entry, parse_file, parse_spec
from typostream.agents.domain.resolution import (
    NPM_DEPENDENCY_SECTIONS,
    InstallCommand,
    NpmPlan,
    Resolved,
    age_days,
    installer_error_line,
    npm_local_path,
    npm_manifest_local_paths,
    npm_plan,
    npm_resolution_argv,
    parse_install_command,
    parse_npm_lock,
    parse_pip_report,
    pip_requested,
    pip_resolution_argv,
)
from typostream.agents.domain.vocabulary import at_least
from typostream.streams.cli.app import command, fail
from typostream.streams.cli.options import Allowlist, FailOn, OutputFormat, Watchlist
from typostream.streams.components import build_assessor
from typostream.streams.config import Settings
from typostream.streams.reports import REPORTERS, Finding

__all__ = ["guard"]

PIPED_FORMAT: Final = next(iter(REPORTERS))
"""The format when the findings do not go to a terminal (scan's default); a terminal gets a table."""
TTY_FORMAT: Final = "table"
DEFAULT_FAIL_ON: Final = FailOn("high")
AGE_LOOKUPS: Final = 8
"""Release-time requests in flight at once."""
NPM_PROJECT_FILES: Final = ("package.json", "package-lock.json", "npm-shrinkwrap.json", ".npmrc")
"""What npm reads from the project to resolve (``package.json`` first)."""


def _note(message: str) -> None:
    typer.echo(f"typostream guard: {message}", err=True)


def _settings(watchlist: Path | None, allowlist: Path | None) -> Settings:
    try:
        return Settings.from_env(watchlist_file=watchlist, allowlist_file=allowlist)
    except ValueError as exc:  # a malformed TYPOSTREAM_* value
        raise fail(str(exc)) from exc


@contextmanager
def _output(path: Path | None) -> Iterator[TextIO]:
    if path is None:
        yield typer.get_text_stream("stdout")
        return
    try:
        handle = path.open("w", encoding="utf-8")
    except OSError as exc:
        raise fail(f"cannot write {path}: {exc.strerror or exc}") from exc
    with handle:
        yield handle


def _run(argv: Sequence[str], tool: str) -> subprocess.CompletedProcess[str]:
    """Run a resolving command, its output captured (stdin closed: a prompt fails, never hangs)."""
    try:
        return subprocess.run(
            list(argv),
            capture_output=True,
            text=True,
            encoding="utf-8",
            errors="replace",
            stdin=subprocess.DEVNULL,
            check=False,
        )
    except FileNotFoundError as exc:
        raise ResolutionError(f"{argv[0]}: command not found (is {tool} installed?)") from exc
    except OSError as exc:
        raise ResolutionError(f"cannot run {argv[0]}: {exc.strerror or exc}") from exc


def _read_json(path: Path, what: str) -> object:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ResolutionError(f"{what} was not written") from exc
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ResolutionError(f"{what} cannot be read: {exc}") from exc


# --- pip -----------------------------------------------------------------------------------------
def _pip_requested(install: InstallCommand) -> list[Entry]:
    """The requirements the pip command names itself (arguments and ``-r`` files)."""
    requested = pip_requested(install)
    entries = []
    for spec in requested.specs:
        try:
            name, version = parse_spec(spec, "pypi")
        except PackageSpecError:
            continue  # not a name-based requirement: pip's report says what it is
        entries.append(Entry("pypi", name, version, ""))
    for file in requested.files:
        if "://" in file:
            continue  # a requirements file on a server: pip's report covers it
        entries.extend(parse_file(Path(file), FORMATS["requirements"], "pypi")[1])
    return entries


def _resolve_pip(install: InstallCommand) -> list[Resolved]:
    with tempfile.TemporaryDirectory(prefix="typostream-guard-") as tmp:
        report = Path(tmp) / "report.json"
        proc = _run(pip_resolution_argv(install, str(report)), "pip")
        if proc.returncode != 0:
            raise ResolutionError(
                f"pip could not resolve the install (exit {proc.returncode}): "
                + installer_error_line("pip", proc.stderr)
            )
        return parse_pip_report(_read_json(report, "pip's installation report (--report needs pip 22.2+)"))


# --- npm -----------------------------------------------------------------------------------------
def npm_project_root(start: Path) -> Path:
    """The directory npm installs into: the nearest one upwards with a ``package.json`` or a
    ``node_modules`` folder, else ``start``."""
    for directory in (start, *start.parents):
        if (directory / "package.json").is_file() or (directory / "node_modules").is_dir():
            return directory
    return start


def _npm_project(plan: NpmPlan) -> Path | None:
    """The project directory to copy (None for a global install); refuses workspaces."""
    if plan.project == "":
        return None
    project = Path(plan.project) if plan.project else npm_project_root(Path.cwd())
    manifest = project / "package.json"
    if manifest.is_file():
        try:
            doc = json.loads(manifest.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            raise ResolutionError(f"{manifest} cannot be read: {exc}") from exc
        if isinstance(doc, dict) and doc.get("workspaces"):
            raise ResolutionError(
                f"{manifest} declares workspaces; typostream guard does not resolve npm workspaces yet"
            )
    return project


def _stage_npm(plan: NpmPlan, project: Path | None, into: Path) -> list[str]:
    """Copy into ``into`` what npm reads to resolve — the project's ``package.json``, lockfile and
    ``.npmrc``, and the ``package.json`` (or tarball) of each local package inside the project it
    depends on, at the same relative paths — and return the resolving command, its local path
    arguments pointed at the copy. A local package outside the project is named by its absolute
    path (npm links it without installing its dependencies, or unpacks a tarball, as it would)."""
    root = project.resolve() if project is not None else None
    if root is not None:
        for name in NPM_PROJECT_FILES[1:]:
            if (root / name).is_file():
                shutil.copyfile(root / name, into / name)
    argv = list(plan.argv)
    pending: list[Path] = [root] if root is not None else []
    for position in plan.paths:
        target = _local_target(Path.cwd(), argv[position])
        inside = root is not None and target.is_relative_to(root)
        argv[position] = str(into / target.relative_to(root)) if root is not None and inside else str(target)
        if inside:
            pending.append(target)
    staged: set[Path] = set()
    while pending:
        target = pending.pop()
        if target in staged or root is None:
            continue
        staged.add(target)
        copy = into / target.relative_to(root)
        if target.is_file():  # a tarball
            copy.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(target, copy)
            continue
        manifest = target / "package.json"
        if not manifest.is_file():
            continue  # npm says what is missing (or records it, and parse_npm_lock refuses it)
        doc = _read_json(manifest, str(manifest))
        outside = False
        for spec in npm_manifest_local_paths(doc):
            local = _local_target(target, spec)
            if local.is_relative_to(root):
                pending.append(local)
            else:
                outside = True
        copy.mkdir(parents=True, exist_ok=True)
        if outside and isinstance(doc, dict):
            doc = _absolute_outside_specs(doc, target, root)
            (copy / "package.json").write_text(json.dumps(doc), encoding="utf-8")
        else:
            shutil.copyfile(manifest, copy / "package.json")
    return npm_resolution_argv(NpmPlan(plan.project, tuple(argv)), str(into))


def _local_target(base: Path, spec: str) -> Path:
    path = npm_local_path(spec)
    return (base / os.path.expanduser(path if path is not None else spec)).resolve()


def _absolute_outside_specs(doc: dict[str, object], folder: Path, root: Path) -> dict[str, object]:
    """``doc`` with its local specs outside ``root`` made absolute (they would not resolve from the copy)."""
    out = dict(doc)
    for section, dependencies in doc.items():
        if not isinstance(dependencies, dict) or section not in NPM_DEPENDENCY_SECTIONS:
            continue
        rewritten = {}
        for name, spec in dependencies.items():
            if isinstance(spec, str) and npm_local_path(spec) is not None:
                target = _local_target(folder, spec)
                spec = spec if target.is_relative_to(root) else f"file:{target}"
            rewritten[name] = spec
        out[section] = rewritten
    return out


def _resolve_npm(plan: NpmPlan, project: Path | None) -> tuple[list[Resolved], list[str]]:
    with tempfile.TemporaryDirectory(prefix="typostream-guard-") as tmp:
        into = Path(tmp)
        proc = _run(_stage_npm(plan, project, into), "npm")
        if proc.returncode != 0:
            raise ResolutionError(
                f"npm could not resolve the install (exit {proc.returncode}): "
                + installer_error_line("npm", proc.stderr)
            )
        shrinkwrap = into / "npm-shrinkwrap.json"
        lock = shrinkwrap if shrinkwrap.is_file() else into / "package-lock.json"
        return parse_npm_lock(_read_json(lock, "npm's package-lock.json"))


# --- release age ---------------------------------------------------------------------------------
async def _release_times(
    packages: Sequence[Resolved], settings: Settings
) -> list[tuple[Resolved, datetime | None]]:
    from typostream.agents.adapters.registry import RegistryClient

    gate = asyncio.Semaphore(AGE_LOOKUPS)
    async with RegistryClient(npm_base=settings.npm_registry_url, pypi_base=settings.pypi_url) as client:

        async def one(package: Resolved) -> tuple[Resolved, datetime | None]:
            filename = None
            if package.registry == "pypi" and package.artifact:
                filename = package.artifact.split("#", 1)[0].rsplit("/", 1)[-1]
            async with gate:
                return package, await client.release_time(
                    package.registry, package.name, package.version, filename
                )

        return list(await asyncio.gather(*(one(p) for p in packages)))


def _too_young(packages: Sequence[Resolved], settings: Settings, min_days: float) -> list[str]:
    """One reason per release younger than ``min_days``; exit 2 when a release time is unknown."""
    dated = [p for p in packages if p.release]
    for package in packages:
        if not package.release:
            _note(f"{package.name} {package.version}: no registry release (URL, path, bundle): age unchecked")
    now = datetime.now(UTC)
    reasons = []
    for package, published in asyncio.run(_release_times(dated, settings)):
        if published is None:
            base = settings.pypi_url if package.registry == "pypi" else settings.npm_registry_url
            raise ResolutionError(
                f"cannot check the age of {package.name} {package.version}: {package.registry} "
                f"metadata at {base} has no release time for it (drop --min-age-days to skip the check)"
            )
        age = age_days(published, now)
        if age < min_days:
            reasons.append(
                f"{package.name} {package.version} was published {max(age, 0):.1f} days ago "
                f"({published.isoformat(timespec='seconds')}), under --min-age-days {min_days:g}"
            )
    return reasons


# --- the command ---------------------------------------------------------------------------------
def _blocking(findings: Sequence[Finding], floor: str) -> list[str]:
    return [
        f"{f.result.name} {f.version or ''}".rstrip() + f": {t.type} ({t.severity}) {t.target}: {t.evidence}"
        for f in findings
        for t in f.result.threats
        if at_least(t.severity, floor)
    ]


def _findings(assessor: Assessor, packages: Sequence[Resolved]) -> list[Finding]:
    return [Finding(assessor.assess(p.name, p.registry, p.version)) for p in packages]


def _refuse(install: InstallCommand, reasons: Sequence[str], detail: str = "") -> typer.Exit:
    for reason in reasons:
        _note(reason)
    _note(
        f"not running `{install.display()}`: {len(reasons)} reason(s) above"
        + (f"; {detail}" if detail else "")
    )
    return typer.Exit(1)


def _requested_finding(assessor: Assessor, entry: Entry, root: Path) -> Finding:
    """A requirement the pip command names: from a ``-r`` file (relative to ``root``) or an argument."""
    result = assessor.assess(entry.name, entry.registry, entry.version)
    if not entry.file:
        return Finding(result)
    return Finding(result, Path(os.path.relpath(Path(entry.file).resolve(), root)).as_posix(), entry.line)


@command(context_settings={"allow_interspersed_args": False})
def guard(
    install: Annotated[
        list[str] | None,
        typer.Argument(
            help="The install command, after --: pip install ARGS, python -m pip install ARGS, "
            "npm install ARGS.",
            show_default=False,
            metavar="-- COMMAND...",
        ),
    ] = None,
    fail_on: Annotated[
        FailOn, typer.Option(help="Do not install when a threat reaches this severity (exit 1).")
    ] = DEFAULT_FAIL_ON,
    min_age_days: Annotated[
        float,
        typer.Option(
            "--min-age-days",
            min=0,
            help="Cool-down: do not install a release published fewer than N days ago (0: off). "
            "Release times come from $TYPOSTREAM_PYPI_URL / $TYPOSTREAM_NPM_REGISTRY_URL.",
        ),
    ] = 0,
    output: Annotated[
        OutputFormat | None,
        typer.Option(
            "--format",
            "-f",
            help=f"Output format of the findings (default: {TTY_FORMAT} on a terminal, else "
            f"{PIPED_FORMAT}). " + " ".join(f"{fmt}: {r.description}" for fmt, r in REPORTERS.items()),
            show_default=False,
        ),
    ] = None,
    json_alias: Annotated[bool, typer.Option("--json", help="Alias of --format json.")] = False,
    report_file: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            help="Write the findings to FILE instead of stdout (the install's own output stays apart).",
        ),
    ] = None,
    watchlist: Watchlist = None,
    allowlist: Allowlist = None,
) -> None:
    """Check what `pip install` / `npm install` would install, then install only if nothing
    reaches --fail-on: typostream guard [OPTIONS] -- pip install ARGS."""
    # a TypostreamError (unknown command, resolution failed, unreadable answer) is one line, exit 2
    plan = parse_install_command(install or [])
    settings = _settings(watchlist, allowlist)
    floor = fail_on.value
    fmt = "json" if json_alias else output.value if output else None
    with _output(report_file) as stream, ThreadPoolExecutor(max_workers=1) as pool:
        reporter = REPORTERS[fmt or (TTY_FORMAT if stream.isatty() else PIPED_FORMAT)]
        if plan.tool == "npm":
            npm = npm_plan(plan)
            # npm resolves (no package code runs) while the assessor is built
            resolving = pool.submit(_resolve_npm, npm, _npm_project(npm))
            assessor = build_assessor(settings)
            packages, local = resolving.result()
        else:
            assessor = build_assessor(settings)
            # before pip runs: resolving a source distribution runs its build backend
            root = Path.cwd()
            early = [_requested_finding(assessor, e, root) for e in _pip_requested(plan)]
            if reasons := _blocking(early, floor):
                reporter.write(early, root, stream)
                stream.flush()
                raise _refuse(plan, reasons, "pip was not run: resolving would build these packages")
            packages, local = _resolve_pip(plan), []
        findings = _findings(assessor, packages)
        young = _too_young(packages, settings, min_age_days) if min_age_days > 0 else []
        reporter.write(findings, None, stream)
        stream.flush()  # before the installer's output (and before exec replaces this process)
    for key in local:
        _note(f"{key}: from git or a local folder, not a registry: not assessed (its dependencies are)")
    reasons = [*_blocking(findings, floor), *young]
    if reasons:
        raise _refuse(plan, reasons)
    _note(f"{len(findings)} package(s) checked, none reaches {floor}; running `{plan.display()}`")
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        os.execvp(plan.argv[0], list(plan.argv))
    except OSError as exc:
        raise fail(f"cannot run {plan.argv[0]}: {exc.strerror or exc}") from exc
