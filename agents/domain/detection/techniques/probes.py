"""The index lookups techniques share (:data:`~.base.Probe`): each returns candidate targets.

A technique lists in ``probes`` the lookups that find what it can match; a lookup only one
technique needs lives in that technique's module (combosquat's :func:`~.combosquat.affixed_cores`).
Each probe costs a call on every scan, so the shared ones are few and broad.
"""

from __future__ import annotations

from collections.abc import Sequence

from typostream.agents.domain.detection.index import CandidateIndex, Target
from typostream.agents.domain.detection.techniques.base import Query

__all__ = ["look_alikes", "neighbours"]

_NONE: Sequence[Target] = ()


def look_alikes(query: Query, index: CandidateIndex) -> Sequence[Target]:
    """Targets made of the same letters or words: the name's skeleton (look-alike characters,
    separators, a dropped npm scope), the same name under a scope within one edit
    (``@angullar/core``), the same words in another order (``parser-body``)."""
    found = index.by_skeleton.get(query.skeleton, _NONE)
    if query.scope is not None:
        return [*found, *index.other_scopes(query.scope, query.bare)]
    words = query.words
    if len(words) < 2:
        return found
    reordered = index.by_words.get(" ".join(sorted(words)))
    return found if reordered is None else [*found, *reordered]


def neighbours(query: Query, index: CandidateIndex) -> Sequence[Target]:
    """Targets within one edit of the name's folded form, and watchlisted targets sharing a
    one-deletion variant with it (up to two edits, for the watchlist's multi-edit technique)."""
    folded = query.folded
    found = index.within_one_edit(folded)
    if index.watched_edit:
        found.extend(index.within_one_edit(folded, watched_only=True))
    return found
