"""package.json, package-lock.json v1-v3 / npm-shrinkwrap.json, yarn.lock v1 and berry, pnpm-lock.yaml."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.agents.manifests.conftest import FIXTURES, entries
from typostream.agents.domain.errors import ManifestError
from typostream.agents.domain.manifests import parse_file
from typostream.agents.domain.manifests.base import npm_exact_version, split_npm_spec
from typostream.agents.domain.manifests.pnpm_lock import parse_dep_path


def test_package_json() -> None:
    assert entries(FIXTURES / "npm-v3" / "package.json") == [
        ("express", None, 14),
        ("ua-parser-js", "0.7.29", 15),
        ("lodahs", None, 16),
        ("crossenv", "6.1.1", 17),  # "left-pad": "npm:crossenv@6.1.1" installs crossenv
        ("react", None, 23),  # a tag is no version
        ("@types/node", "20.11.30", 26),
        ("typescript", None, 27),
        ("react-dom", None, 30),
        ("fsevents", "2.3.3", 33),
    ]  # file:, github:, user/repo, URL and workspace: specs are not registry packages


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("1.2.3", ("x", "1.2.3")),
        ("=1.2.3", ("x", "1.2.3")),
        ("v1.2.3-rc.1", ("x", "1.2.3-rc.1")),
        ("^1.2.3", ("x", None)),
        ("1.x", ("x", None)),
        ("latest", ("x", None)),
        ("npm:@s/y@2.0.0", ("@s/y", "2.0.0")),
        ("npm:y", ("y", None)),
        ("file:../y", None),
        ("link:y", None),
        ("git+ssh://git@github.com/a/b.git", None),
        ("a/b#v1", None),
        ("https://example.com/y.tgz", None),
        ("workspace:^", None),
    ],
)
def test_split_npm_spec(spec: str, expected: tuple[str, str | None] | None) -> None:
    assert split_npm_spec("x", spec) == expected


def test_package_lock_v3() -> None:
    assert entries(FIXTURES / "npm-v3" / "package-lock.json") == [
        ("@types/node", "20.11.30", 30),
        ("express", "4.18.2", 39),
        ("debug", "2.6.9", 50),  # node_modules/express/node_modules/debug
        ("crossenv", "6.1.1", 55),  # an alias: the entry's "name"
        ("ua-parser-js", "0.7.29", 65),
        ("undici-types", "5.26.5", 79),
    ]  # the root, links and workspace folders are local


def test_package_lock_v2_reads_packages_once() -> None:
    assert entries(FIXTURES / "npm-v2" / "package-lock.json") == [
        ("node-ipc", "10.1.2", 15),
        ("rc", "1.2.8", 20),
    ]


def test_shrinkwrap_v1_nested_in_document_order() -> None:
    assert entries(FIXTURES / "npm-v1" / "npm-shrinkwrap.json") == [
        ("event-stream", "3.3.6", 7),
        ("flatmap-stream", "0.1.1", 16),  # nested under event-stream, first in the text
        ("duplexer", "0.1.2", 23),
        ("flatmap-stream", "0.1.0", 28),
        ("crossenv", "6.1.1", 37),  # "version": "npm:crossenv@6.1.1"
    ]  # the git dependency is skipped


def test_yarn_v1() -> None:
    assert entries(FIXTURES / "yarn-v1" / "yarn.lock") == [
        ("@babel/code-frame", "7.23.5", 5),
        ("coa", "2.0.3", 13),
        ("crossenv", "6.1.1", 18),  # left-pad@npm:crossenv@^6.1.0
        ("lodahs", "4.17.21", 23),
        ("version", "1.0.2", 36),  # a package named "version"
    ]  # GitHub shorthand and git entries skipped


def test_yarn_berry() -> None:
    assert entries(FIXTURES / "yarn-berry" / "yarn.lock") == [
        ("@babel/code-frame", "7.23.5", 8),
        ("rc", "1.2.9", 27),
        ("resolve", "1.22.8", 42),
        ("semver", "1.10.0", 49),  # YAML scalars stay strings: not the float 1.1
    ]  # workspace: and patch: resolutions are not registry packages


def test_pnpm_v5_v6_v9() -> None:
    assert entries(FIXTURES / "pnpm-v5" / "pnpm-lock.yaml") == [
        ("@babel/core", "7.23.9", 19),
        ("node-ipc", "10.1.2", 24),
        ("react-dom", "18.2.0", 29),  # /react-dom/18.2.0_react@18.2.0
        ("react", "18.2.0", 37),
    ]
    assert entries(FIXTURES / "pnpm-v6" / "pnpm-lock.yaml") == [
        ("lodahs", "4.17.21", 23),
        ("react-dom", "18.2.0", 27),  # /react-dom@18.2.0(react@18.2.0)
        ("react", "18.2.0", 35),
        ("ua-parser-js", "1.0.0", 40),
    ]
    assert entries(FIXTURES / "pnpm-v9" / "pnpm-lock.yaml") == [
        ("@types/react", "18.2.79", 27),
        ("coa", "2.1.1", 30),
        ("react-dom", "18.2.0", 37),
        ("react", "18.2.0", 42),
    ]  # git, tarball and directory packages skipped


@pytest.mark.parametrize(
    ("key", "v5", "expected"),
    [
        ("/@babel/core/7.23.9", True, ("@babel/core", "7.23.9")),
        ("/react-dom/18.2.0_react@18.2.0", True, ("react-dom", "18.2.0")),
        ("/@s/a@1.0.0(b@2.0.0)(c@3.0.0)", False, ("@s/a", "1.0.0")),
        ("a@1.0.0", False, ("a", "1.0.0")),
        ("github.com/a/b/0123abc", False, None),
        ("link:../x", False, None),
    ],
)
def test_pnpm_dep_paths(key: str, v5: bool, expected: tuple[str, str] | None) -> None:
    assert parse_dep_path(key, v5) == expected


@pytest.mark.parametrize(
    ("fixture", "message"),
    [
        ("package.json", r"package\.json: not valid JSON: trailing comma"),
        ("package-lock.json", r"package-lock\.json: unsupported lockfileVersion 7"),
        ("yarn.lock", r"yarn\.lock:5: not a yarn\.lock entry header"),
        ("pnpm-lock.yaml", r"pnpm-lock\.yaml: not valid YAML"),
    ],
)
def test_malformed(fixture: str, message: str) -> None:
    with pytest.raises(ManifestError, match=message):
        parse_file(FIXTURES / "malformed" / fixture)


def test_deeply_nested_package_json_is_an_error_not_a_recursion_crash(tmp_path: Path) -> None:
    """Issue 9: a deeply nested package.json printed a RecursionError traceback."""
    path = tmp_path / "package.json"
    path.write_text('{"dependencies":' * 100_000 + "1" + "}" * 100_000)
    with pytest.raises(ManifestError, match=r"package\.json: not valid JSON: depth limit exceeded"):
        parse_file(path)


def test_wrong_shapes(tmp_path: Path) -> None:
    path = tmp_path / "package.json"
    for doc, message in (
        ([1], "must be a JSON object"),
        ({"dependencies": ["a"]}, r"package\.json:1: 'dependencies' must be an object"),
        ({"dependencies": {"a": 1}}, r"package\.json:1: dependencies\.a: the version must be a string"),
    ):
        path.write_text(json.dumps(doc))
        with pytest.raises(ManifestError, match=message):
            parse_file(path)


def test_yaml_aliases_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "pnpm-lock.yaml"
    path.write_text("lockfileVersion: '9.0'\nx: &a [1, 2]\npackages:\n  a@1.0.0: *a\n")
    with pytest.raises(ManifestError, match="aliases are not expected"):
        parse_file(path)


@pytest.mark.parametrize(
    ("spec", "exact"), [("1.0.0", "1.0.0"), (" =v2.0.0 ", "2.0.0"), ("~1.0.0", None), ("1.0", None)]
)
def test_npm_exact_version(spec: str, exact: str | None) -> None:
    assert npm_exact_version(spec) == exact
