"""Every knob of the detection engine, as data: keyboard, affixes, confusables extras, thresholds.

Change behaviour here, not in the techniques. Values were tuned on technique families of the dev set
(``benchmarks/quality.py``), not on its names.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Final

SNAPSHOT_FILES: Final = MappingProxyType({"npm": "npm.tsv.gz", "pypi": "pypi.tsv.gz"})

SEPARATORS: Final = "-_."
"""Characters treated as word separators (npm scopes' ``@`` and ``/`` are squashed too)."""

# --- keyboard -------------------------------------------------------------------------------
QWERTY_ROWS: Final = ("1234567890-", "qwertyuiop", "asdfghjkl", "zxcvbnm")


QWERTY_OFFSETS: Final = (0.0, 0.5, 0.75, 1.25)
"""Horizontal stagger of each row, in key widths."""


def _adjacency(rows: tuple[str, ...], offsets: tuple[float, ...]) -> dict[str, frozenset[str]]:
    pos = {ch: (r, c + offsets[r]) for r, row in enumerate(rows) for c, ch in enumerate(row)}
    near: dict[str, frozenset[str]] = {}
    for ch, (r, x) in pos.items():
        near[ch] = frozenset(
            o
            for o, (r2, x2) in pos.items()
            if o != ch
            and abs(r - r2) <= 1
            and abs(x - x2) < 1 + (r == r2)
            and not (r == r2 and abs(x - x2) > 1)
        )
    return near


QWERTY_NEIGHBOURS: Final = MappingProxyType(_adjacency(QWERTY_ROWS, QWERTY_OFFSETS))

# --- confusables ----------------------------------------------------------------------------
# The Unicode confusables table (``confusable-homoglyphs``) supplies the bulk; these are the ASCII
# look-alikes it does not fold by itself, and the multi-letter look-alikes.
ASCII_FOLDS: Final = MappingProxyType({"0": "o", "1": "l", "i": "l", "|": "l"})
SEQUENCE_FOLDS: Final = (("rn", "m"), ("vv", "w"))

# --- affixes / combosquats -------------------------------------------------------------------
AFFIX_WORDS: Final = frozenset(
    {
        "js",
        "node",
        "nodejs",
        "py",
        "python",
        "python3",
        "py3",
        "lib",
        "dev",
        "official",
        "latest",
        "ruby",
        "rb",
        "io",
        "ts",
        "http",
        "pkg",
    }
)
"""Words added before or after a real name by combosquats (``requests-py``, ``node-openssl``)."""

FUSED_PREFIXES: Final = ("python", "nodejs", "node", "py")
"""Affixes also recognised when glued on without a separator (``nodesass``, ``pyrequests``)."""
FUSED_SUFFIXES: Final = ("nodejs", "python", "js", "py")
"""As FUSED_PREFIXES, at the end (``mysqljs``)."""

GATING_NOISE_SUFFIXES: Final = ("js",)
"""Fused suffixes not counted in a popular name's length for the short-name gates: ``dayjs`` is
as short as ``day`` (``days`` is a word, not a typo of it)."""

VERSION_SUFFIX: Final = r"(?:[-_.]?v?\d+(?:[-_.]\d+)*)$"
"""Trailing digits or a version (``lodash4``, ``requests-2.31``)."""

MIN_CORE_LEN: Final = 5
"""An affix-stripped core shorter than this is never matched against popular names."""
MIN_CORE_LEN_WATCHLIST: Final = 3

# --- thresholds ------------------------------------------------------------------------------
MIN_TYPO_LEN: Final = 6
"""Squashed target length below which single-edit typos of *popular* names are not flagged."""
MIN_TYPO_LEN_WATCHLIST: Final = 3
"""Same, for watchlisted names (the user asked for them to be protected)."""
MIN_REPETITION_LEN: Final = 6
"""Repetitions keep every letter, so they are trusted on names as short as this."""
MIN_TRANSPOSE_LEN: Final = 4
"""Swapped neighbours are rarely how a legitimate name is formed, even a short one (``bs85`` for
``bs58``, ``bpi39`` for ``bip39``): at 4 instead of 6, 47,655 mid-band npm names gained 2 alerts
and 20,000 random PyPI names 4, while the dev set gained 6 default-index catches. Repetitions at
4 gained alerts and no catches, so they keep their own limit."""
MIN_SEPARATOR_LEN: Final = 5
MIN_REORDER_TOKENS: Final = 2

SEVERITY_THRESHOLDS: Final = (("critical", 0.9), ("high", 0.75), ("medium", 0.55), ("low", 0.0))
"""Severity is the first band whose floor the score reaches."""
MALICIOUS_SCORE: Final = 0.9
"""A threat scoring at least this makes the verdict ``malicious`` (else ``suspicious``)."""
MIN_REPORT_SCORE: Final = 0.35
"""Threats scoring below this are dropped as noise."""

TOP_RANK_BONUS: Final = ((100, 0.12), (1_000, 0.08), (5_000, 0.04), (20_000, 0.0))
"""Score bonus by target popularity rank (first band whose rank bound contains the target)."""
WATCHLIST_BONUS: Final = 0.1
SHORT_NAME_PENALTY: Final = 0.04
"""Per character below 8 of the squashed target: short names are more often coincidences."""

SHORT_TARGET_MAX_RANK: Final = 1_000
"""Popular targets shorter than a technique's ``min_len`` are still protected within this rank."""
# Non-neighbouring-key substitutions of popular names: flagged only for look-alike letters
# (``LOOKALIKE_LETTERS``) or on the very top names (``NON_ADJACENT_MAX_RANK``). Beyond those, on the
# mid band they are mostly other words (immediato/immediate, juration/duration, crypto-ts/crypto-js).
VERSION_SUFFIX_MAX_RANK: Final = 1_000
"""Version-suffix combosquats (``lodash4``) are flagged only for single-word targets within this
rank (or watchlisted): a digit after a multi-word name is how forks and successors are named
(``pretty-format2``, ``combined-stream2``)."""
WATCHLIST_ONLY_AFFIXES: Final = frozenset({"ts"})
"""Affix words matched only against watchlisted names: TypeScript ports and typings of popular
packages are routinely named ``x-ts``/``ts-x``."""
SCOPE_MISSPELL_MIN_LEN: Final = 5
"""A misspelt scope of a popular (not watchlisted) name must be at least this long: two edits on
``@mui``/``@swc``/``@trpc`` give other real organisations (``@eui``, ``@lwc``, ``@orpc``)."""
SCOPE_MISSPELL_MAX_EDITS: Final = 2
SCOPE_LEGACY_FAMILY: Final = 3
"""A scope whose unscoped ``scope-*`` names are popular at least this often (``babel-core``,
``babel-loader``, ...) moved from unscoped names: ``babel-plugin-x`` for ``@babel/plugin-x`` is a
legacy name, not a squat (flagged only for watchlisted targets)."""
WEAK_SIGNAL_MAX_RANK: Final = 5_000
"""Techniques whose variants are also how legitimate projects get named (separators, affixes,
inserted/substituted/bit-flipped letters) are applied to popular, not watchlisted, names only
within this rank. Below it the popularity gap between a target and a legitimate mid-popular
look-alike is small: on 47,655 real npm names with 10k-100k downloads a month, targets ranked
5,001-20,000 drew ~60 % of all alerts while giving 8 of the 80 dev squats caught by the default
index. Watchlisted names keep every technique."""
REORDER_MAX_RANK: Final = 1_000
"""Word reordering of popular names (``cache-lru``): flagged only for targets within this rank
(or watchlisted); ``stream-to-buffer``/``buffer-to-stream`` pairs are common and legitimate, and no
dev squat of a popular name reorders words."""
SCOPE_DROP_MAX_RANK: Final = 1_000
"""Unscoped copies of scoped names (``turf-square`` for ``@turf/square``) are common legacy names:
flag them only for targets within this rank (or watchlisted)."""

# --- issue 12: the kinds of real squat the techniques above missed ------------------------------
KEYBOARD_LAYOUTS: Final = MappingProxyType(
    {
        "qwertz": ("1234567890-", "qwertzuiop", "asdfghjkl", "yxcvbnm"),
        "azerty": ("1234567890-", "azertyuiop", "qsdfghjklm", "wxcvbn"),
    }
)
"""Other common layouts. A letter typed by where its key sits on another layout is a typo too:
``jquerz`` for ``jquery`` (QWERTZ has z where QWERTY has y)."""


def _layout_swaps(base: tuple[str, ...], layouts: tuple[tuple[str, ...], ...]) -> dict[str, frozenset[str]]:
    swaps: dict[str, set[str]] = {}
    for rows in layouts:
        for ours, theirs in zip(base, rows, strict=True):
            for a, b in zip(ours, theirs, strict=False):
                if a != b:
                    swaps.setdefault(a, set()).add(b)
                    swaps.setdefault(b, set()).add(a)
    return {k: frozenset(v) for k, v in swaps.items()}


LAYOUT_SWAPS: Final = MappingProxyType(_layout_swaps(QWERTY_ROWS, tuple(KEYBOARD_LAYOUTS.values())))
KEY_NEIGHBOURS: Final = MappingProxyType(
    {
        k: QWERTY_NEIGHBOURS.get(k, frozenset()) | LAYOUT_SWAPS.get(k, frozenset())
        for k in {*QWERTY_NEIGHBOURS, *LAYOUT_SWAPS}
    }
)
"""QWERTY neighbours plus the letters on the same key of QWERTZ/AZERTY: what substitution calls a
neighbouring key."""

LOOKALIKE_LETTERS: Final = frozenset(
    frozenset(pair) for pair in ("qg", "uv", "bd", "pq", "ce", "ao", "ae", "nm", "il", "ij", "vy")
)
"""Letters that look alike without being keyboard neighbours or Unicode confusables (``q``/``g``):
a substitution between them is flagged like a neighbouring-key one."""
LOOKALIKE_MIN_LEN: Final = 6
"""Shortest squashed popular target for look-alike letter substitutions."""

NON_ADJACENT_MAX_RANK: Final = 500
"""Any letter substituted for another (not a neighbour, not a look-alike) is flagged for popular
targets within this rank and at least ``NON_ADJACENT_TOP_MIN_LEN`` long: ``requesks``/``rfquests``
for ``requests``, ``colurama`` for ``colorama``. 20,000 random PyPI names gained 2 alerts, 47,655
mid-band npm names 1."""
NON_ADJACENT_TOP_MIN_LEN: Final = 8
CODE_NAME_MAX_RANK: Final = WEAK_SIGNAL_MAX_RANK
"""Names with a digit (``js-sha3``, ``bip39``, ``base58``) are codes, not words: any letter or
digit replaced by another (not digit by digit, a version) is flagged on popular ones within this
rank (``jr-sha3``, ``j3-sha3``, ``js-shas``). The dev set's ``js-sha3`` squats showed the kind;
on the populations it cost 3 mid-band npm alerts, 1 random npm, 0 PyPI."""

SHORT_SUBSTITUTION_MAX_RANK: Final = 300
"""Neighbouring-key substitutions of 4-letter popular names (``jesr`` for ``jest``) are flagged
within this rank only: 4-letter names one key apart are often other words."""
SHORT_SUBSTITUTION_LEN: Final = 4

APPEND_MAX_RANK: Final = 1_000
"""One letter appended to the end of a popular name (``matplotlibp``) is flagged for targets within
this rank whose key is at least ``APPEND_MIN_LEN`` long, unless the letter makes an English
derivation of the last word (``resolve`` -> ``resolver``, ``click`` -> ``clicky``)."""
APPEND_MIN_LEN: Final = 6
APPEND_DERIVATIONS: Final = (("e", "r"), ("e", "d"), ("", "y"), ("", "s"))
"""(target ending, appended letter) pairs that derive a word rather than mistype one; a trailing
``s`` is the plural technique's."""

OMIT_LAST_MAX_RANK: Final = 2_000
"""The last letter of a popular name dropped (``reques`` for ``request``) is flagged for targets
within this rank whose key is at least ``APPEND_MIN_LEN`` long, unless the letter is one that
derives the longer name from a word (``OMIT_LAST_DERIVING``: ``handlebar``/``handlebars``,
``sanitize``/``sanitizer``) or a digit (``urllib``/``urllib3``: a version)."""
OMIT_LAST_DERIVING: Final = frozenset("srdyen")

PLURAL_MAX_RANK: Final = WEAK_SIGNAL_MAX_RANK
"""A trailing ``s`` added to or dropped from a word of a popular name (``typing-extension``,
``huggingface-hubs``, ``require-ports``): flagged for targets within this rank..."""
PLURAL_MIN_LEN: Final = 7
"""...whose squashed name is at least this long (``clone``/``clones`` are two words)."""
PLURAL_MIN_WORD: Final = 4
"""Words shorter than this keep their trailing ``s`` (``js``, ``ms``, ``fs``, ``aws``)."""

TWO_TYPO_MAX_RANK: Final = 20_000
"""Two typing errors in one word of a long popular name (``bitcoisnj-lib``): flagged for targets
within this rank (the whole npm snapshot; the pairs below are rare enough in legitimate names)..."""
TWO_TYPO_MIN_LEN: Final = 9
"""...whose key is at least this long, and only for the pairs in ``TWO_TYPO_KINDS`` (two omissions
are how abbreviations are made: ``stylint``/``stylelint``), both errors inside one word, leaving
the name's ends (``TWO_TYPO_ANCHOR``) intact (derived words differ there: ``validate``/``validator``).
Measured: 3 alerts on 47,655 mid-band npm names, 0 on 20,000 random npm, 6 on 20,000 random PyPI."""
TWO_TYPO_KINDS: Final = frozenset(
    {
        ("repetition", "repetition"),
        ("omission", "substitution"),
        ("omission", "transposition"),
        ("transposition", "transposition"),
        ("substitution", "transposition"),
    }
)
"""The two-error combinations flagged on popular names (in either order)."""
TWO_TYPO_MIN_WORD: Final = 7
"""The word holding both typos has at least this many characters (``pause``/``pass`` are words)."""
TWO_TYPO_ANCHOR: Final = (3, 1)
"""Characters at the start and at the end of the key that the two typos leave intact (the index
buckets long names by them)."""

SCOPE_BARE_MIN_LEN: Final = 8
"""``@org/name`` republished as ``name``: flagged for every watchlisted scoped name, and for popular
ones within ``SCOPE_DROP_MAX_RANK`` whose bare name has several words and at least this many
characters (``@ungap/structured-clone``); a one-word bare name is usually an older package."""

LANGUAGE_AFFIXES: Final = MappingProxyType(
    {"npm": frozenset({"js", "node", "nodejs"}), "pypi": frozenset({"py", "python", "python3", "py3"})}
)
"""The registry's own language words: a combosquat adding one (``nodemssql``, ``fabric-js``,
``python-telegram``) is flagged against every popular name of the snapshot, not only within
``WEAK_SIGNAL_MAX_RANK``; other affixes keep that limit."""
LANGUAGE_AFFIX_MIN_CORE: Final = 4
"""Shortest core a language affix is flagged on beyond ``SHORT_TARGET_MAX_RANK`` (``nodesass``)."""
TARGET_CORE_REGISTRIES: Final = frozenset({"pypi"})
"""Registries whose popular names carrying a language affix (``discord.py``, ``python-dotenv``)
are also protected under their core (``discord``, ``pydiscord``, ``dotenv-python``). On npm the
``-js``/``node-`` spellings of one project are too many to treat that way."""
SHORT_WORD_MAX_LEN: Final = 2
"""A popular name joined with one extra word this short (``s3transfer-sl``, ``marked-cs``)..."""
SHORT_WORD_MAX_RANK: Final = 1_000
"""...is flagged for targets within this rank that are not a family's head (see
``FAMILY_MIN_NAMES``): ``eslint-*``, ``react-*``, ``django-*`` are how plugins are named."""
FAMILY_MIN_NAMES: Final = 2
"""A popular name that begins (or ends) at least this many other popular names is a family head."""
