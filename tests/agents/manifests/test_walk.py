"""find_manifests: every manifest under a project, skipping installed packages, venvs, VCS, .gitignore."""

from __future__ import annotations

from pathlib import Path

import pytest

from typostream.agents.domain.errors import ManifestError
from typostream.agents.domain.manifests import find_manifests


def make(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def test_walk(tmp_path: Path) -> None:
    make(
        tmp_path,
        {
            "package.json": "{}",
            "yarn.lock": "# yarn lockfile v1\n",
            "README.md": "requests==1\n",
            "notes.txt": "requests==1\n",
            "services/api/requirements.txt": "flask\n",
            "services/api/requirements/dev.txt": "pytest\n",
            "services/api/pyproject.toml": "[project]\nname='x'\n",
            "services/api/uv.lock": "version = 1\n",
            "services/worker/poetry.lock": "",
            "services/worker/Pipfile.lock": "{}",
            "web/pnpm-lock.yaml": "lockfileVersion: '9.0'\n",
            "web/npm-shrinkwrap.json": "{}",
            "node_modules/lodahs/package.json": "{}",
            "web/node_modules/.pnpm/x/package.json": "{}",
            ".git/hooks/requirements.txt": "x\n",
            ".venv/lib/python3.11/site-packages/pkg/requirements.txt": "x\n",
            "env311/pyvenv.cfg": "home = /usr/bin\n",
            "env311/requirements.txt": "x\n",
            ".gitignore": "build/\n*.generated.json\n!keep/\n",
            "build/package.json": "{}",
            "dist/package.generated.json": "{}",
            "web/.gitignore": "fixtures/\n",
            "web/fixtures/package.json": "{}",
            "web/other/package.json": "{}",
        },
    )
    found = [(p.relative_to(tmp_path).as_posix(), fmt.id) for p, fmt in find_manifests(tmp_path)]
    assert found == [
        ("package.json", "package-json"),
        ("services/api/pyproject.toml", "pyproject"),
        ("services/api/requirements.txt", "requirements"),
        ("services/api/requirements/dev.txt", "requirements"),
        ("services/api/uv.lock", "uv-lock"),
        ("services/worker/Pipfile.lock", "pipfile-lock"),
        ("services/worker/poetry.lock", "poetry-lock"),
        ("web/npm-shrinkwrap.json", "package-lock"),
        ("web/other/package.json", "package-json"),
        ("web/pnpm-lock.yaml", "pnpm-lock"),
        ("yarn.lock", "yarn-lock"),
    ]


def test_a_deeper_gitignore_can_re_include(tmp_path: Path) -> None:
    make(
        tmp_path,
        {".gitignore": "*.lock\n", "a/.gitignore": "!yarn.lock\n", "a/yarn.lock": "", "b/yarn.lock": ""},
    )
    assert [p.relative_to(tmp_path).as_posix() for p, _ in find_manifests(tmp_path)] == ["a/yarn.lock"]


def test_not_a_directory(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match="no such directory"):
        find_manifests(tmp_path / "missing")
