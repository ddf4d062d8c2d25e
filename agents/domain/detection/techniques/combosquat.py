"""Affixes and combosquats: ``py``/``python``, ``node-``/``-js``, ``-dev``, ``-lib``, digits, versions.

``affix_cores`` strips the known affixes from a name and returns the cores left; a core equal to,
or one edit away from, a protected name is a combosquat (``nodemailer-js``, ``node-opensl``).
"""

from __future__ import annotations

import re
from typing import ClassVar

from rapidfuzz.distance import DamerauLevenshtein

from typostream.agents.domain.detection.index import Target
from typostream.agents.domain.detection.names import NameForms, fold, squash, tokens
from typostream.agents.domain.detection.techniques.base import Match, Severity, Technique
from typostream.agents.domain.detection.tunables import (
    AFFIX_WORDS,
    FUSED_PREFIXES,
    FUSED_SUFFIXES,
    MIN_CORE_LEN,
    MIN_CORE_LEN_WATCHLIST,
    VERSION_SUFFIX,
    VERSION_SUFFIX_MAX_RANK,
    WATCHLIST_ONLY_AFFIXES,
    WEAK_SIGNAL_MAX_RANK,
)

__all__ = ["Combosquat", "affix_cores", "folded_cores"]

_VERSION = re.compile(VERSION_SUFFIX)


def affix_cores(key: str, words: list[str] | None = None, flat: str | None = None) -> list[tuple[str, str]]:
    """``(core, affix)`` pairs for every known affix stripped from ``key`` (squashed cores).

    ``words`` (:func:`tokens` of ``key``) and ``flat`` (its squashed form) may be passed when known.
    """
    out: list[tuple[str, str]] = []
    if words is None:
        words = tokens(key)
    if len(words) >= 2:
        first, last = words[0] in AFFIX_WORDS, words[-1] in AFFIX_WORDS
        if first:
            out.append(("".join(words[1:]), f"prefix '{words[0]}'"))
        if last:
            out.append(("".join(words[:-1]), f"suffix '{words[-1]}'"))
        if first and last and len(words) >= 3:
            out.append(("".join(words[1:-1]), f"prefix '{words[0]}' and suffix '{words[-1]}'"))
    if flat is None:
        flat = squash(key)
    if flat.startswith(FUSED_PREFIXES):
        for prefix in FUSED_PREFIXES:
            if flat.startswith(prefix) and (len(words) < 2 or words[0] != prefix):
                out.append((flat[len(prefix) :], f"prefix '{prefix}'"))
                break
    if flat.endswith(FUSED_SUFFIXES):
        for suffix in FUSED_SUFFIXES:
            if flat.endswith(suffix) and (len(words) < 2 or words[-1] != suffix):
                out.append((flat[: -len(suffix)], f"suffix '{suffix}'"))
                break
    if key[-1:].isdigit():
        m = _VERSION.search(key)
        if m and m.start() > 0:
            out.append((squash(key[: m.start()]), f"version suffix '{m.group(0)}'"))
    return [(core, affix) for core, affix in out if len(core) >= MIN_CORE_LEN_WATCHLIST]


def folded_cores(
    key: str, words: list[str] | None = None, flat: str | None = None
) -> list[tuple[str, str, str]]:
    """:func:`affix_cores` with each core's look-alike-folded form: ``(core, affix, folded core)``."""
    return [(core, affix, fold(core)) for core, affix in affix_cores(key, words, flat)]


class Combosquat(Technique):
    id = "typosquat.combosquat"
    description = (
        "A protected name (possibly misspelt) with an affix such as py-, node-, -js, -dev or a version."
    )
    severity: ClassVar[Severity] = "medium"
    popular_max_rank: ClassVar[int | None] = WEAK_SIGNAL_MAX_RANK
    confidence = 0.7
    min_len = MIN_CORE_LEN
    min_len_top = MIN_CORE_LEN - 1
    min_len_watchlist = MIN_CORE_LEN_WATCHLIST

    def match(self, query: NameForms, target: Target) -> Match | None:
        if query.scope is not None:
            return None
        return self.match_cores(target, folded_cores(query.key))

    def match_cores(self, target: Target, cores: list[tuple[str, str, str]]) -> Match | None:
        """:meth:`match` given the scanned name's :func:`folded_cores` (the detector computes them once)."""
        want = target.forms.skeleton
        best: Match | None = None
        for _, affix, folded in cores:
            if not target.watched and not self._popular_affix(affix, target):
                continue
            if folded == want:
                return Match(f"adds {affix} to '{target.forms.key}'", self.confidence, 0)
            # affix + typo (``node-opensl``): watchlisted names only, popular ones have too many neighbours
            if (
                best is None
                and target.watched
                and DamerauLevenshtein.distance(folded, want, score_cutoff=1) <= 1
            ):
                best = Match(
                    f"adds {affix} to a misspelling of '{target.forms.key}'", self.confidence - 0.1, 1
                )
        return best

    @staticmethod
    def _popular_affix(affix: str, target: Target) -> bool:
        """Whether ``affix`` is flagged on a popular (not watchlisted) target."""
        if affix.startswith("version"):
            return target.rank <= VERSION_SUFFIX_MAX_RANK and len(tokens(target.forms.key)) < 2
        return WATCHLIST_ONLY_AFFIXES.isdisjoint(affix.split("'")[1::2])
