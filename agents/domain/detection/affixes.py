"""Affixes: the known words and prefixes a combosquat adds to a protected name, stripped off.

``affix_cores`` strips the known affixes (``py``/``python``, ``node-``/``-js``, ``-dev``, ``-lib``,
digits, versions) from a name and returns the cores left; the combosquat technique compares them
with the protected names, and :attr:`~.techniques.base.Query.cores` computes them once per scan.
"""

from __future__ import annotations

import re
from functools import lru_cache

from typostream.agents.domain.detection.names import fold, squash, tokens
from typostream.agents.domain.detection.tunables import (
    AFFIX_WORDS,
    FUSED_PREFIXES,
    FUSED_SUFFIXES,
    LANGUAGE_AFFIXES,
    MIN_CORE_LEN_WATCHLIST,
    SHORT_WORD_MAX_LEN,
    VERSION_SUFFIX,
)

__all__ = ["affix_cores", "folded_cores", "language_core", "short_word"]


def short_word(word: str) -> bool:
    """An extra word of at most ``SHORT_WORD_MAX_LEN`` letters that is no known affix (``sl``, ``cs``)."""
    return len(word) <= SHORT_WORD_MAX_LEN and word.isalpha() and word not in AFFIX_WORDS


@lru_cache(maxsize=1 << 16)
def language_core(key: str, registry: str) -> str | None:
    """The skeleton of a name less its registry's language word (``discord.py`` -> ``discord``,
    ``python-dotenv`` -> ``dotenv``), when it has one as a separate first or last word."""
    words = tokens(key)
    affixes = LANGUAGE_AFFIXES.get(registry, frozenset())
    if len(words) < 2:
        return None
    if words[-1] in affixes:
        return fold("".join(words[:-1]))
    if words[0] in affixes:
        return fold("".join(words[1:]))
    return None


_VERSION = re.compile(VERSION_SUFFIX)


def affix_cores(key: str, words: list[str] | None = None, flat: str | None = None) -> list[tuple[str, str]]:
    """``(core, affix)`` pairs for every known affix stripped from ``key`` (squashed cores).

    ``words`` (:func:`tokens` of ``key``) and ``flat`` (its squashed form) may be passed when known.
    ``Query.of`` tests this function's conditions before calling it: keep the two in step.
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
        if not last and short_word(words[-1]):
            out.append(("".join(words[:-1]), f"word '{words[-1]}'"))
        if not first and short_word(words[0]):
            out.append(("".join(words[1:]), f"word '{words[0]}'"))
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
