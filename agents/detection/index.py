"""Candidate index: popular and watchlisted names keyed by canonical forms and deletion neighbourhoods.

A scan never walks the name list. It looks the scanned name's forms up in a few dicts:

* ``by_skeleton``: squashed + confusable-folded form (separator, homoglyph, npm scope changes);
* ``by_folded``/``by_deletion``: the folded form (no sequence folds) and every one-character
  deletion of it (symmetric-deletion neighbourhood:
  probing the query's skeleton and its own deletions finds every target within one edit,
  including transpositions);
* ``by_words``: the sorted words of multi-word names (word reordering).

The returned candidates are then verified by the techniques and rapidfuzz in the detector.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from typostream.agents.detection.names import NameForms, tokens
from typostream.agents.detection.tunables import GATING_NOISE_SUFFIXES

__all__ = ["CandidateIndex", "Target", "deletions", "distinctive_len", "word_key"]

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
    by_folded: dict[str, list[Target]] = field(default_factory=dict)
    by_deletion: dict[str, list[Target]] = field(default_factory=dict)
    by_words: dict[str, list[Target]] = field(default_factory=dict)
    scopes: frozenset[str] = frozenset()

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
        by_deletion: dict[str, list[Target]] = {}
        by_words: dict[str, list[Target]] = {}
        scopes: set[str] = set()
        for target in by_key.values():
            by_skeleton.setdefault(target.forms.skeleton, []).append(target)
            folded = target.forms.folded
            by_folded.setdefault(folded, []).append(target)
            if len(folded) >= min_deletion_len:
                for variant in set(deletions(folded)):
                    by_deletion.setdefault(variant, []).append(target)
            words = word_key(target.forms.key)
            if words is not None:
                by_words.setdefault(words, []).append(target)
            if target.forms.scope:
                scopes.add(target.forms.scope)
        return cls(registry, by_key, by_skeleton, by_folded, by_deletion, by_words, frozenset(scopes))

    def __len__(self) -> int:
        return len(self.by_key)

    def exact(self, key: str) -> Target | None:
        return self.by_key.get(key)

    def near(self, forms: NameForms) -> list[Target]:
        """Targets with the same skeleton, or within one edit of the folded form (unverified)."""
        found: list[Target] = list(self.by_skeleton.get(forms.skeleton, _EMPTY))
        variants = deletions(forms.folded)
        variants.append(forms.folded)
        # C-level set intersections: a name with no neighbour costs no Python-level loop.
        for hit in self.by_folded.keys() & variants:
            found.extend(self.by_folded[hit])
        for hit in self.by_deletion.keys() & variants:
            found.extend(self.by_deletion[hit])
        return found

    def reordered(self, key: str) -> Sequence[Target]:
        words = word_key(key)
        if words is None:
            return _EMPTY
        return self.by_words.get(words, _EMPTY)
