"""Candidate index: popular and watchlisted names keyed by canonical forms and deletion neighbourhoods.

A scan never walks the name list. It looks the scanned name's forms up in a few dicts:

* ``by_skeleton``: squashed + confusable-folded form (separator, homoglyph, npm scope changes);
* ``edit_pieces``/``by_folded``: pieces of the folded form (no sequence folds) such that a name one
  edit away (insertion, deletion, substitution, transposition) shares at least one with it
  (:func:`edit_keys`); the few targets sharing a piece are verified with rapidfuzz's OSA distance;
* ``watched_edit``: watchlisted targets by folded form and its one-character deletions
  (symmetric-deletion neighbourhood, which also reaches the watchlist's two-edit technique);
* ``scoped_edit``: scoped targets by bare name and folded scope (misspelt scopes);
* ``by_words``: the sorted words of multi-word names (word reordering);
* ``by_singular``: names with a trailing ``s`` dropped from each word (:func:`singular_key`: plurals);
* ``by_core``: popular names carrying their registry's language word, by the rest
  (:func:`~.affixes.language_core`: ``discord.py`` under ``discord``, PyPI only);
* ``typo_anchors``: long, top-ranked popular names by their first and last characters
  (:func:`anchor_key`: two typos inside a word leave both ends of the name intact).

The returned candidates are then verified by the techniques and rapidfuzz in the detector.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any as _Any
from typing import TypeVar

from rapidfuzz.distance import OSA, DamerauLevenshtein
from rapidfuzz.process import extract as _extract

from typostream.agents.domain.detection.affixes import language_core
from typostream.agents.domain.detection.names import NameForms, char_fold, tokens
from typostream.agents.domain.detection.tunables import (
    GATING_NOISE_SUFFIXES,
    PLURAL_MIN_WORD,
    TARGET_CORE_REGISTRIES,
    TWO_TYPO_ANCHOR,
    TWO_TYPO_MAX_RANK,
    TWO_TYPO_MIN_LEN,
)

__all__ = [
    "CandidateIndex",
    "Target",
    "anchor_key",
    "deletions",
    "distinctive_len",
    "edit_keys",
    "singular_key",
    "word_key",
]

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


def singular_key(words: Sequence[str]) -> str:
    """The squashed name with one trailing ``s`` dropped from each word of at least
    ``PLURAL_MIN_WORD`` characters (not ``ss``): ``["typing", "extensions"]`` -> ``typingextension``."""
    return "".join(
        w[:-1] if len(w) >= PLURAL_MIN_WORD and w[-1] == "s" and w[-2] != "s" else w for w in words
    )


def anchor_key(key: str, length: int | None = None) -> str | None:
    """The first and last characters of a key that ``TWO_TYPO_ANCHOR`` keeps, and a length (the
    key's own by default); None when the key is too short to hold two typos between them."""
    start, end = TWO_TYPO_ANCHOR
    n = len(key)
    if n < start + end + 2:
        return None
    return key[:start] + key[n - end :] + chr(n if length is None else length)


_T = TypeVar("_T")


def _add(table: dict[str, tuple[_T, ...]], key: str, one: tuple[_T]) -> None:
    """Append ``one``'s item to ``table[key]`` (a tuple: a new key gets ``one`` itself)."""
    hit = table.get(key)
    table[key] = one if hit is None else hit + one


_Pieces = tuple[dict[str, tuple[str, ...]], dict[str, tuple[str, ...]], dict[str, tuple[str, ...]]]


@dataclass(frozen=True)
class CandidateIndex:
    """Read-only lookup structure for one registry; build with :meth:`build`."""

    registry: str
    by_key: dict[str, Target] = field(default_factory=dict)
    by_skeleton: dict[str, tuple[Target, ...]] = field(default_factory=dict)
    by_folded: dict[str, tuple[Target, ...]] = field(default_factory=dict)
    by_words: dict[str, tuple[Target, ...]] = field(default_factory=dict)
    watched_edit: dict[str, tuple[Target, ...]] = field(default_factory=dict)
    """Watchlisted targets by folded form and each of its one-character deletions (symmetric
    deletion: finds one edit, and some two-edit neighbours, for the watchlist-only techniques)."""
    scopes: frozenset[str] = frozenset()
    scoped_edit: dict[str, dict[str, tuple[Target, ...]]] = field(default_factory=dict)
    """Scoped targets by bare name, then by folded scope and its one-character deletions."""
    edit_pieces: dict[int, _Pieces] = field(default_factory=dict)
    """By query length: :func:`edit_keys` pieces -> folded targets of that length plus or minus one."""
    by_singular: dict[str, tuple[Target, ...]] = field(default_factory=dict)
    """Unscoped targets by :func:`singular_key` of their words (a trailing ``s`` added or dropped)."""
    by_core: dict[str, tuple[Target, ...]] = field(default_factory=dict)
    """In ``TARGET_CORE_REGISTRIES``: targets named with the registry's language word, by the
    skeleton of the rest of the name (``discord.py`` under ``discord``)."""
    typo_anchors: dict[str, tuple[Target, ...]] = field(default_factory=dict)
    """Unscoped popular targets within ``TWO_TYPO_MAX_RANK`` whose key has at least
    ``TWO_TYPO_MIN_LEN`` characters, by :func:`anchor_key` for each query length within two of
    theirs (the two-typo technique's candidates: :meth:`two_typo_candidates`)."""
    typo_anchor_keys: dict[str, tuple[str, ...]] = field(default_factory=dict)
    """The keys of ``typo_anchors``' targets, in the same order (compared in one rapidfuzz call)."""

    @classmethod
    def build(cls, registry: str, targets: Iterable[Target], min_deletion_len: int = 3) -> CandidateIndex:
        by_key: dict[str, Target] = {}
        for target in targets:
            previous = by_key.get(target.forms.key)
            if previous is None:
                by_key[target.forms.key] = target
            elif target.watched and not previous.watched:
                by_key[target.forms.key] = Target(previous.forms, previous.rank, previous.popularity, True)
        # Each table maps a key to a tuple, grown by concatenation (buckets are small) from one
        # 1-tuple per target (per folded form for the pieces), so most values are the same few
        # objects across tables: a cached index is read back object by object, and this halves them.
        by_skeleton: dict[str, tuple[Target, ...]] = {}
        by_folded: dict[str, tuple[Target, ...]] = {}
        watched_edit: dict[str, tuple[Target, ...]] = {}
        by_words: dict[str, tuple[Target, ...]] = {}
        scoped_edit: dict[str, dict[str, tuple[Target, ...]]] = {}
        scopes: set[str] = set()
        by_singular: dict[str, tuple[Target, ...]] = {}
        typo_anchors: dict[str, tuple[Target, ...]] = {}
        typo_anchor_keys: dict[str, tuple[str, ...]] = {}
        by_core: dict[str, tuple[Target, ...]] = {}
        cores = registry in TARGET_CORE_REGISTRIES
        for target in by_key.values():
            forms = target.forms
            one = (target,)
            if cores and forms.scope is None:
                core = language_core(forms.key, registry)
                if core is not None:
                    _add(by_core, core, one)
            if forms.scope is None:
                _add(by_singular, singular_key(tokens(forms.key)), one)
                if target.popular and target.rank <= TWO_TYPO_MAX_RANK and len(forms.key) >= TWO_TYPO_MIN_LEN:
                    n = len(forms.key)
                    one_key = (forms.key,)
                    for length in range(n - 2, n + 3):  # a query two edits away is this long
                        anchor = anchor_key(forms.key, length)
                        if anchor is not None:
                            _add(typo_anchors, anchor, one)
                            _add(typo_anchor_keys, anchor, one_key)
            _add(by_skeleton, forms.skeleton, one)
            _add(by_folded, forms.folded, one)
            if target.watched:
                variants = {forms.folded}
                if len(forms.folded) >= min_deletion_len:
                    variants.update(deletions(forms.folded))
                for variant in variants:
                    _add(watched_edit, variant, one)
            words = word_key(forms.key)
            if words is not None:
                _add(by_words, words, one)
            if forms.scope:
                scopes.add(forms.scope)
                by_scope = scoped_edit.setdefault(forms.bare, {})
                folded_scope = char_fold(forms.scope)
                for variant in {folded_scope, *deletions(folded_scope)}:
                    _add(by_scope, variant, one)
        pieces: dict[int, _Pieces] = {}
        for folded in by_folded:
            one_folded = (folded,)
            for length in range(max(1, len(folded) - 1), len(folded) + 2):
                tables = pieces.get(length)
                if tables is None:
                    tables = pieces[length] = ({}, {}, {})
                for table, piece in zip(tables, edit_keys(folded, length), strict=True):
                    _add(table, piece, one_folded)
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
            by_singular,
            by_core,
            typo_anchors,
            typo_anchor_keys,
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

    def two_typo_candidates(self, key: str) -> list[Target]:
        """Targets of ``typo_anchors`` two edits (Damerau-Levenshtein) from ``key``."""
        anchor = anchor_key(key)
        if anchor is None:
            return []
        keys = self.typo_anchor_keys.get(anchor)
        if keys is None:
            return []
        targets = self.typo_anchors[anchor]
        hits = _extract(key, keys, scorer=DamerauLevenshtein.distance, score_cutoff=2, limit=None)
        return [targets[i] for _, distance, i in hits if distance == 2]

    def reordered(self, key: str) -> Sequence[Target]:
        words = word_key(key)
        if words is None:
            return _EMPTY
        return self.by_words.get(words, _EMPTY)


# --- serialisation: an index as bytes, for the cache in agents/adapters/index_cache.py -------------
# (this section's imports are kept with it, after the index structures above)
import dataclasses as _dataclasses  # noqa: E402
import gc as _gc  # noqa: E402
import io as _io  # noqa: E402
import pickle as _pickle  # noqa: E402
import typing as _typing  # noqa: E402
from collections.abc import Iterator as _Iterator  # noqa: E402
from collections.abc import Mapping as _Mapping  # noqa: E402
from contextlib import contextmanager as _contextmanager  # noqa: E402
from functools import cache as _cache  # noqa: E402

from typostream.agents.domain.errors import IndexCacheError  # noqa: E402

__all__ += ["INDEX_FORMAT", "dump_index", "load_index", "load_index_tables", "paused_gc"]

INDEX_FORMAT = 2
"""Version of :func:`dump_index`'s encoding; a change to it must invalidate every cached index."""

_INDEX_DATA = {cls.__name__: cls for cls in (CandidateIndex, Target, NameForms)}
"""The only classes a cached index may contain besides :data:`_PLAIN`."""
_PLAIN = frozenset({str, int, float, bool, bytes, type(None), tuple, list, dict, set, frozenset})
"""Types pickle encodes itself, without naming a class."""


@_contextmanager
def paused_gc() -> _Iterator[None]:
    """No cyclic garbage collection inside the block. Building or reading an index makes hundreds
    of thousands of containers and the collector would walk them again and again: building the
    npm index took 0.27 s with it and 0.17 s without, reading a cached one 0.7 s and 0.1 s."""
    enabled = _gc.isenabled()
    _gc.disable()
    try:
        yield
    finally:
        if enabled:
            _gc.enable()


def _constructor_args(obj: object) -> tuple[_Any, ...]:
    return tuple(getattr(obj, f.name) for f in _dataclasses.fields(obj) if f.init)  # type: ignore[arg-type]


class _Pickler(_pickle.Pickler):
    """Writes a Target as a call of its class with its fields (in order: :func:`_layout` records
    them), a CandidateIndex as its class plus its fields by name, a NameForms as the tuple it is;
    refuses any other class, so that :func:`load_index` reads every file it writes with nothing
    but those three classes."""

    def reducer_override(self, obj: object) -> _Any:
        kind = type(obj)
        if kind is Target:
            return kind, _constructor_args(obj)
        if kind is CandidateIndex or kind is NameForms or kind in _PLAIN:
            return NotImplemented  # NEWOBJ of the class, then its __dict__ / its tuple items
        if kind is type and obj in _INDEX_DATA.values():
            return NotImplemented
        raise IndexCacheError(f"an index holds a {kind.__qualname__}, which the index cache cannot store")


class _Unpickler(_pickle.Unpickler):
    """Resolves the three index classes and nothing else: a file names no function to call (the
    pickle documentation's "Restricting Globals"), so reading one runs no code of its choosing:
    making a Target, a NameForms or a CandidateIndex only stores values in it."""

    def find_class(self, module: str, name: str) -> type[_Any]:
        cls = _INDEX_DATA.get(name)
        if cls is None or cls.__module__ != module:
            raise _pickle.UnpicklingError(f"{module}.{name} is not index data")
        return cls


def _layout() -> tuple[_Any, ...]:
    """What the encoding relies on besides the classes' names: Target's and NameForms' fields."""
    return INDEX_FORMAT, tuple(f.name for f in _dataclasses.fields(Target)), tuple(NameForms._fields)


def dump_index(index: CandidateIndex, tables: _Mapping[str, _Any] | None = None) -> bytes:
    """``index`` (and ``tables``: plain data stored with it, the :mod:`.derived` tables) as bytes
    :func:`load_index` reads back; :class:`IndexCacheError` when they hold an object of a class the
    format does not allow (a new index structure needs its class allowed)."""
    buffer = _io.BytesIO()
    try:
        with paused_gc():
            _Pickler(buffer, protocol=5).dump((_layout(), index, dict(tables or {})))
    except _pickle.PicklingError as exc:
        raise IndexCacheError(f"cannot encode the {index.registry} index: {exc}") from exc
    return buffer.getvalue()


def load_index(data: bytes, registry: str) -> CandidateIndex:
    """The index :func:`dump_index` wrote for ``registry``; :class:`IndexCacheError` when ``data`` is
    damaged, names a class other than the index's own, or is not an index of ``registry``."""
    return load_index_tables(data, registry)[0]


def load_index_tables(data: bytes, registry: str) -> tuple[CandidateIndex, dict[str, _Any]]:
    """:func:`load_index`, and the tables stored with the index."""
    try:
        with paused_gc():
            loaded = _Unpickler(_io.BytesIO(data)).load()
    except Exception as exc:  # any damage: truncated, a bad opcode, a foreign class, bad arguments
        raise IndexCacheError(f"cached {registry} index unreadable: {type(exc).__name__}: {exc}") from exc
    if not (isinstance(loaded, tuple) and loaded):
        raise IndexCacheError(f"cached data is not a {registry} index")
    if loaded[0] != _layout():
        raise IndexCacheError("cached index written by another version of the index code")
    if len(loaded) != 3 or type(loaded[1]) is not CandidateIndex or type(loaded[2]) is not dict:
        raise IndexCacheError(f"cached data is not a {registry} index")
    _, index, tables = loaded
    if index.registry != registry:
        raise IndexCacheError(f"cached data is not a {registry} index")
    hints = _field_hints()
    if set(vars(index)) != set(hints):
        raise IndexCacheError("cached index written by another version of the index code (fields)")
    for name, hint in hints.items():
        if not _conforms(getattr(index, name), hint):
            raise IndexCacheError(f"cached {registry} index: {name} does not hold {hint}")
    return index, tables


@_cache
def _field_hints() -> dict[str, _Any]:
    hints = _typing.get_type_hints(CandidateIndex)
    return {f.name: hints[f.name] for f in _dataclasses.fields(CandidateIndex)}


def _conforms(value: object, hint: _Any) -> bool:
    """Whether ``value`` is of ``hint``, checking the first element of each container (a sample:
    it tells an index of this code from one laid out by other code, cheaply)."""
    origin, args = _typing.get_origin(hint), _typing.get_args(hint)
    if origin is _typing.Union or getattr(origin, "__name__", "") == "UnionType":
        return any(_conforms(value, arg) for arg in args)
    if hint is None or hint is type(None):
        return value is None
    kind = origin or hint
    if not isinstance(kind, type):
        return True  # Any, a TypeVar...: nothing to check
    if not isinstance(value, kind):
        return False
    if not args or not value:
        return True
    if isinstance(value, dict):
        key, item = next(iter(value.items()))
        return _conforms(key, args[0]) and _conforms(item, args[1])
    if isinstance(value, tuple) and not (len(args) == 2 and args[1] is Ellipsis):
        return len(value) == len(args) and all(map(_conforms, value, args))
    return _conforms(next(iter(value)), args[0])  # type: ignore[call-overload]
