"""Name model per registry: normalisation, scope split, squashed and skeleton forms, tokens.

All functions are pure and cheap; the index stores their results for popular names, and the
detector computes them once per scanned name.
"""

from __future__ import annotations

import json
import os
import re
import unicodedata
from functools import lru_cache
from pathlib import Path
from typing import Any, NamedTuple, Self

import confusable_homoglyphs

from typostream.agents.domain.detection import derived
from typostream.agents.domain.detection.tunables import ASCII_FOLDS, SEPARATORS, SEQUENCE_FOLDS
from typostream.agents.domain.errors import UnknownRegistryError
from typostream.agents.domain.vocabulary import DETECTOR_REGISTRIES

__all__ = [
    "NameForms",
    "char_fold",
    "check_registry",
    "fold",
    "normalize",
    "skeleton",
    "split_scope",
    "squash",
    "tokens",
]

_PEP503 = re.compile(r"[-_.]+")
_SQUASH = str.maketrans("", "", SEPARATORS + "@/")
_SQUASH_BYTES = (SEPARATORS + "@/").encode()


def check_registry(registry: str) -> str:
    """Return the canonical registry id or raise :class:`UnknownRegistryError`."""
    reg = registry.strip().lower()
    if reg not in DETECTOR_REGISTRIES:
        raise UnknownRegistryError(registry, DETECTOR_REGISTRIES)
    return reg


def normalize(name: str, registry: str) -> str:
    """Registry-normalised key: PEP 503 for PyPI, lowercase for npm (scope kept) and RubyGems."""
    name = name.strip()
    if not name.isascii():
        name = unicodedata.normalize("NFC", name)
    if registry == "pypi":
        name = name.lower()
        # most names have no separator run to collapse: skip the regex for them
        if "_" in name or "." in name or "--" in name:
            return _PEP503.sub("-", name)
        return name
    return name.lower()


def split_scope(key: str) -> tuple[str | None, str]:
    """``"@scope/name"`` -> ``("scope", "name")``; unscoped -> ``(None, key)``."""
    if key.startswith("@") and "/" in key:
        scope, _, bare = key[1:].partition("/")
        return scope, bare
    return None, key


def squash(key: str) -> str:
    """Drop separators (and npm ``@``/``/``): ``"koa-body_parser"`` -> ``"koabodyparser"``."""
    if key.isascii():
        return key.encode().translate(None, _SQUASH_BYTES).decode()
    return key.translate(_SQUASH)


_TOKEN_SPLIT = re.compile(r"[-_./@]+")
_TOKEN_BYTES = bytes.maketrans((SEPARATORS + "@/").encode(), b"-" * len(SEPARATORS + "@/"))


def tokens(key: str) -> list[str]:
    """Words of a name: ``"@babel/plugin-x"`` -> ``["babel", "plugin", "x"]``."""
    if key.isascii():  # bytes.translate + split: a third of the regex's cost
        words = key.encode().translate(_TOKEN_BYTES).decode().split("-")
        return [t for t in words if t] if "" in words else words
    return [t for t in _TOKEN_SPLIT.split(key) if t]


def confusables_file() -> Path:
    """The Unicode confusables table of ``confusable_homoglyphs`` (``$CONFUSABLE_DATA`` or the package's
    data), read here rather than through ``confusable_homoglyphs.utils``, which imports
    ``urllib.request`` (a sixth of ``typostream scan``'s imports)."""
    default = Path(confusable_homoglyphs.__file__).resolve().parent
    return Path(os.environ.get("CONFUSABLE_DATA", default)) / "confusables.json"


def _load_confusables() -> dict[str, Any]:
    with confusables_file().open(encoding="utf-8") as handle:
        data: dict[str, Any] = json.load(handle)
    return data


@derived.table("names.fold_table")  # once per process, or read with a cached index
def _fold_table() -> dict[int, str]:
    """Map every confusable character to its ASCII look-alike, from the Unicode confusables table."""
    table: dict[int, str] = {}
    for char, glyphs in _load_confusables().items():
        if len(char) != 1 or (char.isascii() and char.isalnum() and char.islower()):
            continue
        for glyph in glyphs:
            g = glyph["c"]
            if len(g) == 1 and g.isascii() and g.isalnum():
                table[ord(char)] = g.lower()
                break
    for upper in range(ord("A"), ord("Z") + 1):
        table.setdefault(upper, chr(upper).lower())
    for char, target in ASCII_FOLDS.items():
        table[ord(char)] = target
    # fold chains once more so that e.g. 'I' -> 'l' and '１' -> '1' -> 'l' land on the final letter
    for code, target in list(table.items()):
        table[code] = "".join(ASCII_FOLDS.get(c, c) for c in target)
    return table


@lru_cache(maxsize=1)
def _ascii_fold_bytes() -> bytes:
    table = bytearray(range(256))
    for code, target in _fold_table().items():
        if code < 128 and len(target) == 1:
            table[code] = ord(target)
    return bytes(table)


def _fold_sequences(text: str) -> str:
    for seq, target in SEQUENCE_FOLDS:
        if seq in text:
            text = text.replace(seq, target)
    return text


def fold(text: str) -> str:
    """Fold look-alikes to one ASCII form: Cyrillic/Greek letters, 0/o, 1/l/i, rn/m, vv/w."""
    if text.isascii():
        return _fold_sequences(text.encode().translate(_ascii_fold_bytes()).decode())
    return _fold_sequences(unicodedata.normalize("NFKC", text).translate(_fold_table()).lower())


def char_fold(key: str) -> str:
    """Squashed form with single look-alike characters folded (no ``rn``/``vv`` sequences).

    The deletion neighbourhood is built on this form: sequence folds change the length and would
    break one-edit neighbours (``colorname`` would become ``colomame``).
    """
    if key.isascii():
        return key.encode().translate(_ascii_fold_bytes(), _SQUASH_BYTES).decode()
    return unicodedata.normalize("NFKC", squash(key)).translate(_fold_table()).lower()


def skeleton(key: str) -> str:
    """Squashed and folded form: the canonical key under separator and confusable changes."""
    if key.isascii():
        return _fold_sequences(key.encode().translate(_ascii_fold_bytes(), _SQUASH_BYTES).decode())
    return fold(squash(key))


class NameForms(NamedTuple):
    """Every form of one name the index and the techniques compare (computed once per name)."""

    name: str
    key: str
    scope: str | None
    bare: str
    squashed: str
    skeleton: str
    folded: str

    @classmethod
    def of(cls, name: str, registry: str) -> Self:
        key = name.strip()
        if key.isascii():  # normalize() inlined for the common case
            key = key.lower()
            if registry == "pypi" and ("_" in key or "." in key or "--" in key):
                key = _PEP503.sub("-", key)
        else:
            key = normalize(key, registry)
        if registry == "npm" and key[:1] == "@" and "/" in key:
            scope, _, bare = key[1:].partition("/")
        else:
            scope, bare = None, key
        if key.isascii():
            raw = key.encode()
            squashed = raw.translate(None, _SQUASH_BYTES).decode()
            folded = raw.translate(_ascii_fold_bytes(), _SQUASH_BYTES).decode()
        else:
            squashed, folded = squash(key), char_fold(key)
        # tuple.__new__ directly: the generated NamedTuple constructor costs as much as the forms
        return _new_forms(cls, (name, key, scope, bare, squashed, _fold_sequences(folded), folded))


_new_forms = tuple.__new__
