"""pyproject.toml: PEP 621, PEP 735, build requirements and Poetry tables."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.agents.manifests.conftest import FIXTURES, entries
from typostream.agents.domain.errors import ManifestError
from typostream.agents.domain.manifests import parse_file
from typostream.agents.domain.manifests.pyproject import poetry_exact_version


def test_pep_621_and_735() -> None:
    assert entries(FIXTURES / "pep621" / "pyproject.toml") == [
        ("setuptools", None, 2),
        ("wheel", None, 2),
        ("requests", None, 11),
        ("ctx", "0.2.6", 12),
        ("jeIlyfish", None, 13),
        ("pydantic", None, 14),
        ("pytest", None, 18),
        ("reqeusts", "2.0.0", 18),
        ("ruff", "0.4.1", 24),  # {include-group = "lint"} is lint's own entries
        ("mypy", None, 25),
    ]


def test_poetry() -> None:
    assert entries(FIXTURES / "poetry" / "pyproject.toml") == [
        ("poetry-core", None, 29),
        ("requests", None, 9),
        ("colourama", "0.1.6", 10),  # a bare version is exact in Poetry
        ("jinja2", "3.1.3", 11),
        ("numpy", None, 14),  # two constraints disagree: no single version
        ("pytest", None, 20),
        ("reqeusts", None, 21),
    ]  # python, path and git dependencies are not registry packages


@pytest.mark.parametrize(
    ("constraint", "exact"),
    [("1.2.3", "1.2.3"), ("==1.2.3", "1.2.3"), ("^1.2.3", None), ("~1.2", None), ("*", None), (">=1", None)],
)
def test_poetry_exact_version(constraint: str, exact: str | None) -> None:
    assert poetry_exact_version(constraint) == exact


def test_malformed_toml_names_the_file_and_the_problem() -> None:
    with pytest.raises(ManifestError, match=r"pyproject\.toml: not valid TOML: .*line 3"):
        parse_file(FIXTURES / "malformed" / "pyproject.toml")


def test_bad_values(tmp_path: Path) -> None:
    path = tmp_path / "pyproject.toml"
    path.write_text('[project]\nname = "x"\ndependencies = "requests"\n')
    with pytest.raises(ManifestError, match=r"project\.dependencies must be a list"):
        parse_file(path)
    path.write_text('[project]\nname = "x"\ndependencies = [\n  "requests >=",\n]\n')
    with pytest.raises(ManifestError, match=r"pyproject\.toml:4: project\.dependencies: not a requirement"):
        parse_file(path)
