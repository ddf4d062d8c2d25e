"""Finding every manifest and lockfile under a project directory.

Skipped: the directories in :data:`SKIP_DIRS` (installed packages, VCS metadata, caches),
virtualenvs (any directory holding ``pyvenv.cfg``), symlinked directories, and whatever the
project's ``.gitignore`` files exclude (``pathspec``'s git semantics; a deeper ``.gitignore``
overrides a shallower one, as in git). Files are recognized by name only
(:meth:`ManifestFormat.matches_name`): a walk never guesses from content.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from typostream.agents.domain.errors import ManifestError
from typostream.agents.domain.manifests.base import ManifestFormat

if TYPE_CHECKING:  # imported by the first .gitignore: `scan NAME...` walks nothing
    import pathspec

__all__ = ["SKIP_DIRS", "find_manifests"]

SKIP_DIRS = frozenset(
    {
        "node_modules", "bower_components", ".pnpm-store", ".yarn",
        ".git", ".hg", ".svn",
        ".venv", "venv", ".tox", ".nox", "__pypackages__", "site-packages",
        "__pycache__", ".mypy_cache", ".pytest_cache", ".ruff_cache",
    }
)  # fmt: skip


class _Ignores:
    """The ``.gitignore`` specs met on the way down, each with the directory it applies to."""

    def __init__(self) -> None:
        self.specs: list[tuple[Path, pathspec.GitIgnoreSpec]] = []

    def load(self, directory: Path) -> None:
        file = directory / ".gitignore"
        if file.is_file():
            try:
                lines = file.read_text(encoding="utf-8", errors="replace").splitlines()
            except OSError as exc:
                raise ManifestError(f"cannot read {file}: {exc.strerror or exc}") from exc
            import pathspec

            self.specs.append((directory, pathspec.GitIgnoreSpec.from_lines(lines)))

    def ignored(self, path: Path, is_dir: bool) -> bool:
        decision = False
        for base, spec in self.specs:  # shallow to deep: the deepest decisive spec wins
            try:
                rel = path.relative_to(base).as_posix()
            except ValueError:
                continue
            result = spec.check_file(rel + "/" if is_dir else rel)
            if result.include is not None:
                decision = result.include
        return decision


def find_manifests(root: Path) -> list[tuple[Path, ManifestFormat]]:
    """Every manifest/lockfile under ``root`` with its format, sorted by path."""
    from typostream.agents.domain.manifests.loader import format_by_name

    if not root.is_dir():
        raise ManifestError(f"no such directory: {root}")
    ignores = _Ignores()
    found: list[tuple[Path, ManifestFormat]] = []

    def fail(exc: OSError) -> None:
        raise ManifestError(f"cannot read {exc.filename}: {exc.strerror or exc}") from exc

    for dirpath, dirnames, filenames in os.walk(root, onerror=fail):
        directory = Path(dirpath)
        ignores.load(directory)
        keep = []
        for name in sorted(dirnames):
            sub = directory / name
            if name in SKIP_DIRS or sub.is_symlink() or (sub / "pyvenv.cfg").exists():
                continue
            if not ignores.ignored(sub, is_dir=True):
                keep.append(name)
        dirnames[:] = keep
        for name in sorted(filenames):
            file = directory / name
            fmt = format_by_name(file)
            if fmt is not None and not ignores.ignored(file, is_dir=False):
                found.append((file, fmt))
    return sorted(found, key=lambda item: item[0].as_posix())
