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
NON_ADJACENT_MIN_LEN: Final = 8
"""Non-neighbouring-key substitutions of popular names need at least this many characters..."""
NON_ADJACENT_POPULAR: Final = False
"""...and are flagged for popular (not watchlisted) names only when this is True. Off: on the mid
band they are mostly other words (immediato/immediate, juration/duration, crypto-ts/crypto-js) and
no dev squat of a popular name uses a non-neighbouring key."""
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
