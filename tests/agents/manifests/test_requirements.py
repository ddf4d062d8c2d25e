"""pip requirements files: continuations, hashes, extras, markers, includes, options, recognition."""

from __future__ import annotations

from pathlib import Path, PurePath

import pytest

from tests.agents.manifests.conftest import FIXTURES, entries
from typostream.agents.domain.errors import ManifestError
from typostream.agents.domain.manifests import FORMATS, parse_file
from typostream.agents.domain.manifests.requirements import logical_lines

PIP = FIXTURES / "pip"


def test_pip_compile_file_with_an_include() -> None:
    assert entries(PIP / "requirements.txt") == [
        ("packaging", "24.0", 2),  # from -r requirements-base.txt, with its own line
        ("colourama", None, 3),
        ("certifi", "2024.2.2", 11),  # continuation lines and --hash options
        ("requests", "2.31.0", 15),  # extras and a marker
        ("ctx", "0.2.6", 17),
        ("reqeusts", None, 18),
        ("urllib3", None, 19),
        ("Django", None, 20),  # ==4.2.* is not one version
        ("pywin32", "306", 21),  # reported whatever the platform
    ]  # -c, -e, --index-url, VCS, wheel paths and direct references name no registry package


def test_included_entries_keep_their_file() -> None:
    _, found = parse_file(PIP / "requirements.txt")
    assert {Path(e.file).name for e in found[:2]} == {"requirements-base.txt"}
    assert {Path(e.file).name for e in found[2:]} == {"requirements.txt"}


def test_any_name_is_recognized_by_content() -> None:
    fmt, found = parse_file(PIP / "pins.conf")
    assert fmt.id == "requirements"
    assert [(e.name, e.version, e.line) for e in found] == [("ctx", "0.2.6", 2), ("jinja2", None, 3)]


@pytest.mark.parametrize(
    ("name", "recognized"),
    [
        ("requirements.txt", True),
        ("dev-requirements.txt", True),
        ("requirements-dev.in", True),
        ("test.requirements.txt", True),
        ("requirements/base.txt", True),
        ("notes.txt", False),
        ("requirements.md", False),
    ],
)
def test_names_a_walk_recognizes(name: str, recognized: bool) -> None:
    assert FORMATS["requirements"].matches_name(PurePath(name)) is recognized


def test_logical_lines() -> None:
    text = "a==1 \\\n  --hash=sha256:x # c\n# only a comment\nb#not-a-comment\n\nc \\\n"
    assert logical_lines(text) == [(1, "a==1   --hash=sha256:x"), (4, "b#not-a-comment"), (6, "c")]


def test_requirement_options_forms(tmp_path: Path) -> None:
    (tmp_path / "base.txt").write_text("six==1.16.0\n")
    (tmp_path / "requirements.txt").write_text(
        "--requirement=base.txt\nrequests===2.31.0 --config-settings x=y\nidna ; python_version<'3'\n"
    )
    assert entries(tmp_path / "requirements.txt") == [
        ("six", "1.16.0", 1),
        ("requests", "2.31.0", 2),
        ("idna", None, 3),
    ]


@pytest.mark.parametrize(
    ("fixture", "message"),
    [
        ("requirements.txt", r"requirements\.txt:2: not a requirement .*flask >="),
        ("requirements-missing.txt", r"requirements-missing\.txt:1: -r missing\.txt: cannot read"),
        ("cycle/requirements-a.txt", r"b\.txt:1: -r requirements-a\.txt includes itself \(cycle\)"),
    ],
)
def test_malformed(fixture: str, message: str) -> None:
    with pytest.raises(ManifestError, match=message):
        parse_file(FIXTURES / "malformed" / fixture)


def test_a_remote_include_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "requirements.txt").write_text("-r https://example.com/requirements.txt\n")
    with pytest.raises(ManifestError, match="is a URL"):
        parse_file(tmp_path / "requirements.txt")


def test_a_pin_that_is_not_pep_440_is_still_read(tmp_path: Path) -> None:
    """pip refuses ``==1.0.0-SNAPSHOT``; a scan reports the pin instead of failing on the whole file."""
    path = tmp_path / "requirements.txt"
    path.write_text("acme-core==1.0.0-SNAPSHOT\nrequests==2.31.0\n")
    assert entries(path) == [("acme-core", "1.0.0-SNAPSHOT", 1), ("requests", "2.31.0", 2)]
    path.write_text("acme-core==1.0 garbage\n")
    with pytest.raises(ManifestError, match="not a requirement"):
        parse_file(path)
