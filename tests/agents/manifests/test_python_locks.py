"""poetry.lock, uv.lock and Pipfile.lock: locked versions, non-registry sources skipped, lines."""

from __future__ import annotations

import pytest

from tests.agents.manifests.conftest import FIXTURES, entries
from typostream.agents.domain.errors import ManifestError
from typostream.agents.domain.manifests import parse_file


def test_poetry_lock() -> None:
    assert entries(FIXTURES / "poetry" / "poetry.lock") == [
        ("acme-private", "2.0.0", 4),  # a legacy (private index) source is a registry
        ("certifi", "2024.2.2", 19),
        ("colourama", "0.1.6", 30),
        ("requests", "2.31.0", 68),
    ]  # git and directory sources skipped


def test_uv_lock() -> None:
    assert entries(FIXTURES / "uv" / "uv.lock") == [
        ("certifi", "2024.2.2", 26),
        ("ctx", "0.2.6", 35),
        ("requests", "2.31.0", 41),
    ]  # the editable project and the git source are not registry packages


def test_pipfile_lock() -> None:
    assert entries(FIXTURES / "pipenv" / "Pipfile.lock") == [
        ("certifi", "2024.2.2", 19),
        ("ctx", "0.2.6", 28),
        ("reqeusts", "2.0.0", 45),
    ]  # editable path and git entries skipped


@pytest.mark.parametrize(
    ("fixture", "message"),
    [
        ("poetry.lock", r"poetry\.lock: 'package' must be an array of tables"),
        ("uv.lock", r"uv\.lock:5: package 'requests' has no 'version'"),
        ("Pipfile.lock", r"Pipfile\.lock: not a Pipfile\.lock"),
    ],
)
def test_malformed(fixture: str, message: str) -> None:
    with pytest.raises(ManifestError, match=message):
        parse_file(FIXTURES / "malformed" / fixture)
