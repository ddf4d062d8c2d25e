"""The index lookups techniques share (:data:`~.base.Probe`): each returns the candidate targets.

A technique lists the probes that find what it can match in its ``probes``; a probe only one
technique needs lives in that technique's module (combosquat's :func:`~.combosquat.affixed_cores`).
"""

from __future__ import annotations

from collections.abc import Sequence

from typostream.agents.domain.detection.index import CandidateIndex, Target
from typostream.agents.domain.detection.techniques.base import Query

__all__ = ["one_edit", "other_scopes", "same_skeleton", "same_words", "watched_neighbours"]

_NONE: Sequence[Target] = ()


def same_skeleton(query: Query, index: CandidateIndex) -> Sequence[Target]:
    """Targets with the query's skeleton: look-alikes, separator changes, a dropped npm scope."""
    return index.by_skeleton.get(query.forms.skeleton, _NONE)


def other_scopes(query: Query, index: CandidateIndex) -> Sequence[Target]:
    """For a scoped name: the same name under another scope within one edit (``@angullar/core``)."""
    forms = query.forms
    if forms.scope is None:
        return _NONE
    return index.other_scopes(forms.scope, forms.bare)


def one_edit(query: Query, index: CandidateIndex) -> Sequence[Target]:
    """Targets whose folded form is within one edit (three dict probes rule out most names)."""
    return index.within_one_edit(query.forms.folded)


def watched_neighbours(query: Query, index: CandidateIndex) -> Sequence[Target]:
    """Watchlisted targets one deletion from the query or from which it is one (up to two edits)."""
    if not index.watched_edit:
        return _NONE
    return index.within_one_edit(query.forms.folded, watched_only=True)


def same_words(query: Query, index: CandidateIndex) -> Sequence[Target]:
    """Multi-word targets with the query's words, in any order."""
    words = query.words
    if len(words) < 2:
        return _NONE
    return index.by_words.get(" ".join(sorted(words)), _NONE)
