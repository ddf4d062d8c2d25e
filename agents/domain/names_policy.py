"""Which package names a publish event may carry, and why a name is refused (pure).

The rule itself is data: ``schemas/package_feeds_event.schema.json`` gives ``name`` one
``pattern`` per registry. This module explains a refusal in words (the first offending character
by code point, name and kind, or the broken structural rule) and holds the one check a regular
expression cannot say portably: no invisible or control characters, for any registry.

**npm** — `validate-npm-package-name`_, as it judges *old* packages (``validForOldPackages``),
because package-feeds replays history and npm still serves those names:

* URL-safe ASCII only: letters, digits and ``- . _ ~ ! * ' ( )`` (what ``encodeURIComponent``
  leaves alone), or a scoped ``@scope/name`` whose two parts are both that;
* not starting with ``.`` or ``_`` (the part after a scope: not with ``.``);
* not ``node_modules`` or ``favicon.ico`` (as written; npm also refuses other cases of them);
  at most 214 characters (the schema's ``maxLength``).
* Allowed although *new* packages may not use them: capital letters (``JSONStream``, ``Base64``:
  141 of the bundled 226,995 real names) and ``~ ! * ' ( )``.

**PyPI** — the name grammar of PEP 508 (what ``packaging`` and Warehouse enforce), case-insensitive:
``^([A-Z0-9]|[A-Z0-9][A-Z0-9._-]*[A-Z0-9])$``: ASCII letters, digits, ``.``, ``_`` and ``-``,
starting and ending with a letter or digit.

**Every registry** (also one added later without a grammar of its own): no control characters
(C0, DEL, C1), no format characters (bidirectional controls such as U+202E, zero-width spaces and
joiners, U+FEFF, tag characters), no variation selectors, no invisible fillers (U+3164...), no
spaces or separators, no unassigned, private-use or surrogate code points. These make a name
look like another one, or reorder how it is displayed (Trojan Source, CVE-2021-42574).

Both registries above forbid non-ASCII altogether, so for them emoji, Cyrillic look-alikes and
full-width letters are refused too.

.. _validate-npm-package-name: https://github.com/npm/validate-npm-package-name
"""

from __future__ import annotations

import re
import unicodedata
from typing import Final

__all__ = ["NPM_RESERVED", "describe_character", "invisible_character", "name_problem", "shown_name"]

NPM_RESERVED: Final = frozenset({"node_modules", "favicon.ico"})
_NPM_SAFE: Final = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.!~*'()")
_PYPI_SAFE: Final = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.")
_PYPI_ENDS: Final = re.compile(r"^[A-Za-z0-9](?:.*[A-Za-z0-9])?$", re.DOTALL)
_BIDI_CONTROLS: Final = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_FILLERS: Final = frozenset("\u115f\u1160\u3164\uffa0\u2800\u17b4\u17b5")
_SHOWN_NAME_CHARS: Final = 80


def _is_variation_selector(cp: int) -> bool:
    return 0xFE00 <= cp <= 0xFE0F or 0xE0100 <= cp <= 0xE01EF or 0x180B <= cp <= 0x180F


def _kind(char: str) -> str:
    cp = ord(char)
    category = unicodedata.category(char)
    if cp < 0x20 or cp == 0x7F:
        return "a C0 control character"
    if 0x80 <= cp <= 0x9F:
        return "a C1 control character"
    if char in _BIDI_CONTROLS:
        return "a bidirectional control"
    if _is_variation_selector(cp):
        return "an invisible variation selector"
    if char in _FILLERS:
        return "an invisible filler"
    kinds = {
        "Cf": "an invisible format character",
        "Zs": "a space",
        "Zl": "a line separator",
        "Zp": "a paragraph separator",
        "Cs": "a surrogate",
        "Co": "a private-use character",
        "Cn": "an unassigned code point",
    }
    if category in kinds:
        return kinds[category]
    if category.startswith("M"):
        return "a combining mark"
    if category.startswith("S"):
        return "an emoji or symbol"
    if category.startswith("L"):
        return "a non-ASCII letter"
    if category.startswith("N"):
        return "a non-ASCII digit"
    return "a non-ASCII punctuation character"


def describe_character(name: str, index: int) -> str:
    """``U+202E RIGHT-TO-LEFT OVERRIDE at index 3 (a bidirectional control)``: ASCII only."""
    char = name[index]
    label = unicodedata.name(char, "")
    return f"U+{ord(char):04X}{' ' + label if label else ''} at index {index} ({_kind(char)})"


def invisible_character(name: str) -> int | None:
    """Index of the first character no registry allows (control, format, invisible, space), or None."""
    if name.isascii() and name.isprintable() and " " not in name:
        return None
    for index, char in enumerate(name):
        if not char.isprintable() or char.isspace() or char in _FILLERS or _is_variation_selector(ord(char)):
            return index
    return None


def _npm_problem(name: str) -> str | None:
    for index, char in enumerate(name):
        if char not in _NPM_SAFE and char not in "@/":
            if char.isascii() and char.isprintable():
                return f"{char!r} at index {index} is not URL-safe (letters, digits, - . _ ~ ! * ' ( ))"
            return describe_character(name, index)
    if "@" in name or "/" in name:
        scope, slash, package = name.partition("/")
        if (
            not (scope.startswith("@") and len(scope) > 1 and slash and package)
            or "@" in scope[1:] + package
            or "/" in package
        ):
            return "a scoped name is @scope/name ('@' only first, one '/', both parts non-empty)"
        if package.startswith("."):
            return "the name after the scope must not start with '.'"
        return None
    if name.startswith((".", "_")):
        return "must not start with '.' or '_'"
    if name in NPM_RESERVED:
        return f"{name!r} is reserved"
    return None


def _pypi_problem(name: str) -> str | None:
    for index, char in enumerate(name):
        if char not in _PYPI_SAFE:
            if char.isascii() and char.isprintable():
                allowed = "PEP 508: ASCII letters, digits, '.', '_', '-'"
                return f"{char!r} at index {index} is not allowed ({allowed})"
            return describe_character(name, index)
    if not _PYPI_ENDS.match(name):
        return "must start and end with an ASCII letter or digit (PEP 508)"
    return None


def name_problem(name: str, registry: str) -> str | None:
    """Why ``registry`` would refuse ``name`` (one sentence, ASCII only), or None if it is allowed.

    Agrees with the schema's per-registry ``pattern`` (a test checks both on real and random
    names); for other registries only :func:`invisible_character` applies.
    """
    if not name:
        return "is empty"
    if registry == "npm":
        return _npm_problem(name)
    if registry == "pypi":
        return _pypi_problem(name)
    index = invisible_character(name)
    return None if index is None else describe_character(name, index)


def shown_name(name: str) -> str:
    """``name`` escaped to ASCII (``'left\\u202epad'``) and shortened, safe in a log or a DLQ detail."""
    shown = ascii(name)
    return shown if len(shown) <= _SHOWN_NAME_CHARS else shown[: _SHOWN_NAME_CHARS - 3] + "..."
