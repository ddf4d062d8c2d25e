"""Substitution: one character replaced (``reqyest`` for ``request``).

Against popular names a replacement is flagged when it is a typo or a look-alike: a neighbouring
key (QWERTY, or the same key on QWERTZ/AZERTY: ``jquerz``), a letter that looks like the target's
(``q``/``g``, ``u``/``v``), any letter on the very top names (``requesks``), and any letter or
digit in code-like names, those with a digit (``jr-sha3``). Digits replaced by digits are versions
(``cuda11``/``cuda12``), not typos. Watchlisted names take any replacement.
"""

from __future__ import annotations

from typing import ClassVar

from typostream.agents.domain.detection.index import Target
from typostream.agents.domain.detection.techniques.base import Match, Query, Severity, Technique, string_pairs
from typostream.agents.domain.detection.techniques.probes import neighbours
from typostream.agents.domain.detection.tunables import (
    CODE_NAME_MAX_RANK,
    KEY_NEIGHBOURS,
    LOOKALIKE_LETTERS,
    LOOKALIKE_MIN_LEN,
    MIN_TYPO_LEN,
    MIN_TYPO_LEN_WATCHLIST,
    NON_ADJACENT_MAX_RANK,
    NON_ADJACENT_TOP_MIN_LEN,
    SHORT_SUBSTITUTION_LEN,
    SHORT_SUBSTITUTION_MAX_RANK,
    WEAK_SIGNAL_MAX_RANK,
)

__all__ = ["Substitution", "keyboard_adjacent", "looks_alike", "substituted_index"]

ADJACENT_CONFIDENCE = 0.78
LOOKALIKE_CONFIDENCE = 0.74
OTHER_CONFIDENCE = 0.6


def substituted_index(squat: str, target: str) -> int | None:
    """Index of the single differing character of two equal-length names, or None."""
    if len(squat) != len(target) or squat == target:
        return None
    i = 0
    while squat[i] == target[i]:
        i += 1
    return i if squat[i + 1 :] == target[i + 1 :] else None


def keyboard_adjacent(a: str, b: str) -> bool:
    """True when ``b`` is next to ``a`` on a QWERTY keyboard, or on ``a``'s key on QWERTZ/AZERTY."""
    return b in KEY_NEIGHBOURS.get(a, ())


def looks_alike(a: str, b: str) -> bool:
    """True for two letters that look alike (``q``/``g``) though neither key nor confusable folds them."""
    return frozenset((a, b)) in LOOKALIKE_LETTERS


class Substitution(Technique):
    id = "typosquat.substitution"
    description = (
        "One character of a protected name is replaced: a neighbouring key (QWERTY, QWERTZ, AZERTY), "
        "a look-alike letter, or any character on the most popular and on code-like names (js-sha3)."
    )
    severity: ClassVar[Severity] = "medium"
    popular_max_rank: ClassVar[int | None] = WEAK_SIGNAL_MAX_RANK
    confidence = ADJACENT_CONFIDENCE
    min_len = MIN_TYPO_LEN
    min_len_top = SHORT_SUBSTITUTION_LEN
    min_len_watchlist = MIN_TYPO_LEN_WATCHLIST
    length_deltas = frozenset({0})
    probes = (neighbours,)

    def match(self, query: Query, target: Target) -> Match | None:
        for squat, name in string_pairs(query, target.forms):
            i = substituted_index(squat, name)
            if i is None:
                continue
            old, new = name[i], squat[i]
            adjacent = keyboard_adjacent(old, new)
            alike = not adjacent and looks_alike(old, new)
            if not target.watched and not self._popular_substitution(target, name, i, new, adjacent, alike):
                continue
            how = "neighbouring key " if adjacent else "look-alike " if alike else ""
            return Match(
                f"replaces '{old}' with {how}'{new}' at position {i + 1}",
                ADJACENT_CONFIDENCE if adjacent else LOOKALIKE_CONFIDENCE if alike else OTHER_CONFIDENCE,
            )
        return None

    @staticmethod
    def _popular_substitution(
        target: Target, name: str, i: int, new: str, adjacent: bool, alike: bool
    ) -> bool:
        """Whether replacing ``name[i]`` with ``new`` is flagged on a popular (not watchlisted) target."""
        old = name[i]
        if old.isdigit() and new.isdigit():
            return False  # versions (cuda11/cuda12), not typos
        length = target.core_len
        if length < MIN_TYPO_LEN:  # short names (the length gate let them through): neighbours only
            if length == SHORT_SUBSTITUTION_LEN and target.rank > SHORT_SUBSTITUTION_MAX_RANK:
                return False
            return adjacent
        if adjacent:
            return True
        if alike:
            return len(target.forms.squashed) >= LOOKALIKE_MIN_LEN
        if target.rank <= CODE_NAME_MAX_RANK and old.isalnum() and new.isalnum() and _code_like(name):
            return not (name[i - 1 : i + 1] == "js" and new == "t")  # ``x-ts``: a TypeScript port
        return (
            target.rank <= NON_ADJACENT_MAX_RANK
            and old.isalpha()
            and new.isalpha()
            and len(target.forms.squashed) >= NON_ADJACENT_TOP_MIN_LEN
        )


def _code_like(name: str) -> bool:
    """A name with a digit in it: an identifier (``js-sha3``, ``bip39``), not words."""
    return any(c.isdigit() for c in name)
