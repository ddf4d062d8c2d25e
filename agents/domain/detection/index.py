"""Candidate index: popular and watchlisted names keyed by canonical forms and deletion neighbourhoods.

A scan never walks the name list. It looks the scanned name's forms up in a few dicts:

* ``by_skeleton``: squashed + confusable-folded form (separator, homoglyph, npm scope changes);
* ``edit_pieces``/``by_folded``: pieces of the folded form (no sequence folds) such that a name one
  edit away (insertion, deletion, substitution, transposition) shares at least one with it
  (:func:`edit_keys`); the few targets sharing a piece are verified with rapidfuzz's OSA distance;
* ``watched_edit``: watchlisted targets by folded form and its one-character deletions
  (symmetric-deletion neighbourhood, which also reaches the watchlist's two-edit technique);
* ``scoped_edit``: scoped targets by bare name and folded scope (misspelt scopes);
* ``by_words``: the sorted words of multi-word names (word reordering).

The returned candidates are then verified by the techniques and rapidfuzz in the detector.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from rapidfuzz.distance import OSA

from typostream.agents.domain.detection.names import NameForms, char_fold, tokens
from typostream.agents.domain.detection.tunables import GATING_NOISE_SUFFIXES

__all__ = ["CandidateIndex", "Target", "deletions", "distinctive_len", "edit_keys", "word_key"]

_EMPTY: Sequence[Target] = ()


@dataclass(frozen=True, slots=True)
class Target:
    """A name worth protecting: popular (``rank`` >= 1) and/or on the user's watchlist."""

    forms: NameForms
    rank: int = 0
    popularity: int = 0
    watched: bool = False

    @property
    def name(self) -> str:
        return self.forms.name

    @property
    def popular(self) -> bool:
        return self.rank > 0

    @property
    def core_len(self) -> int:
        """Length of the skeleton without a fused ``js`` suffix (``dayjs`` -> 3): the distinctive part."""
        return distinctive_len(self.forms.skeleton)


def distinctive_len(skeleton: str) -> int:
    """``len(skeleton)`` less a trailing ``js`` (``GATING_NOISE_SUFFIXES``) when something is left."""
    for suffix in GATING_NOISE_SUFFIXES:
        if skeleton.endswith(suffix) and len(skeleton) > len(suffix):
            return len(skeleton) - len(suffix)
    return len(skeleton)


def deletions(text: str) -> list[str]:
    """All strings made by deleting one character of ``text`` (duplicates kept; cheap)."""
    return [text[:i] + text[i + 1 :] for i in range(len(text))]


def edit_keys(text: str, length: int) -> tuple[str, str, str]:
    """Pieces of ``text`` compared with a query of ``length`` characters (tables are per length).

    Cut a query ``q`` of ``n`` characters into thirds at ``a = n // 3`` and ``b = n - n // 3``.
    One insertion, deletion, substitution or transposition starting at position ``i`` of ``q``
    leaves intact: ``q[:b]`` if ``i >= b``; the last ``n - a - 1`` characters if ``i < a``; and both
    ``q[:a]`` and the last ``n - b - 1`` characters otherwise. A target of ``n - 1``, ``n`` or
    ``n + 1`` characters stores its pieces for each of those ``n``; a query whose three pieces
    all miss has no target within one edit.
    """
    first = length // 3
    second = length - first
    tail = length - first - 1
    end_tail = length - second - 1
    end = len(text)
    return (
        text[:second],
        text[end - tail :] if tail > 0 else "",
        text[:first] + "\x00" + (text[end - end_tail :] if end_tail > 0 else ""),
    )


def word_key(key: str) -> str | None:
    """Order-free key of a multi-word name, or None for a single word."""
    words = tokens(key)
    if len(words) < 2:
        return None
    return " ".join(sorted(words))


_Pieces = tuple[dict[str, list[str]], dict[str, list[str]], dict[str, list[str]]]


@dataclass(frozen=True)
class CandidateIndex:
    """Read-only lookup structure for one registry; build with :meth:`build`."""

    registry: str
    by_key: dict[str, Target] = field(default_factory=dict)
    by_skeleton: dict[str, list[Target]] = field(default_factory=dict)
    by_folded: dict[str, list[Target]] = field(default_factory=dict)
    by_words: dict[str, list[Target]] = field(default_factory=dict)
    watched_edit: dict[str, list[Target]] = field(default_factory=dict)
    """Watchlisted targets by folded form and each of its one-character deletions (symmetric
    deletion: finds one edit, and some two-edit neighbours, for the watchlist-only techniques)."""
    scopes: frozenset[str] = frozenset()
    scoped_edit: dict[str, dict[str, list[Target]]] = field(default_factory=dict)
    """Scoped targets by bare name, then by folded scope and its one-character deletions."""
    edit_pieces: dict[int, _Pieces] = field(default_factory=dict)
    """By query length: :func:`edit_keys` pieces -> folded targets of that length plus or minus one."""

    @classmethod
    def build(cls, registry: str, targets: Iterable[Target], min_deletion_len: int = 3) -> CandidateIndex:
        by_key: dict[str, Target] = {}
        for target in targets:
            previous = by_key.get(target.forms.key)
            if previous is None:
                by_key[target.forms.key] = target
            elif target.watched and not previous.watched:
                by_key[target.forms.key] = Target(previous.forms, previous.rank, previous.popularity, True)
        by_skeleton: dict[str, list[Target]] = {}
        by_folded: dict[str, list[Target]] = {}
        watched_edit: dict[str, list[Target]] = {}
        by_words: dict[str, list[Target]] = {}
        scoped_edit: dict[str, dict[str, list[Target]]] = {}
        scopes: set[str] = set()
        for target in by_key.values():
            forms = target.forms
            by_skeleton.setdefault(forms.skeleton, []).append(target)
            by_folded.setdefault(forms.folded, []).append(target)
            if target.watched:
                variants = {forms.folded}
                if len(forms.folded) >= min_deletion_len:
                    variants.update(deletions(forms.folded))
                for variant in variants:
                    watched_edit.setdefault(variant, []).append(target)
            words = word_key(forms.key)
            if words is not None:
                by_words.setdefault(words, []).append(target)
            if forms.scope:
                scopes.add(forms.scope)
                by_scope = scoped_edit.setdefault(forms.bare, {})
                folded_scope = char_fold(forms.scope)
                for variant in {folded_scope, *deletions(folded_scope)}:
                    by_scope.setdefault(variant, []).append(target)
        pieces: dict[int, _Pieces] = {}
        for folded in by_folded:
            for length in range(max(1, len(folded) - 1), len(folded) + 2):
                tables = pieces.get(length)
                if tables is None:
                    tables = pieces[length] = ({}, {}, {})
                for table, piece in zip(tables, edit_keys(folded, length), strict=True):
                    table.setdefault(piece, []).append(folded)
        return cls(
            registry,
            by_key,
            by_skeleton,
            by_folded,
            by_words,
            watched_edit,
            frozenset(scopes),
            scoped_edit,
            pieces,
        )

    def __len__(self) -> int:
        return len(self.by_key)

    def exact(self, key: str) -> Target | None:
        return self.by_key.get(key)

    def near(self, forms: NameForms) -> list[Target]:
        """Targets with the same skeleton, or within one edit of the folded form."""
        found: list[Target] = list(self.by_skeleton.get(forms.skeleton, _EMPTY))
        found.extend(self.within_one_edit(forms.folded))
        return found

    def may_be_one_edit(self, folded: str) -> bool:
        """False only when no target's folded form is within one edit (Damerau) of ``folded``."""
        return bool(self._piece_hits(folded))

    def _piece_hits(self, folded: str) -> list[str]:
        """Folded targets sharing a :func:`edit_keys` piece with ``folded`` (a superset of its
        one-edit neighbours): at most three dict probes, no other allocation."""
        n = len(folded)
        tables = self.edit_pieces.get(n)
        if tables is None:
            return []  # no target of length n - 1, n or n + 1
        first = n // 3
        second = n - first
        tail = n - first - 1
        end_tail = n - second - 1
        heads, tails, both = tables
        hits: list[str] = []
        found = heads.get(folded[:second])
        if found is not None:
            hits.extend(found)
        found = tails.get(folded[n - tail :] if tail > 0 else "")
        if found is not None:
            hits.extend(found)
        found = both.get(folded[:first] + "\x00" + (folded[n - end_tail :] if end_tail > 0 else ""))
        if found is not None:
            hits.extend(found)
        return hits

    def other_scopes(self, scope: str, bare: str) -> list[Target]:
        """Scoped targets named ``bare`` whose folded scope is within one edit of ``scope``'s."""
        by_scope = self.scoped_edit.get(bare)
        if by_scope is None:
            return []
        folded = char_fold(scope)
        variants = [folded[:i] + folded[i + 1 :] for i in range(len(folded))]
        variants.append(folded)
        found: list[Target] = []
        for hit in by_scope.keys() & variants:
            found.extend(by_scope[hit])
        return found

    def within_one_edit(self, folded: str, watched_only: bool = False) -> list[Target]:
        """Targets whose folded form is within one edit (incl. a transposition) of ``folded``.

        ``watched_only``: watchlisted targets by symmetric deletion, which also returns some
        two-edit neighbours (a moved character) for the watchlist's two-edit technique.
        """
        if watched_only:
            table = self.watched_edit
            variants = [folded[:i] + folded[i + 1 :] for i in range(len(folded))]
            variants.append(folded)
            out: list[Target] = []
            for hit in table.keys() & variants:
                out.extend(table[hit])
            return out
        hits = self._piece_hits(folded)
        if not hits:
            return []
        found: list[Target] = []
        for candidate in set(hits):
            if candidate == folded or OSA.distance(folded, candidate, score_cutoff=1) <= 1:
                found.extend(self.by_folded[candidate])
        return found

    def reordered(self, key: str) -> Sequence[Target]:
        words = word_key(key)
        if words is None:
            return _EMPTY
        return self.by_words.get(words, _EMPTY)
