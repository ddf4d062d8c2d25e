"""Every weight and threshold of the context score, as data (change behaviour here, not in detectors).

A weight is in log-odds: the score adds it to the logit of the name evidence (or of
:data:`BASE_SCORE` when there is none), so ``+0.7`` doubles the odds and ``-0.7`` halves them.
Where labelled data exists the weight is the natural log of a measured likelihood ratio
``P(signal | malicious) / P(signal | legitimate)``, halved because the signals are
not independent (a dependency-confusion version comes with a first release, no repository and an
empty description); elsewhere it is a prior, said so below. Measured with
``benchmarks/context.py`` (the dev set's 1,336 malicious npm rows against the latest versions and
summaries of the 226,995 npm / 886,323 PyPI packages of the development machine's package lists);
``benchmarks/README.md`` ("Context-aware score") has the figures. Nothing was tuned to names.
"""

from __future__ import annotations

from typing import Final

from typostream.agents.domain.detection.tunables import MIN_REPORT_SCORE, SEVERITY_THRESHOLDS

# --- the score -------------------------------------------------------------------------------
BASE_SCORE: Final = 0.05
"""The score of a publish with no name evidence, before its context: the prior of a context-only
threat. With it a context-only threat needs +3.1 of weights to reach ``medium``, +4.0 for ``high``."""
SCORE_FLOOR: Final = 0.01
SCORE_CEILING: Final = 0.99
"""A name score is clamped to these before its logit is taken (1.0 has none)."""
CONTEXT_ALERT_SCORE: Final = 0.55
"""A context-only threat (no name threat) is reported from this score on (``medium``)."""
SEVERITY_FLOOR_SCORES: Final = {name: max(floor, MIN_REPORT_SCORE) for name, floor in SEVERITY_THRESHOLDS}
"""The name score read from a severity alone (the riskiest threat's, as ``detect`` hands it on):
the floor of the severity's band, so context never inflates a name threat beyond what it had."""

# --- version patterns (version.py) --------------------------------------------------------------
# benchmarks/context.py, dev set npm rows (a row counts when any listed malicious version matches)
# vs the latest version of every package of the npm list (226,995) and the PyPI list (886,323):
#   all-nines (99.x, 999.9.9, 9.9.9, 99.99.99)  14.8 % (198/1336) vs 0.009 % npm, 0.03 % PyPI: LR 1,682
#   a later 3+-digit nines component (0.0.9999) 1.8 % (24/1336)  vs 0.002 % npm, 0.004 % PyPI: LR 1,019
#   a major of 50+ that is no year nor date     3.9 % (52/1336)  vs 0.33 % npm, 0.13 % PyPI:   LR 12
# Each weight is ln(LR) halved (the shrinkage above), to one decimal.
NINES_WEIGHT: Final = 3.7
"""99.x / 999.x / 9.9.9 / 99.99.99 (ln 7.4 / 2): alone a ``medium`` threat, ``high`` beside an
internal-looking name or a first release."""
NINES_COMPONENT_WEIGHT: Final = 3.4
"""A later component of 3+ nines (0.0.9999, 1.999.0; ln 6.9 / 2)."""
HIGH_MAJOR_WEIGHT: Final = 1.2
"""A major version of 50 or more that is not a year or a date (ln 2.5 / 2): no threat alone."""
HIGH_MAJOR: Final = 50
CALVER_YEARS: Final = (1990, 2100)
"""Majors in this range are years (calendar versioning: 2024.1.0), not inflated versions."""
DATE_MAJOR: Final = 10_000_000
"""A major of 8+ digits is a date (20240101): calendar versioning too."""
INTERNAL_WORDS: Final = frozenset({"internal", "private", "corp", "intranet", "confidential", "poc"})
"""Name words of internal packages (and of dependency-confusion proofs of concept)."""
INTERNAL_NAME_WEIGHT: Final = 1.3
"""An internal-looking name, counted only beside a dependency-confusion version: 1.7 % (23/1336) of
the malicious npm names vs 0.12 % of the npm list's (LR 15, ln 2.7 / 2)."""

# --- history (history.py) -------------------------------------------------------------------------
# Prior (no labelled history here): most malicious packages are their name's first and only release
# (in the dev set 1,043 of the 1,336 npm rows list one malicious version), while first releases are
# a minority of all publishes.
FIRST_RELEASE_WEIGHT: Final = 0.6
"""The registry lists no earlier release of the package."""
FIRST_SEEN_WEIGHT: Final = 0.3
"""typostream has seen no earlier version (the registry was not asked): weaker, the package may
predate the packages table."""
ESTABLISHED_RELEASES: Final = 5
ESTABLISHED_DAYS: Final = 180
ESTABLISHED_WEIGHT: Final = -1.5
"""At least ESTABLISHED_RELEASES earlier releases, or a first publish ESTABLISHED_DAYS before this one."""

# --- install scripts (install_script.py) ------------------------------------------------------------
INSTALL_HOOKS: Final = ("preinstall", "install", "postinstall")
"""npm lifecycle scripts run by ``npm install`` of a registry tarball (``prepare`` is not: it runs
for git dependencies and local installs only)."""
INSTALL_SCRIPT_WEIGHTS: Final = {"first_release": 1.5, "first_seen": 1.0, "unknown": 0.6}
"""By what is known of the release (prior: Ohm et al., "Backstabber's Knife Collection" (2020),
found 56 % of malicious packages act at install time; few new legitimate packages have hooks)."""
NATIVE_BUILD_COMMANDS: Final = (
    "node-gyp rebuild",
    "node-gyp-build",
    "prebuild-install",
    "node-pre-gyp install",
    "cmake-js compile",
)
"""Hooks that only build or fetch a native binary: half the weight (they can still be abused)."""
NATIVE_BUILD_FACTOR: Final = 0.5
SDIST_ONLY_WEIGHTS: Final = {"first_release": 0.5, "first_seen": 0.3}
"""PyPI: a first release shipping only an sdist runs its setup.py at install (a prior)."""

# --- description (description.py) ---------------------------------------------------------------
EMPTY_DESCRIPTION_WEIGHT: Final = 0.4
"""No description nor README (GuardDog's empty_information; prior)."""
COPIED_DESCRIPTION_WEIGHT: Final = 1.5
"""The target's description, copied (a fork or a plugin rewords it; a squat keeps it)."""
COPIED_SIMILARITY: Final = 0.85
"""Similarity (difflib ratio of the normalised texts) from which a description is a copy."""
MIN_COPIED_CHARS: Final = 16
"""Descriptions shorter than this ("A library") are too generic to be called copied."""

# --- repository (repository.py) -----------------------------------------------------------------
TARGET_REPOSITORY_WEIGHT: Final = 2.0
"""The repository or homepage is the target's own (starjacking: borrowing its stars and trust)."""
NAMES_TARGET_WEIGHT: Final = 1.2
"""Without the target's metadata: the repository is named after the target, not after the package."""
MISSING_REPOSITORY_WEIGHT: Final = 0.3
"""Neither repository nor homepage (prior)."""

# --- maintainers (maintainer.py) -----------------------------------------------------------------
SHARED_MAINTAINER_WEIGHT: Final = -3.0
"""A maintainer of the target published it: the owner's own near-name (typomania's exclusion)."""
NEW_PUBLISHER_WEIGHT: Final = 2.0
"""A later release published by an account that published none of the earlier ones (prior: a
hand-over is rare per release, and it outweighs the long history a takeover inherits)."""
YOUNG_PACKAGE_DAYS: Final = 30
YOUNG_PACKAGE_WEIGHT: Final = 0.3
"""A later release of a package first published less than YOUNG_PACKAGE_DAYS before."""
