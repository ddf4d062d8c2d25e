"""The repository is self-contained: no tracked text file refers to a path outside it.

Rule, applied line by line to every text file ``git ls-files`` lists:

* **Absolute paths** under a machine's own folders (``/work``, ``/root``, ``/home``, ``/Users``,
  ``/tmp``, ``/opt``, ``/mnt``) are flagged. A path inside a URL (``https://host/home/...``) is not
  a path on this machine and is not matched.
* **Relative paths that climb out** (a ``../`` path that leaves the repository when resolved from
  the repository root or from the file's own folder) are flagged: the docs run commands from the
  root, so ``../popular`` is out even where a link from ``data/sample`` would land inside. Write
  paths in the repository from its root (``data/popular/npm.tsv.gz``).
* The exceptions are listed in ``ALLOWED``, each with its reason; the only climb allowed is
  ``../shared/eval``, the dev-set eval folder that the benchmarks take as a documented default.

This module is not scanned itself: it spells the patterns and a planted example out on purpose.
"""

from __future__ import annotations

import posixpath
import re
import subprocess
from dataclasses import dataclass
from fnmatch import fnmatch
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SELF = Path(__file__).resolve().relative_to(REPO).as_posix()

MACHINE_ROOTS = ("work", "root", "home", "Users", "tmp", "opt", "mnt")
# Not after a word character, dot, slash, colon, tilde or dash: so not the middle of a URL or path.
ABSOLUTE = re.compile(r"(?<![\w.~/:-])/(?:" + "|".join(MACHINE_ROOTS) + r")(?:/[^\s\"'`()\[\]{}<>,;|]*|\b)")
CLIMB = re.compile(r"(?<![\w.~/:-])(?:[\w.-]+/)*\.\./[^\s\"'`()\[\]<>,;|]*")


@dataclass(frozen=True)
class Allowed:
    files: str  # fnmatch pattern on the repo-relative path ("*" also matches "/")
    reference: str  # regex the whole flagged reference must match
    reason: str


ALLOWED = (
    Allowed(
        "benchmarks/*",
        r"\.\./shared/eval/?",
        "the dev-set eval folder next to the repository, the benchmarks' documented default",
    ),
    Allowed("README.md", r"\.\./shared/eval/?", "documents that same benchmark default"),
    Allowed("deploy/*", r"/opt/kafka/bin/[\w.-]+", "inside the apache/kafka container image"),
    Allowed(
        "tests/agents/sinks/test_clickhouse.py",
        r"/tmp/(?:x|unused)",
        "placeholder paths handed to DSN parsers, never opened",
    ),
    Allowed(
        "tests/agents/enrichment/test_enrichment_patterns.py",
        r"/tmp/x",
        "text of a sample install script fed to the pattern matcher",
    ),
    Allowed("tests/agents/test_sql_guard.py", r"/tmp/x", "INTO OUTFILE targets the guard must refuse"),
    Allowed(
        "tests/cli/test_guard.py",
        r"/tmp/t|\.\./(?:x\.tgz|x|c|lib)",
        "npm argument strings parsed, never opened",
    ),
    Allowed(
        "agents/domain/resolution.py",
        r"\.\./(?:x)?",
        "npm local-path prefixes recognised in install arguments (npm-package-arg's rules)",
    ),
)


def _climbs_out(reference: str, folder: str) -> bool:
    for base in ("", folder):
        resolved = posixpath.normpath(posixpath.join(base, reference))
        if resolved == ".." or resolved.startswith("../"):
            return True
    return False


def foreign_references(line: str, relpath: str = "") -> list[str]:
    """The references in ``line`` (of the file at repo-relative ``relpath``) to paths outside the repo."""
    found = [m.group(0) for m in ABSOLUTE.finditer(line)]
    folder = posixpath.dirname(relpath)
    found += [m.group(0) for m in CLIMB.finditer(line) if _climbs_out(m.group(0), folder)]
    return [
        ref
        for ref in found
        if not any(fnmatch(relpath, a.files) and re.fullmatch(a.reference, ref) for a in ALLOWED)
    ]


def _tracked_files() -> list[str]:
    try:
        out = subprocess.run(
            ["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True, timeout=30
        ).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        pytest.skip(f"git ls-files unavailable: {exc}")
    return [p for p in out.decode("utf-8", "surrogateescape").split("\0") if p]


def test_no_tracked_file_refers_outside_the_repository() -> None:
    problems = []
    for relpath in _tracked_files():
        path = REPO / relpath
        if relpath == SELF or not path.is_file():
            continue
        data = path.read_bytes()
        if b"\0" in data:
            continue  # binary (gzip data files and the like)
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            continue
        for lineno, line in enumerate(text.splitlines(), 1):
            problems += [f"{relpath}:{lineno}: {ref}" for ref in foreign_references(line, relpath)]
    assert not problems, "paths outside the repository:\n" + "\n".join(problems)


def test_detector_flags_a_planted_path() -> None:
    planted = "/wo" + "rk/.lib" + "rary/x"  # spelt in pieces so this file doesn't name the path itself
    assert foreign_references(f'NPM = Path("{planted}")', "benchmarks/speed.py") == [planted]
    assert foreign_references("default: /home/me/lists and ~/x", "README.md") == ["/home/me/lists"]
    assert foreign_references("see ../shared/data", "benchmarks/README.md") == ["../shared/data"]
    assert foreign_references("reads ../shared/eval", "agents/x.py") == ["../shared/eval"]
    assert foreign_references("kafka at /opt/kafka/bin/kafka-topics.sh", "README.md")
    # not flagged
    assert foreign_references('NAMES = "data/names/npm.tsv.gz"', "benchmarks/speed.py") == []
    assert foreign_references("eval dir defaults to ../shared/eval", "benchmarks/README.md") == []
    assert foreign_references("and so on.../x, range 1..3", "README.md") == []
    assert foreign_references("https://example.com/home/tmp/x and /var/lib/app", "README.md") == []
    assert foreign_references("/opt/kafka/bin/kafka-topics.sh --create", "deploy/README.md") == []
