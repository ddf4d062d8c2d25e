"""Which format a file is (name, then content), registries, names and specs, unreadable files."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.agents.manifests.conftest import FIXTURES
from typostream.agents.domain.errors import ManifestError, PackageSpecError
from typostream.agents.domain.manifests import FORMATS, detect_format, parse_file, parse_spec

COPIES = {
    "npm-v3/package.json": "package-json",
    "npm-v3/package-lock.json": "package-lock",
    "npm-v1/npm-shrinkwrap.json": "package-lock",
    "yarn-v1/yarn.lock": "yarn-lock",
    "yarn-berry/yarn.lock": "yarn-lock",
    "pnpm-v9/pnpm-lock.yaml": "pnpm-lock",
    "pnpm-v5/pnpm-lock.yaml": "pnpm-lock",
    "pep621/pyproject.toml": "pyproject",
    "poetry/pyproject.toml": "pyproject",
    "poetry/poetry.lock": "poetry-lock",
    "uv/uv.lock": "uv-lock",
    "pipenv/Pipfile.lock": "pipfile-lock",
    "pip/requirements-base.txt": "requirements",
}


@pytest.mark.parametrize(("fixture", "fmt"), COPIES.items())
def test_every_format_is_recognized_by_its_name_and_by_its_content(
    fixture: str, fmt: str, tmp_path: Path
) -> None:
    path = FIXTURES / fixture
    assert detect_format(path, path.read_text(), None).id == fmt
    renamed = tmp_path / "renamed.data"
    renamed.write_text(path.read_text())
    assert detect_format(renamed, renamed.read_text(), None).id == fmt


def test_a_plain_name_list_takes_the_given_registry(tmp_path: Path) -> None:
    path = tmp_path / "names.txt"
    path.write_text("# npm names\n@types/react\nlodahs@4.17.21  # pinned\n\nua-parser-js@^0.7\n")
    fmt, found = parse_file(path, registry="npm")
    assert fmt.id == "names"
    assert [(e.registry, e.name, e.version, e.line) for e in found] == [
        ("npm", "@types/react", None, 2),
        ("npm", "lodahs", "4.17.21", 3),
        ("npm", "ua-parser-js", None, 5),
    ]
    with pytest.raises(ManifestError, match=r"list of names .*pass --registry"):
        parse_file(path, FORMATS["names"])


def test_registry_conflicts_and_unknown_content(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match=r"is a pypi manifest \(requirements\), not npm"):
        parse_file(FIXTURES / "pip" / "requirements-base.txt", registry="npm")
    path = tmp_path / "notes"
    path.write_text("This is prose, not a manifest.\n")
    with pytest.raises(ManifestError, match="cannot tell which manifest format this is; pass --format-in"):
        parse_file(path)
    assert parse_file(path, FORMATS["names"], registry="npm")[1][0].name == "This"


def test_a_forced_format_is_used(tmp_path: Path) -> None:
    path = tmp_path / "deps"
    path.write_text("pkg==1.0\n")
    fmt, [entry] = parse_file(path, FORMATS["requirements"])
    assert (fmt.id, entry.name, entry.version) == ("requirements", "pkg", "1.0")


def test_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match=r"cannot read .*missing\.txt"):
        parse_file(tmp_path / "missing.txt")
    binary = tmp_path / "requirements.txt"
    binary.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(ManifestError, match="not UTF-8"):
        parse_file(binary)


@pytest.mark.parametrize(
    ("spec", "registry", "expected"),
    [
        ("requests", "pypi", ("requests", None)),
        ("requests==2.31.0", "pypi", ("requests", "2.31.0")),
        ("requests[socks]===2.31.0", "pypi", ("requests", "2.31.0")),
        ("requests>=2", "pypi", ("requests", None)),
        ("requests@2.31.0", "pypi", ("requests", "2.31.0")),
        ("acme==1.0.0-SNAPSHOT", "pypi", ("acme", "1.0.0-SNAPSHOT")),
        ("lodash", "npm", ("lodash", None)),
        ("lodash@4.17.21", "npm", ("lodash", "4.17.21")),
        ("@types/node@20.11.30", "npm", ("@types/node", "20.11.30")),
        ("@types/node", "npm", ("@types/node", None)),
        ("lodash@^4", "npm", ("lodash", None)),
        ("lodash==4.17.21", "npm", ("lodash", "4.17.21")),
        ("rails@7.1.0", "rubygems", ("rails", "7.1.0")),
    ],
)
def test_parse_spec(spec: str, registry: str, expected: tuple[str, str | None]) -> None:
    assert parse_spec(spec, registry) == expected


@pytest.mark.parametrize(
    ("spec", "registry"),
    [("", "npm"), ("requests >=", "pypi"), ("x @ https://a/x.whl", "pypi"), ("==1.0", "npm")],
)
def test_bad_specs(spec: str, registry: str) -> None:
    with pytest.raises(PackageSpecError):
        parse_spec(spec, registry)
