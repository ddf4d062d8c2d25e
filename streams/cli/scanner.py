"""What ``typostream scan`` does, without Typer: the scan itself (:func:`run`) and the fast path
into it (:func:`main`).

The command is declared once, with Typer, in :mod:`typostream.streams.cli.scan` (its ``--help``,
its options, every message about a bad command line); that command calls :func:`run`. Importing
Typer and letting it parse costs ~100 ms at every start (Typer builds pydantic adapters to coerce
the values), more than the scan of a few names, so ``typostream scan`` first tries :func:`main`:
it parses the command line itself (:func:`parse`, a port of the parser Typer uses, restricted to
this command's options) when it can be sure of reaching exactly the values Typer would reach, and
runs the scan with them. Anything else — ``--help``, an unknown option, a missing or invalid value,
a path option Typer would refuse or could not check, shell completion, Windows — is handed to Typer
unchanged, so its answer is Typer's. ``tests/cli/test_scan_fast.py`` holds both to the same values.

After parsing, both paths behave the same way: a refusal or a :class:`TypostreamError` is one line
on stderr (``app.fail``, imported only then) and exit 2; exit 1 when a threat reaches ``--fail-on``;
Ctrl-C is exit 130 and a closed stdout exit 1, as Typer does them.
"""

from __future__ import annotations

import codecs
import contextlib
import errno
import gc
import io
import os
import stat
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, BinaryIO, NoReturn, TextIO

from typostream.agents.domain.errors import ManifestError, TypostreamError, UnknownRegistryError
from typostream.agents.domain.manifests import FORMATS, Entry, find_manifests, parse_file, parse_spec
from typostream.agents.domain.vocabulary import (
    DETECTOR_REGISTRIES,
    SEVERITIES,
    WATCHLIST_ONLY_REGISTRIES,
    at_least,
)
from typostream.streams.components import build_assessor, build_detector
from typostream.streams.config import Settings
from typostream.streams.reports import REPORTERS, Finding

__all__ = ["OPTIONS", "Refusal", "main", "parse", "run"]


class Refusal(Exception):
    """The scan refuses its command line or settings: ``message`` becomes one ``typostream: error:``
    line on stderr and the exit code is 2 (what ``app.fail`` did inside the command)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


# --- the scan --------------------------------------------------------------------------------
def _settings(watchlist: Path | None, allowlist: Path | None) -> Settings:
    try:
        return Settings.from_env(watchlist_file=watchlist, allowlist_file=allowlist)
    except ValueError as exc:  # a malformed TYPOSTREAM_* value
        raise Refusal(str(exc)) from exc


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


def run(
    targets: Sequence[str] | None,
    registry: str,
    watchlist: Path | None,
    allowlist: Path | None,
    output: str,
    json_alias: bool,
    fail_on: str | None,
    file: Path | None,
    format_in: str | None,
    stdout: Callable[[], TextIO],
) -> int:
    """Scan as the options say and write the report to ``stdout()``; the exit code (0, or 1 when a
    threat reaches ``fail_on``). :class:`Refusal` or a :class:`TypostreamError` when the scan
    cannot be done (one line, exit 2: the caller prints it)."""
    registry = registry.lower()
    if registry and registry not in DETECTOR_REGISTRIES:
        raise Refusal(str(UnknownRegistryError(registry, DETECTOR_REGISTRIES)))
    if json_alias:
        output = "json"
    targets = list(targets or [])
    if not targets and file is None:
        raise Refusal("give PATH... (a project or manifest), NAME... with --registry, or --file FILE")
    if registry:
        for target in targets:
            if _looks_like_path(target):
                raise Refusal(f"{target} is a path: scan paths without --registry, or use --file {target}")
    settings = _settings(watchlist, allowlist)
    watchlist_only = registry in WATCHLIST_ONLY_REGISTRIES
    if watchlist_only and settings.watchlist_file is None:
        raise Refusal(f"{registry} has no bundled popular-name index; pass --watchlist FILE")
    # a TypostreamError (unparsable manifest, bad spec, bad advisory path...) becomes one line
    named = [parse_spec(t, registry) for t in targets] if registry else []  # (name, version)
    paths = [] if registry else [Path(t) for t in targets]
    entries, root = _collect(paths, file, format_in, registry or None)
    # The indexes are most of the heap and live until exit. Read them with the cyclic collector
    # off and freeze them: it would walk their ~200,000 new containers once right after reading
    # (pypi 26 ms, npm more), and again each time the findings grow (20,000 names: 0.3 s).
    enabled = gc.isenabled()
    gc.disable()
    try:
        # lazy: only the registries scanned are read from the index cache (or built)
        assessor = build_assessor(settings, build_detector(settings, lazy=True))
        if watchlist_only and not assessor.detector.index(registry).by_key:
            raise Refusal(
                f"{registry} has no bundled popular-name index and watchlist "
                f"{settings.watchlist_file} lists no names"
            )
        for used in ({registry} if named else set()) | {e.registry for e in entries}:
            assessor.detector.index(used)
        gc.freeze()
    finally:
        if enabled:
            gc.enable()
    assess = assessor.assess
    findings = [Finding(assess(name, registry, version)) for name, version in named]
    relative: dict[str, str] = {}  # per file, not per entry: resolving a path costs syscalls
    for e in entries:
        where = relative.get(e.file)
        if where is None:
            where = relative[e.file] = _relative(e.file, root)
        findings.append(Finding(assess(e.name, e.registry, e.version), where, e.line))
    REPORTERS[output].write(findings, root, stdout())
    if fail_on is not None and any(at_least(t.severity, fail_on) for f in findings for t in f.result.threats):
        return 1
    return 0


# --- the fast path: the command line parsed as Typer parses it ---------------------------------
class _Option:
    __slots__ = ("choices", "dest", "kind")

    def __init__(self, dest: str, kind: str, choices: Sequence[str] = ()) -> None:
        self.dest = dest
        self.kind = kind  # "str", "path", "choice", "flag" (no value) or "help"
        self.choices = frozenset(choices)


OPTIONS: Mapping[str, _Option] = {
    "--registry": _Option("registry", "str"),
    "-r": _Option("registry", "str"),
    "--watchlist": _Option("watchlist", "path"),
    "--allowlist": _Option("allowlist", "path"),
    "--format": _Option("output", "choice", tuple(REPORTERS)),
    "-f": _Option("output", "choice", tuple(REPORTERS)),
    "--json": _Option("json_alias", "flag"),
    "--fail-on": _Option("fail_on", "choice", SEVERITIES),
    "--file": _Option("file", "path"),
    "--format-in": _Option("format_in", "choice", tuple(FORMATS)),
    "--help": _Option("help", "help"),
}
"""Every option of the Typer command ``scan`` (tests/cli/test_scan_fast.py checks the two agree):
long ones (``--x``, ``--x=VALUE``) and one-letter ones (``-x VALUE``, ``-xVALUE``)."""

DEFAULTS: Mapping[str, Any] = {
    "targets": None,
    "registry": "",
    "watchlist": None,
    "allowlist": None,
    "output": next(iter(REPORTERS)),
    "json_alias": False,
    "fail_on": None,
    "file": None,
    "format_in": None,
}
"""The Typer command's defaults, by parameter (choices as their values)."""


class _Defer(Exception):
    """Typer is to parse this command line (it gives the help or the error message)."""


def _short(arg: str, args: Sequence[str], at: int, values: dict[str, str | None]) -> int:
    """``-xVALUE`` or ``-x VALUE`` (click's ``_match_short_opt``); the index after what it used."""
    for i, ch in enumerate(arg[1:], start=2):
        option = OPTIONS.get(arg[0] + ch)
        if option is None:
            raise _Defer  # no such option
        if option.kind not in ("flag", "help"):
            if i < len(arg):
                values[option.dest] = arg[i:]
                return at
            if at >= len(args):
                raise _Defer  # the option requires a value
            values[option.dest] = args[at]
            return at + 1
        values[option.dest] = None
    return at


def _path(value: str) -> Path:
    """What Typer makes of a ``Path`` option's value, when it surely accepts it."""
    if not value or "\0" in value:
        raise _Defer
    path = Path(value)
    try:
        os.stat(path)
    except OSError:
        return path  # need not exist
    if not os.access(path, os.R_OK):
        raise _Defer  # Typer refuses a path that exists and cannot be read
    return path


def parse(args: Sequence[str]) -> dict[str, Any] | None:
    """The keyword arguments of :func:`run` (but ``stdout``) for the arguments after ``scan``, or
    None when Typer must parse them: ``--help``, an unknown option, a missing value, a choice not
    offered, a path option Typer could refuse. Options may come anywhere (``--`` ends them); a
    repeated option keeps its last value; an option's value is the next argument, whatever it is."""
    values: dict[str, str | None] = {}
    positional: list[str] = []
    at, end = 0, len(args)
    try:
        while at < end:
            arg = args[at]
            at += 1
            if arg == "--":
                positional.extend(args[at:])
                break
            if arg[:1] != "-" or len(arg) == 1:
                positional.append(arg)
                continue
            name, equals, explicit = arg.partition("=")
            option = OPTIONS.get(name)
            if option is not None and name[:2] == "--":  # click's long options (every ``--x``)
                if option.kind in ("flag", "help"):
                    if equals:
                        raise _Defer  # a flag given a value
                    values[option.dest] = None
                elif equals:
                    values[option.dest] = explicit
                elif at < end:
                    values[option.dest] = args[at]
                    at += 1
                else:
                    raise _Defer  # the option requires a value
            elif arg[:2] == "--":
                raise _Defer  # no such option
            else:
                at = _short(arg, args, at, values)
        if "help" in values:
            raise _Defer
        out = dict(DEFAULTS)
        for dest, value in values.items():
            option = next(o for o in OPTIONS.values() if o.dest == dest)
            if option.kind == "flag":
                out[dest] = True
            elif option.kind == "path":
                out[dest] = _path(value or "")
            elif option.kind == "choice" and value not in option.choices:
                raise _Defer
            else:
                out[dest] = value
        out["targets"] = positional or None
        return out
    except _Defer:
        return None


def _completion_requested() -> bool:
    """Whether the environment asks for shell completion (``_<PROG>_COMPLETE``, read by Typer)."""
    return any(key[:1] == "_" and key.endswith("_COMPLETE") and value for key, value in os.environ.items())


# click's get_text_stream("stdout") (typer._click._compat), for a POSIX system: sys.stdout itself
# when it is a text stream encoding strictly to a non-ASCII codec, else a strict text writer on its
# buffer (a C locale's stdout uses surrogateescape: click writes strictly).
class _FixupStream:
    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)

    def read1(self, size: int) -> bytes:
        f = getattr(self._stream, "read1", None)
        return f(size) if f is not None else self._stream.read(size)  # type: ignore[no-any-return]

    def readable(self) -> bool:
        return True

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        x = getattr(self._stream, "seekable", None)
        return bool(x()) if x is not None else False


class _NonClosingTextIOWrapper(io.TextIOWrapper):
    def __init__(self, stream: BinaryIO, encoding: str | None, errors: str | None, **extra: Any) -> None:
        self._stream = stream = _FixupStream(stream)  # type: ignore[assignment]
        super().__init__(stream, encoding, errors, **extra)

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self.detach()

    def isatty(self) -> bool:
        return self._stream.isatty()


def _is_ascii(encoding: str) -> bool:
    try:
        return codecs.lookup(encoding).name == "ascii"
    except LookupError:
        return False


def _is_binary_writer(stream: Any, default: bool) -> bool:
    try:
        stream.write(b"")
    except Exception:
        try:
            stream.write("")
            return False
        except Exception:
            pass
        return default
    return True


def text_stdout() -> TextIO:
    """``typer.get_text_stream("stdout")`` on POSIX, without importing Typer."""
    stream: Any = sys.stdout
    if _is_binary_writer(stream, False):
        binary = stream
    else:
        encoding = getattr(stream, "encoding", None)
        if (
            encoding is not None
            and getattr(stream, "errors", None) == "strict"
            and not _is_ascii(encoding or "ascii")
        ):
            return stream  # type: ignore[no-any-return]
        buffer = getattr(stream, "buffer", None)
        if buffer is None or not _is_binary_writer(buffer, True):
            return stream  # type: ignore[no-any-return]
        binary = buffer
    encoding = getattr(binary, "encoding", None) or sys.getdefaultencoding()
    if _is_ascii(encoding):
        encoding = "utf-8"
    return _NonClosingTextIOWrapper(binary, encoding, "strict", line_buffering=True)


def _fail(message: str) -> int:
    from typostream.streams.cli.app import fail  # Typer: only to print an error

    return fail(message).exit_code


def main(args: Sequence[str]) -> None:
    """Run ``typostream scan ARGS`` and exit, or return (having done nothing) for Typer to run it."""
    if os.name == "nt" or _completion_requested():
        return
    parsed = parse(args)
    if parsed is None:
        return
    # as typer.core._main handles what escapes the command
    try:
        try:
            code = run(**parsed, stdout=text_stdout)
        except Refusal as exc:
            code = _fail(exc.message)
        except TypostreamError as exc:  # app.command's error path
            from typostream.streams.cli.app import error_line

            code = _fail(error_line(exc))
    except KeyboardInterrupt:
        _exit(130)
    except EOFError:
        _abort()
    except OSError as exc:
        if exc.errno != errno.EPIPE:
            raise
        _pacify()
        _exit(1)
    _exit(code)


def _exit(code: int) -> NoReturn:
    sys.exit(code)


# What typer.core._main does when these escape a command (Typer imported only then).
def _pacify() -> None:
    """A closed stdout (``scan ... | head -1``): no "Exception ignored" when the streams flush at exit."""
    from typer._click.utils import PacifyFlushWrapper

    sys.stdout = PacifyFlushWrapper(sys.stdout)  # type: ignore[assignment]
    sys.stderr = PacifyFlushWrapper(sys.stderr)  # type: ignore[assignment]


def _abort() -> NoReturn:
    """An EOFError: a newline, then "Aborted" (styled by rich when Typer uses it), exit 1."""
    import typer
    import typer.core
    from typer import rich_utils

    from typostream.streams.cli.app import root

    typer.echo(file=sys.stderr)
    if typer.core.HAS_RICH and typer.main.get_group(root).rich_markup_mode is not None:
        rich_utils.rich_abort_error()
    else:
        typer.echo("Aborted!", file=sys.stderr)
    sys.exit(1)
