"""Two edits on a long name (``bitcoisnj-lib`` for ``bitcoinjs-lib``, ``regenraotr`` for
``regenerator``).

Watchlisted names: any two edits of the skeleton (Damerau-Levenshtein distance 2). Popular names
have too many legitimate two-edit neighbours for that (``validate``/``validator``,
``stylint``/``stylelint``, ``sse-channel``/``side-channel``), so on them only two *typing errors*
are flagged: the combinations of ``TWO_TYPO_KINDS`` (a double repetition, an omission plus a
neighbouring-key substitution or a swap, two swaps...), both inside one word, on a long name
(``TWO_TYPO_MIN_LEN``) ranked within ``TWO_TYPO_MAX_RANK``, leaving the first and last
characters that ``TWO_TYPO_ANCHOR`` names intact.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import ClassVar

from rapidfuzz.distance import DamerauLevenshtein
from rapidfuzz.process import extract as _extract

from typostream.agents.domain.detection.index import CandidateIndex, Target
from typostream.agents.domain.detection.techniques.base import Match, Query, Severity, Technique
from typostream.agents.domain.detection.techniques.probes import neighbours
from typostream.agents.domain.detection.tunables import (
    KEY_NEIGHBOURS,
    SEPARATORS,
    TWO_TYPO_ANCHOR,
    TWO_TYPO_KINDS,
    TWO_TYPO_MAX_RANK,
    TWO_TYPO_MIN_LEN,
    TWO_TYPO_MIN_WORD,
)

__all__ = ["MultiEdit", "is_two_edits", "one_typo", "two_typos", "typo_anchored"]

_NONE: Sequence[Target] = ()
_HEAD, _TAIL = TWO_TYPO_ANCHOR
_distance = DamerauLevenshtein.distance
_MIN_QUERY = TWO_TYPO_MIN_LEN - 1  # the shortest squat of TWO_TYPO_KINDS drops one character


def is_two_edits(squat: str, target: str) -> bool:
    """True when the Damerau-Levenshtein distance is exactly 2."""
    return DamerauLevenshtein.distance(squat, target, score_cutoff=2) == 2


def typo_anchored(query: Query, index: CandidateIndex) -> Sequence[Target]:
    """Probe: long top-ranked targets sharing the query's first and last characters."""
    key = query.key
    n = len(key)
    if n < _MIN_QUERY or query.scope is not None:
        return _NONE
    # index.two_typo_candidates, inlined: most names stop at this one dict miss
    anchor = key[:_HEAD] + key[n - _TAIL :] + chr(n)
    keys = index.typo_anchor_keys.get(anchor)
    if keys is None:
        return _NONE
    targets = index.typo_anchors[anchor]
    if len(keys) == 1:
        return targets if _distance(key, keys[0], score_cutoff=2) == 2 else _NONE
    return [
        targets[i]
        for _, distance, i in _extract(key, keys, scorer=_distance, score_cutoff=2, limit=None)
        if distance == 2
    ]


def _typos(text: str, lo: int, hi: int) -> Iterator[tuple[str, int, str]]:
    """``(kind, position, variant)`` for every single typing error of ``text`` at ``lo <= i < hi``."""
    for i in range(max(lo, 0), min(hi, len(text))):
        char = text[i]
        if char in SEPARATORS:
            continue
        yield "repetition", i, text[:i] + char + text[i:]
        yield "omission", i, text[:i] + text[i + 1 :]
        for other in KEY_NEIGHBOURS.get(char, ()):
            if other.isalpha():
                yield "substitution", i, text[:i] + other + text[i + 1 :]
        if i + 1 < len(text) and text[i + 1] not in SEPARATORS and text[i + 1] != char:
            yield "transposition", i, text[:i] + text[i + 1] + char + text[i + 2 :]


def one_typo(squat: str, text: str) -> tuple[str, int] | None:
    """The single typing error that turns ``text`` into ``squat``, as ``(kind, position)``."""
    if abs(len(squat) - len(text)) > 1 or squat == text:
        return None
    i = 0
    n = min(len(squat), len(text))
    while i < n and squat[i] == text[i]:
        i += 1
    for kind, at, variant in _typos(text, i - 1, i + 1):
        if variant == squat:
            return kind, at
    return None


def _word_span(text: str, i: int) -> tuple[int, int]:
    """``[start, end)`` of the word of ``text`` that holds position ``i``."""
    start = i
    while start > 0 and text[start - 1] not in SEPARATORS:
        start -= 1
    end = i
    while end < len(text) and text[end] not in SEPARATORS:
        end += 1
    return start, end


def two_typos(squat: str, target: str) -> tuple[str, str] | None:
    """The two typing errors (kinds, in order) that turn ``target`` into ``squat`` inside one of
    its words of at least ``TWO_TYPO_MIN_WORD`` characters, away from both ends of the name; None
    when there are none."""
    if abs(len(squat) - len(target)) > 2 or squat == target:
        return None
    if DamerauLevenshtein.distance(squat, target, score_cutoff=2) != 2:
        return None
    p = 0
    n = min(len(squat), len(target))
    while p < n and squat[p] == target[p]:
        p += 1
    s = 0
    while s < n - p and squat[-1 - s] == target[-1 - s]:
        s += 1
    head, tail = TWO_TYPO_ANCHOR
    for kind, at, variant in _typos(target, max(p - 1, head), min(len(target) - s + 1, len(target) - tail)):
        if kind == "transposition" and at + 1 >= len(target) - tail:
            continue
        second = one_typo(squat, variant)
        if second is None or second[1] < head or second[1] >= len(variant) - tail:
            continue
        kinds = (kind, second[0])
        if kinds not in TWO_TYPO_KINDS and kinds[::-1] not in TWO_TYPO_KINDS:
            continue
        start, end = _word_span(target, at)
        if (
            end - start >= TWO_TYPO_MIN_WORD and start <= second[1] <= end
        ):  # the second error lands in the same word (shifted by one at most)
            return kinds
    return None


class MultiEdit(Technique):
    id = "typosquat.multi_edit"
    description = (
        "Two typing errors in a long protected name (any two edits for watchlisted names; "
        "two typos inside one word of a top-ranked popular name)."
    )
    severity: ClassVar[Severity] = "low"
    popular_max_rank: ClassVar[int | None] = TWO_TYPO_MAX_RANK
    confidence = 0.58
    min_len = TWO_TYPO_MIN_LEN
    min_len_top = TWO_TYPO_MIN_LEN
    min_len_watchlist = 7
    probes = (neighbours, typo_anchored)

    def match(self, query: Query, target: Target) -> Match | None:
        skeleton = target.forms.skeleton
        if (
            target.watched
            and len(skeleton) >= self.min_len_watchlist
            and is_two_edits(query.skeleton, skeleton)
        ):
            return Match(f"two edits away from '{target.forms.key}'", self.confidence, 2)
        if not target.popular or target.rank > TWO_TYPO_MAX_RANK or query.scope is not None:
            return None
        key = target.forms.key
        if (
            len(key) < TWO_TYPO_MIN_LEN
            or target.forms.scope is not None
            or abs(len(query.key) - len(key)) > 2
        ):
            return None
        kinds = two_typos(query.key, key)
        if kinds is None:
            return None
        return Match(f"two typos ({kinds[0]} and {kinds[1]}) away from '{key}'", self.confidence, 2)
