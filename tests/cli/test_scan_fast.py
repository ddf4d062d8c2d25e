"""The fast path of ``typostream scan`` (``streams/cli/scanner.py``) answers exactly as the Typer
command would: the same values from the same command line (or Typer parses it), the same output
stream, the same bytes and exit codes, and it imports none of the CLI libraries."""

from __future__ import annotations

import errno
import gc
import io
import os
import subprocess
import sys
from enum import Enum
from pathlib import Path
from typing import Any

import pytest
import typer
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from typer.main import _normalize_collection_value

import typostream.streams.cli.scan  # noqa: F401  (registers the Typer command)
from tests.cli.scan_processes import EXE, SCAN_ENV, environ, scan_imports
from typostream.streams.cli import app, scanner

COMMAND = typer.main.get_group(app.root).commands["scan"]
TYPER_PATH = (
    "import sys, typer\n"
    "from typostream.streams.cli import app, scan\n"
    "typer.main.get_group(app.root)(['scan', *sys.argv[1:]], prog_name='typostream')\n"
)
"""``typostream scan ARGV`` through Typer only (what ``main`` runs when the fast path declines)."""
CLI_LIBRARIES = ("typer", "click", "pydantic", "pydantic_core", "rich")


def typer_values(args: list[str]) -> dict[str, Any] | None:
    """The keyword arguments Typer's ``scan`` hands ``scanner.run`` for ``args``; None when Typer
    refuses them or answers itself (``--help``)."""
    try:
        ctx = COMMAND.make_context("scan", list(args))
    except (typer.Exit, typer.Abort, Exception):  # usage errors, --help (an Exit)
        return None
    values = {p.name: _normalize_collection_value(p, ctx.params[p.name]) for p in COMMAND.params if p.name}
    return {k: v.value if isinstance(v, Enum) else v for k, v in values.items()}


# --- the parser ----------------------------------------------------------------------------------
COMMON = [
    ["-r", "pypi", "reqeusts"],
    ["--registry", "npm", "--format", "json", "lodahs", "react"],
    ["--registry=npm", "-fsarif", "lodahs"],
    ["-rnpm", "-f", "table", "--fail-on", "high", "a", "b"],
    ["--json", "--fail-on=critical", "-r", "pypi", "ctx==0.2.6"],
    ["lodahs", "-r", "npm", "--", "-weird", "--json"],
    ["-r", "npm", "--watchlist", "w.txt", "--allowlist", "a.txt", "x"],
    ["--file", "requirements.txt", "--format-in", "requirements"],
    ["project/", "-f", "json", "-f", "sarif"],  # the last one wins
    ["-r", "-", "x"],  # an option's value is the next argument, whatever it is
    ["--registry", "--json", "x"],
    ["-r=npm", "x"],  # a one-letter option's value is the rest of the argument: "=npm"
    ["-"],
    [],
]
DECLINED = [
    ["--help"],
    ["-r", "npm", "x", "--help"],
    ["--format", "xml", "x"],
    ["--fail-on", "severe", "x"],
    ["--format-in", "nope", "x"],
    ["-r"],
    ["x", "--file"],
    ["--nope", "x"],
    ["-x"],
    ["-rnpm", "-q", "x"],
    ["--json=yes", "x"],
    ["--for", "json", "x"],  # no abbreviations
    ["--watchlist", "", "x"],
    ["--file", "a\0b"],
]


@pytest.mark.parametrize("args", COMMON, ids=lambda a: " ".join(a) or "(none)")
def test_a_common_command_line_gets_typers_values(args: list[str]) -> None:
    expected = typer_values(args)
    assert expected is not None
    assert scanner.parse(args) == expected


@pytest.mark.parametrize("args", DECLINED, ids=lambda a: " ".join(a))
def test_help_and_every_bad_command_line_go_to_typer(args: list[str]) -> None:
    assert scanner.parse(args) is None


TOKENS = st.sampled_from(
    [
        "-r", "--registry", "--registry=npm", "-rnpm", "-r=pypi", "pypi", "npm", "-f", "-fjson",
        "--format", "--format=table", "json", "sarif", "table", "xml", "--json", "--json=1",
        "--fail-on", "--fail-on=low", "high", "critical", "--file", "--watchlist", "--allowlist=a",
        "--format-in", "names", "requirements", "--", "-", "", "name", "a==1", "@s/p@1", "--help",
        "-x", "-rf", "--nope", "--for", ".", "/", "a\0b", "x=y", "-=", "--=",
    ]
)  # fmt: skip


@given(st.lists(st.one_of(TOKENS, st.text(max_size=6)), max_size=7))
@hypothesis_settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_the_fast_parser_never_disagrees_with_typer(args: list[str]) -> None:
    """Any command line: the fast path gives Typer's values, or leaves it to Typer."""
    got = scanner.parse(args)
    if got is not None:
        assert got == typer_values(args)


def test_the_option_table_is_the_typer_commands() -> None:
    """A new option of the Typer command must be taught to the fast path (it would decline it as
    unknown, but silently lose its speed), and both must agree on names, kinds and defaults."""
    declared: dict[str, tuple[str, str]] = {}
    for param in COMMAND.params:
        if isinstance(param, typer.core.TyperArgument):
            assert param.name == "targets" and param.nargs == -1
            continue
        kind = "flag" if param.is_flag else "value"
        for opt in (*param.opts, *param.secondary_opts):
            declared[opt] = (param.name or "", kind)
    declared["--help"] = ("help", "help")
    ours = {
        opt: (o.dest, o.kind if o.kind in ("flag", "help") else "value") for opt, o in scanner.OPTIONS.items()
    }
    assert ours == declared
    assert typer_values(["x"]) == {**scanner.DEFAULTS, "targets": ["x"]}
    choices = {p.name: p.type_descriptor.choices for p in COMMAND.params if p.type_descriptor.choices}
    for option in scanner.OPTIONS.values():
        if option.kind == "choice":
            assert option.choices == {c.value for c in choices[option.dest]}


# --- the whole command: same bytes, same exit codes ----------------------------------------------
def both(
    args: list[str], data: Path, cwd: Path, **extra: str
) -> tuple[subprocess.CompletedProcess[bytes], subprocess.CompletedProcess[bytes]]:
    """``typostream scan ARGS`` (the fast path first) and the same through Typer only."""
    env = environ(data, **extra)
    fast = subprocess.run([str(EXE), "scan", *args], capture_output=True, env=env, cwd=cwd, timeout=120)
    slow = subprocess.run(
        [sys.executable, "-c", TYPER_PATH, *args], capture_output=True, env=env, cwd=cwd, timeout=120
    )
    return fast, slow


@pytest.mark.skipif(not EXE.exists(), reason="typostream entry point not installed")
def test_the_same_answers_as_typer(tmp_path: Path) -> None:
    data = tmp_path / "data"
    (tmp_path / "requirements.txt").write_text("requests==2.31\nreqeusts>=1\nctx==0.2.6\n")
    (tmp_path / "watch.txt").write_text("acme-internal-sdk\n")
    (tmp_path / "empty.txt").write_text("# none\n")
    (tmp_path / "bad.json").write_text("{not json")
    cases = [
        ["-r", "npm", "--format", "json", "lodahs", "react", "@types/node@20.11.30"],
        ["-r", "pypi", "--json", "--fail-on", "high", "reqeusts"],
        ["-r", "pypi", "--watchlist", "watch.txt", "acme-internal-sdc", "requests>=2"],
        ["-r", "npm", "-f", "sarif", "lodahs"],
        ["-r", "npm", "-f", "table", "lod\x1b[31mahs"],
        ["requirements.txt", "--fail-on", "critical"],
        [".", "-f", "sarif"],
        ["-r", "pypi", "--file", "requirements.txt"],
        # refusals and input errors: one line, exit 2
        [],
        ["-r", "cargo", "x"],
        ["-r", "npm", "."],
        ["-r", "rubygems", "rails"],
        ["-r", "rubygems", "--watchlist", "empty.txt", "rails"],
        ["-r", "pypi", "requests >="],
        ["-r", "npm", "--file", "bad.json"],
        ["missing-dir/"],
        # Typer's own answers
        ["--format", "xml", "x"],
        ["--help"],
    ]
    for args in cases:
        fast, slow = both(args, data, tmp_path)
        assert (fast.returncode, fast.stdout, fast.stderr) == (slow.returncode, slow.stdout, slow.stderr), (
            args
        )
        if fast.returncode == 2 and "--format" not in args:
            assert fast.stderr.count(b"\n") == 1 and fast.stderr.startswith(b"typostream: error: "), args
    bad_env = both(["-r", "npm", "x"], data, tmp_path, TYPOSTREAM_WATCHLIST_FILE=str(tmp_path / "missing"))
    assert bad_env[0].returncode == 2 and bad_env[0].stderr == bad_env[1].stderr


@pytest.mark.skipif(not EXE.exists(), reason="typostream entry point not installed")
@pytest.mark.parametrize(
    "extra",
    [{}, {"PYTHONIOENCODING": "utf-8:strict"}, {"PYTHONIOENCODING": "ascii"}, {"LC_ALL": "C", "LANG": "C"}],
    ids=["inherited", "utf8-strict", "ascii", "c-locale"],
)
def test_output_goes_through_clicks_stream(tmp_path: Path, extra: dict[str, str]) -> None:
    """The fast path writes where ``typer.get_text_stream("stdout")`` would (a C locale's stdout
    escapes surrogates, click's writer is strict): a name with undecodable bytes fails alike."""
    probe = (
        "import sys, typer\n"
        "from typostream.streams.cli.scanner import text_stdout\n"
        "ours, theirs = text_stdout(), typer.get_text_stream('stdout')\n"
        "print((ours is sys.stdout) == (theirs is sys.stdout), ours.encoding == theirs.encoding,"
        " ours.errors == theirs.errors, ours.line_buffering == theirs.line_buffering,"
        " type(ours).__name__ == type(theirs).__name__, file=sys.stderr)\n"
    )
    env = environ(tmp_path / "data", **extra)
    checked = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, env=env, timeout=60
    )
    assert checked.returncode == 0, checked.stderr
    assert checked.stderr.split() == ["True"] * 5
    undecodable = os.fsdecode(b"lod\xffahs")  # a surrogate escape in argv
    fast, slow = both(["-r", "npm", undecodable, "react"], tmp_path / "data", tmp_path, **extra)
    assert (fast.returncode, fast.stdout) == (slow.returncode, slow.stdout)
    assert fast.stderr.splitlines()[-1:] == slow.stderr.splitlines()[-1:]  # the same error, if any


@pytest.mark.skipif(not EXE.exists(), reason="typostream entry point not installed")
def test_a_closed_stdout_as_typer_without_noise(tmp_path: Path) -> None:
    """``typostream scan ... | head -c 100``: the exit code Typer gives, and nothing on stderr."""
    names = [f"name-{i}" for i in range(30_000)]
    env = environ(tmp_path / "data")
    results = []
    for argv in ([str(EXE), "scan"], [sys.executable, "-c", TYPER_PATH]):
        read, write = os.pipe()
        proc = subprocess.Popen(
            [*argv, "-r", "npm", *names], stdout=write, stderr=subprocess.PIPE, env=env, cwd=tmp_path
        )
        os.close(write)
        with os.fdopen(read, "rb", buffering=0) as stream:
            assert len(stream.read(100)) == 100
        _, err = proc.communicate(timeout=120)
        results.append((proc.returncode, err))
    assert results[0] == results[1] and results[0][1] == b""


class _Failing(io.RawIOBase):
    """A stdout whose writes fail with ``error`` (a closed pipe, Ctrl-C while writing)."""

    def __init__(self, error: BaseException) -> None:
        self.error = error

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        raise self.error


@pytest.mark.parametrize(
    ("error", "code"), [(BrokenPipeError(errno.EPIPE, "Broken pipe"), 1), (KeyboardInterrupt(), 130)]
)
def test_what_escapes_the_scan_ends_it_as_typer_does(
    error: BaseException, code: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TYPOSTREAM_DATA_DIR", str(tmp_path / "data"))
    for var in SCAN_ENV:
        monkeypatch.delenv(var, raising=False)
    outcomes = []
    for run in (
        lambda: scanner.main(["-r", "npm", "lodahs"]),
        lambda: typer.main.get_group(app.root)(["scan", "-r", "npm", "lodahs"], prog_name="typostream"),
    ):
        monkeypatch.setattr(sys, "stdout", io.TextIOWrapper(io.BufferedWriter(_Failing(error)), "utf-8"))
        monkeypatch.setattr(sys, "stderr", io.StringIO())
        with pytest.raises(SystemExit) as exited:
            run()
        outcomes.append((exited.value.code, type(sys.stdout).__name__, type(sys.stderr).__name__))
    assert outcomes[0] == outcomes[1]
    assert outcomes[0][0] == code


@pytest.mark.skipif(not EXE.exists(), reason="typostream entry point not installed")
def test_shell_completion_is_typers(tmp_path: Path) -> None:
    fast, slow = both(["-r"], tmp_path / "data", tmp_path, _TYPOSTREAM_COMPLETE="complete_bash")
    assert (fast.returncode, fast.stdout, fast.stderr) == (slow.returncode, slow.stdout, slow.stderr)


@pytest.mark.skipif(not EXE.exists(), reason="typostream entry point not installed")
def test_the_fast_path_imports_no_cli_library(tmp_path: Path) -> None:
    """Regression (issue 11, instant start): Typer, click, pydantic and rich were ~100 ms of a
    200-300 ms start (Typer 0.29 builds a pydantic adapter for every option value)."""
    proc, imported = scan_imports(tmp_path / "data", tmp_path, "-r", "pypi", "reqeusts")
    assert imported.isdisjoint(CLI_LIBRARIES), sorted(imported & set(CLI_LIBRARIES))
    assert '"target": "requests"' in proc.stdout


def test_the_indexes_are_frozen_before_the_collector_walks_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Regression (issue 11, instant start): the collector came back on right after the index was
    read and its first pass walked the ~200,000 new containers (PyPI 26 ms of the first answer)."""
    monkeypatch.setenv("TYPOSTREAM_DATA_DIR", str(tmp_path / "data"))
    for var in SCAN_ENV:
        monkeypatch.delenv(var, raising=False)
    out = io.StringIO()
    args = scanner.parse(["-r", "pypi", "reqeusts"])
    assert args is not None
    scanner.run(**args, stdout=lambda: out)  # writes the cache
    young: list[int] = []

    def watch(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            young.append(gc.get_count()[0])

    gc.collect()
    gc.callbacks.append(watch)
    try:
        assert scanner.run(**args, stdout=lambda: out) == 0  # reads it
    finally:
        gc.callbacks.remove(watch)
    assert '"target": "requests"' in out.getvalue()
    assert max(young, default=0) < 10_000, young  # no pass over a just-read index
    assert gc.get_freeze_count() > 100_000 and gc.isenabled()
