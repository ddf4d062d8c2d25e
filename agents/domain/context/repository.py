"""Repository mismatch: no source repository at all, or the target's repository (starjacking).

A squat that points its repository or homepage at the target's project borrows its stars and
trust (the registry pages show them); without the target's metadata, a repository named after the
target rather than after the package is the same tell. A package with neither repository nor
homepage gives reviewers nothing to look at: a weak signal alone.
"""

from __future__ import annotations

import re
from typing import Final

from typostream.agents.domain.context.base import ContextDetector, PublishContext, Signal
from typostream.agents.domain.context.tunables import (
    MISSING_REPOSITORY_WEIGHT,
    NAMES_TARGET_WEIGHT,
    TARGET_REPOSITORY_WEIGHT,
)
from typostream.agents.domain.detection.names import normalize, split_scope
from typostream.agents.domain.metadata import PackageMetadata

__all__ = ["RepositoryMismatch", "repository_slug", "source_urls"]

_SHORTHAND: Final = re.compile(r"^(github|gitlab|bitbucket):(.+)$")
_HOSTS: Final = {"github": "github.com", "gitlab": "gitlab.com", "bitbucket": "bitbucket.org"}
_SOURCE_KEYS: Final = ("source", "source code", "repository", "code", "homepage", "home")


def repository_slug(url: str | None) -> str | None:
    """``host/owner/repo`` of a repository or homepage URL (npm's ``git+ssh://git@github.com/o/r.git``,
    ``github:o/r``, ``o/r``, ``https://github.com/o/r#readme`` all give ``github.com/o/r``); None when
    it names no repository."""
    if not url:
        return None
    text = url.strip()
    shorthand = _SHORTHAND.match(text)
    if shorthand:
        text = f"{_HOSTS[shorthand.group(1)]}/{shorthand.group(2)}"
    elif re.fullmatch(r"[\w.-]+/[\w.-]+", text):
        text = f"github.com/{text}"  # npm's "owner/repo" shorthand
    text = re.sub(r"^[a-z+]+://", "", text.lower())
    text = re.sub(r"^[^@/]+@", "", text)  # git@github.com:owner/repo
    text = text.split("#", 1)[0].split("?", 1)[0].replace(":", "/", 1)
    parts = [p for p in text.split("/") if p]
    if len(parts) < 3:
        return None
    host = parts[0].removeprefix("www.")
    repo = parts[2].removesuffix(".git")
    return f"{host}/{parts[1]}/{repo}" if repo else None


def source_urls(metadata: PackageMetadata) -> list[str]:
    """The repository and homepage URLs metadata names (PyPI project URLs included)."""
    urls = [metadata.repository, metadata.homepage]
    urls += [v for k, v in metadata.project_urls.items() if k.lower() in _SOURCE_KEYS]
    return [u for u in urls if u]


def _bare(name: str, registry: str) -> str:
    return split_scope(normalize(name, registry))[1]


class RepositoryMismatch(ContextDetector):
    id = "repository"
    description = "No repository or homepage, or the target's repository (starjacking)."

    def detect(self, context: PublishContext) -> list[Signal]:
        metadata = context.metadata
        if metadata is None:
            return []
        urls = source_urls(metadata)
        slugs = {s: u for u in urls for s in (repository_slug(u),) if s}
        target = context.target_metadata
        if target is not None:
            theirs = {s for u in source_urls(target) for s in (repository_slug(u),) if s}
            shared = sorted(set(slugs) & theirs)
            if shared:
                return [
                    self.signal(
                        "target_repository",
                        f"repository/homepage {shared[0]} is {target.name}'s",
                        TARGET_REPOSITORY_WEIGHT,
                    )
                ]
        if context.target and slugs:
            mine, theirs_bare = _bare(context.name, context.registry), _bare(context.target, context.registry)
            for slug in slugs:
                repo = normalize(slug.rsplit("/", 1)[1], context.registry)
                if repo == theirs_bare and repo != mine:
                    return [
                        self.signal(
                            "names_target",
                            f"repository/homepage {slug} is named after {context.target}, not {context.name}",
                            NAMES_TARGET_WEIGHT,
                        )
                    ]
        if not urls:
            return [self.signal("missing", "no repository and no homepage", MISSING_REPOSITORY_WEIGHT)]
        return []
