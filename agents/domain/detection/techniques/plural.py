"""Plurals: a trailing ``s`` added to or dropped from a word of the target (``typing-extension``
for ``typing-extensions``, ``huggingface-hubs`` for ``huggingface-hub``, ``require-ports`` for
``requires-port``), separators aside."""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import ClassVar

from typostream.agents.domain.detection.index import CandidateIndex, Target, singular_key
from typostream.agents.domain.detection.names import tokens
from typostream.agents.domain.detection.techniques.base import Match, Query, Severity, Technique
from typostream.agents.domain.detection.tunables import (
    MIN_TYPO_LEN_WATCHLIST,
    PLURAL_MAX_RANK,
    PLURAL_MIN_LEN,
)

__all__ = ["Plural", "plural_change", "singular_forms"]

_NONE: Sequence[Target] = ()


def singular_forms(query: Query) -> str:
    """:func:`~typostream.agents.domain.detection.index.singular_key` of the query's words (its
    squashed form when it has no ``s`` to drop)."""
    return singular_key(query.words) if _has_final_s(query.key) else query.squashed


def singulars(query: Query, index: CandidateIndex) -> Sequence[Target]:
    """Probe: targets whose words are the query's with trailing ``s`` added or dropped."""
    if query.scope is not None:
        return _NONE
    key = query.key
    return index.by_singular.get(singular_key(query.words) if _has_final_s(key) else query.squashed, _NONE)


def _has_final_s(key: str) -> bool:
    """Whether a word of ``key`` ends in ``s`` (else its singular form is its squashed form)."""
    return key[-1:] == "s" or "s-" in key or "s_" in key or "s." in key


def plural_change(squat: list[str], target: list[str]) -> str | None:
    """Describe how the words of ``squat`` add or drop trailing ``s`` of ``target``'s, or None."""
    squat_s = "".join(squat)
    target_s = "".join(target)
    if squat_s == target_s or singular_key(squat) != singular_key(target):
        return None
    added = len(squat_s) > len(target_s)
    if len(squat_s) == len(target_s):
        return "moves a trailing 's' between words"
    return "adds a trailing 's'" if added else "drops a trailing 's'"


class Plural(Technique):
    id = "typosquat.plural"
    description = "A trailing 's' is added to or dropped from a word of a protected name."
    severity: ClassVar[Severity] = "medium"
    popular_max_rank: ClassVar[int | None] = PLURAL_MAX_RANK
    confidence = 0.7
    min_len = PLURAL_MIN_LEN
    min_len_top = PLURAL_MIN_LEN
    min_len_watchlist = MIN_TYPO_LEN_WATCHLIST + 1
    probes = (singulars,)

    def match(self, query: Query, target: Target) -> Match | None:
        if query.scope is not None or target.forms.scope is not None:
            return None
        words = _target_words(target.forms.key)
        if singular_forms(query) != _target_singular(target.forms.key):
            return None
        detail = plural_change(query.words, words)
        if detail is None:
            return None
        return Match(f"{detail} of '{target.forms.key}'", self.confidence)


@lru_cache(maxsize=1 << 16)
def _target_words(key: str) -> list[str]:
    return tokens(key)


@lru_cache(maxsize=1 << 16)
def _target_singular(key: str) -> str:
    return singular_key(_target_words(key))
