"""Combosquats: a protected name with an affix (``nodemailer-js``, ``python-requests``, ``lodash4``).

A core left once :func:`~typostream.agents.domain.detection.affixes.affix_cores` strips the
known affixes that is equal to, or (watchlisted names) one edit away from, a protected name is a
combosquat (``node-opensl``). Against popular names, by affix:

* the registry's own language words (npm ``node``/``js``, PyPI ``py``/``python``) count against
  every popular name (``nodemssql``, ``fabric-js``); on PyPI a popular name that carries one is
  protected under its core too (``pydiscord`` and ``discord-python`` for ``discord.py``);
* other affix words (``-dev``, ``-lib``, ``http-``...) within ``WEAK_SIGNAL_MAX_RANK``;
* one extra word of at most two letters (``s3transfer-sl``) within ``SHORT_WORD_MAX_RANK``, and
  not on a family's head (``is-*``, ``ng-*``, ``eslint-*``: how plugins and helpers are named);
* a version suffix on single-word names within ``VERSION_SUFFIX_MAX_RANK``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import ClassVar

from rapidfuzz.distance import DamerauLevenshtein

from typostream.agents.domain.detection import derived
from typostream.agents.domain.detection.affixes import language_core
from typostream.agents.domain.detection.index import CandidateIndex, Target
from typostream.agents.domain.detection.names import squash, tokens
from typostream.agents.domain.detection.popular import load_popular
from typostream.agents.domain.detection.techniques.base import Match, Query, Severity, Technique
from typostream.agents.domain.detection.tunables import (
    FAMILY_MIN_NAMES,
    LANGUAGE_AFFIX_MIN_CORE,
    LANGUAGE_AFFIXES,
    MIN_CORE_LEN,
    MIN_CORE_LEN_WATCHLIST,
    SHORT_WORD_MAX_RANK,
    TARGET_CORE_REGISTRIES,
    VERSION_SUFFIX_MAX_RANK,
    WATCHLIST_ONLY_AFFIXES,
    WEAK_SIGNAL_MAX_RANK,
)

__all__ = ["Combosquat", "affixed_cores", "families", "family_counts"]


def affixed_cores(query: Query, index: CandidateIndex) -> Sequence[Target]:
    """Probe: targets spelt like one of the name's :attr:`~Query.cores`, or (watchlisted targets
    only) one edit from it; and targets whose language-less core is the name or one of its cores."""
    cores = query.cores
    by_core = index.by_core
    if not cores:
        if by_core and query.scope is None:
            return by_core.get(query.skeleton, ())
        return ()
    found: list[Target] = []
    for _, _, folded in cores:
        hits = index.by_skeleton.get(folded)
        if hits is not None:
            found.extend(hits)
        if by_core:
            hits = by_core.get(folded)
            if hits is not None:
                found.extend(hits)
        if index.watched_edit:  # affix + typo: watchlisted targets only
            found.extend(index.within_one_edit(folded, watched_only=True))
    if by_core and query.scope is None:
        found.extend(by_core.get(query.skeleton, ()))
    return found


def family_counts(names: Sequence[str]) -> tuple[Counter[str], Counter[str]]:
    """How many names begin / end with each run of whole words of another (squashed): ``eslint``
    begins ``eslint-plugin-react`` and ``eslint-config-prettier``."""
    heads: Counter[str] = Counter()
    tails: Counter[str] = Counter()
    for name in names:
        words = tokens(name)
        for k in range(1, len(words)):
            heads["".join(words[:k])] += 1
            tails["".join(words[k:])] += 1
    return heads, tails


@derived.table("combosquat.families", per="registry")  # once per process, or read with a cached index
def families(registry: str) -> tuple[frozenset[str], frozenset[str]]:
    """Squashed popular names that head (prefix) / tail (suffix) ``FAMILY_MIN_NAMES`` popular names."""
    heads, tails = family_counts([row.name.lower() for row in load_popular(registry)])
    return (
        frozenset(k for k, n in heads.items() if n >= FAMILY_MIN_NAMES),
        frozenset(k for k, n in tails.items() if n >= FAMILY_MIN_NAMES),
    )


class Combosquat(Technique):
    id = "typosquat.combosquat"
    description = (
        "A protected name (possibly misspelt) with an affix such as py-, node-, -js, -dev, a version "
        "or a two-letter word, or with its language word swapped (pydiscord for discord.py)."
    )
    severity: ClassVar[Severity] = "medium"
    confidence = 0.7
    min_len = MIN_CORE_LEN
    min_len_top = LANGUAGE_AFFIX_MIN_CORE
    min_len_watchlist = MIN_CORE_LEN_WATCHLIST
    probes = (affixed_cores,)

    def match(self, query: Query, target: Target) -> Match | None:
        forms = target.forms
        if query.scope is None and forms.scope is None and query.key != forms.key:
            swapped = self._language_swap(query, target)
            if swapped is not None:
                return swapped
        cores = query.cores
        if not cores or len(query.squashed) < len(forms.squashed):
            return None  # an affix adds to the name
        want = forms.skeleton
        best: Match | None = None
        for _, affix, folded in cores:
            if not target.watched and not self._popular_affix(affix, target, query.registry):
                continue
            if folded == want:
                return Match(f"adds {affix} to '{forms.key}'", self.confidence, 0)
            # affix + typo (``node-opensl``): watchlisted names only, popular ones have too many neighbours
            if (
                best is None
                and target.watched
                and DamerauLevenshtein.distance(folded, want, score_cutoff=1) <= 1
            ):
                best = Match(f"adds {affix} to a misspelling of '{forms.key}'", self.confidence - 0.1, 1)
        return best

    @staticmethod
    def _language_swap(query: Query, target: Target) -> Match | None:
        """``pydiscord``/``discord``/``python-discord`` for ``discord.py``: the target's core with
        another (or no) language word, in the registries that protect cores."""
        registry = query.registry
        if registry not in TARGET_CORE_REGISTRIES:
            return None
        core = language_core(target.forms.key, registry)
        if core is None or len(core) < MIN_CORE_LEN:
            return None
        if query.skeleton == core:
            return Match(f"drops the language word of '{target.forms.key}'", 0.7, 0)
        for _, affix, folded in query.cores:
            if folded == core and LANGUAGE_AFFIXES[registry].issuperset(affix.split("'")[1::2]):
                return Match(f"swaps the language word of '{target.forms.key}' for {affix}", 0.7, 0)
        return None

    @staticmethod
    def _popular_affix(affix: str, target: Target, registry: str) -> bool:
        """Whether ``affix`` is flagged on a popular (not watchlisted) target."""
        if affix.startswith("version"):
            return target.rank <= VERSION_SUFFIX_MAX_RANK and len(tokens(target.forms.key)) < 2
        words = affix.split("'")[1::2]
        if not WATCHLIST_ONLY_AFFIXES.isdisjoint(words):
            return False
        if affix.startswith("word"):
            if target.rank > SHORT_WORD_MAX_RANK or target.forms.scope is not None:
                return False
            heads, tails = families(registry)
            return squash(target.forms.key) not in heads and squash(target.forms.key) not in tails
        if LANGUAGE_AFFIXES.get(registry, frozenset()).issuperset(words):
            return True  # the registry's own language words: every popular name
        return target.rank <= WEAK_SIGNAL_MAX_RANK
