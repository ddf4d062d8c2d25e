"""Combosquats: a protected name with an affix (``nodemailer-js``, ``python-requests``, ``lodash4``).

A core left once :func:`~typostream.agents.domain.detection.affixes.affix_cores` strips the
known affixes that is equal to, or (watchlisted names) one edit away from, a protected name is a
combosquat (``node-opensl``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from rapidfuzz.distance import DamerauLevenshtein

from typostream.agents.domain.detection.index import CandidateIndex, Target
from typostream.agents.domain.detection.names import tokens
from typostream.agents.domain.detection.techniques.base import Match, Query, Severity, Technique
from typostream.agents.domain.detection.tunables import (
    MIN_CORE_LEN,
    MIN_CORE_LEN_WATCHLIST,
    VERSION_SUFFIX_MAX_RANK,
    WATCHLIST_ONLY_AFFIXES,
    WEAK_SIGNAL_MAX_RANK,
)

__all__ = ["Combosquat", "affixed_cores"]


def affixed_cores(query: Query, index: CandidateIndex) -> Sequence[Target]:
    """Probe: targets spelt like one of the name's :attr:`~Query.cores`, or (watchlisted targets
    only) one edit from it."""
    cores = query.cores
    if not cores:
        return ()
    found: list[Target] = []
    for _, _, folded in cores:
        hits = index.by_skeleton.get(folded)
        if hits is not None:
            found.extend(hits)
        if index.watched_edit:  # affix + typo: watchlisted targets only
            found.extend(index.within_one_edit(folded, watched_only=True))
    return found


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
    probes = (affixed_cores,)

    def match(self, query: Query, target: Target) -> Match | None:
        cores = query.cores
        if not cores or len(query.squashed) < len(target.forms.squashed):
            return None  # an affix adds to the name
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
