"""Dependency-confusion version: a release numbered to win a version comparison (99.x, 999.9.9).

Dependency confusion publishes an internal package's name on the public registry with a version
higher than any internal one, so that an installer looking at both indexes picks the public one.
Campaigns use all-nines versions (``99.0.0``, ``999.9.9``, ``9.9.9``, ``99.99.99``) or simply a
huge major; the score makes a first release of it stronger (``history.first_release``). An
internal-looking name (``acme-internal-auth``) beside such a version adds to it. Needs no
metadata: ``Assessor.assess`` applies it to every publish with a version.
"""

from __future__ import annotations

import re
from typing import Final

from typostream.agents.domain.context.base import ContextDetector, PublishContext, Signal
from typostream.agents.domain.context.tunables import (
    CALVER_YEARS,
    DATE_MAJOR,
    HIGH_MAJOR,
    HIGH_MAJOR_WEIGHT,
    INTERNAL_NAME_WEIGHT,
    INTERNAL_WORDS,
    NINES_COMPONENT_WEIGHT,
    NINES_WEIGHT,
)

__all__ = ["DependencyConfusionVersion", "internal_words", "version_pattern", "version_signals"]

_RELEASE: Final = re.compile(r"v?(\d+)((?:\.\d+)*)")
_WORD: Final = re.compile(r"[a-z0-9]+")


def _nines(part: str) -> bool:
    return part.strip("9") == ""


def version_pattern(version: str) -> tuple[str, str] | None:
    """``(what, detail)`` when ``version`` looks made for dependency confusion, else None.

    ``what``: ``nines`` (a major of two or more nines, or every component nines: 99.1.0, 999.9.9,
    9.9.9), ``nines_component`` (a later component of three or more nines: 0.0.9999), or
    ``high_major`` (a major of 50 or more that is not a year or a date).
    """
    match = _RELEASE.match(version)
    if match is None:
        return None
    major = match.group(1)
    rest = match.group(2)
    if len(major) == 1 and major != "9" and "999" not in rest:
        return None  # most versions (1.2.3) end here: no pattern can match them
    parts = [major, *rest.split(".")[1:]] if rest else [major]
    if len(major) >= 2 and _nines(major):
        return "nines", f"version {version} has an all-nines major ({major})"
    if len(parts) >= 2 and all(_nines(p) for p in parts):
        return "nines", f"version {version} is all nines"
    if any(len(p) >= 3 and _nines(p) for p in parts[1:]):
        return "nines_component", f"version {version} has an all-nines component"
    value = int(major)
    if value >= HIGH_MAJOR and not (CALVER_YEARS[0] <= value <= CALVER_YEARS[1]) and value < DATE_MAJOR:
        return "high_major", f"version {version} starts at major {value}"
    return None


def internal_words(name: str) -> list[str]:
    """The words of ``name`` (scope included) that internal packages are named with."""
    return [w for w in _WORD.findall(name.lower()) if w in INTERNAL_WORDS]


_WEIGHTS: Final = {
    "nines": NINES_WEIGHT,
    "nines_component": NINES_COMPONENT_WEIGHT,
    "high_major": HIGH_MAJOR_WEIGHT,
}


def version_signals(name: str, version: str | None) -> list[Signal]:
    """The dependency-confusion version signals of ``name@version`` (none without a version)."""
    if not version:
        return []
    pattern = version_pattern(version)
    if pattern is None:
        return []
    what, detail = pattern
    signals = [Signal(f"{DependencyConfusionVersion.id}.{what}", detail, _WEIGHTS[what])]
    words = internal_words(name)
    if words:
        signals.append(
            Signal(
                f"{DependencyConfusionVersion.id}.internal_name",
                f"the name looks internal ({', '.join(words)})",
                INTERNAL_NAME_WEIGHT,
            )
        )
    return signals


class DependencyConfusionVersion(ContextDetector):
    id = "version"
    description = (
        "A version made to win over an internal one (99.x, 999.9.9), more so with an internal-looking name."
    )
    needs_metadata = False

    def detect(self, context: PublishContext) -> list[Signal]:
        return version_signals(context.name, context.version)
