"""Candidate index: popular and watchlisted names keyed by canonical forms and deletion neighbourhoods.

A scan never walks the name list. It looks the scanned name's forms up in a few dicts:

* ``by_skeleton``: squashed + confusable-folded form (separator, homoglyph, npm scope changes);
* ``by_edit``: the folded form (no sequence folds) and every one-character deletion of it, in one
  table (symmetric-deletion neighbourhood: probing the query's folded form and its own deletions
  finds every target within one edit, including transpositions); ``watched_edit`` is the same for
  watchlisted targets only;
* ``by_words``: the sorted words of multi-word names (word reordering).

The returned candidates are then verified by the techniques and rapidfuzz in the detector.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from typostream.agents.detection.names import NameForms, char_fold, tokens
from typostream.agents.detection.tunables import GATING_NOISE_SUFFIXES

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
    """Length-tagged pieces of ``text`` compared with a query of ``length`` characters.

    Cut a query ``q`` of ``n`` characters into thirds at ``a = n // 3`` and ``b = n - n // 3``.
    One insertion, deletion, substitution or transposition starting at position ``i`` of ``q``
    leaves intact: ``q[:b]`` if ``i >= b``; the last ``n - a - 1`` characters if ``i < a``; and both
    ``q[:a]`` and the last ``n - b - 1`` characters otherwise. A target of ``n - 1``, ``n`` or
    ``n + 1`` characters stores its pieces for each of those ``n``; a query whose three pieces
    all miss has no target within one edit.
    """
    tag = chr(length)
    first = length // 3
    second = length - first
    tail = length - first - 1
    end_tail = length - second - 1
    end = len(text)
    return (
        tag + text[:second],
        tag + (text[end - tail :] if tail > 0 else ""),
        tag + text[:first] + "\x00" + (text[end - end_tail :] if end_tail > 0 else ""),
    )


def word_key(key: str) -> str | None:
    """Order-free key of a multi-word name, or None for a single word."""
    words = tokens(key)
    if len(words) < 2:
        return None
    return " ".join(sorted(words))


@dataclass(frozen=True)
class CandidateIndex:
    """Read-only lookup structure for one registry; build with :meth:`build`."""

    registry: str
    by_key: dict[str, Target] = field(default_factory=dict)
    by_skeleton: dict[str, list[Target]] = field(default_factory=dict)
    by_edit: dict[str, list[Target]] = field(default_factory=dict)
    """Folded form and each of its one-character deletions -> targets (one symmetric-deletion table)."""
    by_words: dict[str, list[Target]] = field(default_factory=dict)
    watched_edit: dict[str, list[Target]] = field(default_factory=dict)
    """``by_edit`` restricted to watchlisted targets (affix + typo combosquats are theirs only)."""
    scopes: frozenset[str] = frozenset()
    scoped_edit: dict[str, dict[str, list[Target]]] = field(default_factory=dict)
    """Scoped targets by bare name, then by folded scope and its one-character deletions."""
    edit_keys: tuple[frozenset[str], frozenset[str], frozenset[str]] = (frozenset(),) * 3
    """Pre-filter for :meth:`may_be_one_edit`: :func:`edit_keys` of every folded target."""

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
        by_edit: dict[str, list[Target]] = {}
        watched_edit: dict[str, list[Target]] = {}
        by_words: dict[str, list[Target]] = {}
        scopes: set[str] = set()
        for target in by_key.values():
            by_skeleton.setdefault(target.forms.skeleton, []).append(target)
            folded = target.forms.folded
            variants = {folded}
            if len(folded) >= min_deletion_len:
                variants.update(deletions(folded))
            for variant in variants:
                by_edit.setdefault(variant, []).append(target)
                if target.watched:
                    watched_edit.setdefault(variant, []).append(target)
            words = word_key(target.forms.key)
            if words is not None:
                by_words.setdefault(words, []).append(target)
            if target.forms.scope:
                scopes.add(target.forms.scope)
        scoped_edit: dict[str, dict[str, list[Target]]] = {}
        for target in by_key.values():
            if target.forms.scope:
                by_scope = scoped_edit.setdefault(target.forms.bare, {})
                folded_scope = char_fold(target.forms.scope)
                for variant in {folded_scope, *deletions(folded_scope)}:
                    by_scope.setdefault(variant, []).append(target)
        keys: tuple[set[str], set[str], set[str]] = (set(), set(), set())
        for folded in {t.forms.folded for t in by_key.values()}:
            for length in range(max(1, len(folded) - 1), len(folded) + 2):
                for table, part in zip(keys, edit_keys(folded, length), strict=True):
                    table.add(part)
        return cls(
            registry,
            by_key,
            by_skeleton,
            by_edit,
            by_words,
            watched_edit,
            frozenset(scopes),
            scoped_edit,
            (frozenset(keys[0]), frozenset(keys[1]), frozenset(keys[2])),
        )

    def __len__(self) -> int:
        return len(self.by_key)

    def exact(self, key: str) -> Target | None:
        return self.by_key.get(key)

    def near(self, forms: NameForms) -> list[Target]:
        """Targets with the same skeleton, or within one edit of the folded form (unverified)."""
        found: list[Target] = list(self.by_skeleton.get(forms.skeleton, _EMPTY))
        found.extend(self.within_one_edit(forms.folded))
        return found

    def may_be_one_edit(self, folded: str) -> bool:
        """False only when no target's folded form is within one edit (Damerau) of ``folded``.

        Three set probes (see :func:`edit_keys`), no allocation beyond the three keys.
        """
        head, tail, ends = edit_keys(folded, len(folded))
        heads, tails, both = self.edit_keys
        return head in heads or tail in tails or ends in both

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
        """Targets whose folded form is within one edit (incl. a transposition) of ``folded``."""
        table = self.watched_edit if watched_only else self.by_edit
        variants = [folded[:i] + folded[i + 1 :] for i in range(len(folded))]
        variants.append(folded)
        hits = table.keys() & variants  # C-level: a name with no neighbour costs no Python loop
        if not hits:
            return []
        found: list[Target] = []
        for hit in hits:
            found.extend(table[hit])
        return found

    def reordered(self, key: str) -> Sequence[Target]:
        words = word_key(key)
        if words is None:
            return _EMPTY
        return self.by_words.get(words, _EMPTY)
