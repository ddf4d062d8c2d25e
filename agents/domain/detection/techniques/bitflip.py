"""Bit flip: one character differs from the target's by a single bit (``buffe2-xor``: ``r``^0x40)."""

from __future__ import annotations

from typing import ClassVar

from typostream.agents.domain.detection.index import Target
from typostream.agents.domain.detection.techniques.base import Match, Query, Severity, Technique, string_pairs
from typostream.agents.domain.detection.techniques.probes import neighbours
from typostream.agents.domain.detection.techniques.substitution import substituted_index
from typostream.agents.domain.detection.tunables import (
    MIN_TYPO_LEN,
    MIN_TYPO_LEN_WATCHLIST,
    WEAK_SIGNAL_MAX_RANK,
)

__all__ = ["BitFlip", "bitflip_index", "bitflips"]

NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-_.")


def bitflips(char: str) -> list[str]:
    """Valid package-name characters one bit away from ``char``."""
    code = ord(char)
    return [chr(code ^ (1 << b)) for b in range(8) if chr(code ^ (1 << b)) in NAME_CHARS]


def bitflip_index(squat: str, target: str) -> int | None:
    """Index of the single character that differs by exactly one bit, or None."""
    i = substituted_index(squat, target)
    if i is None:
        return None
    xor = ord(squat[i]) ^ ord(target[i])
    return i if xor & (xor - 1) == 0 else None


class BitFlip(Technique):
    id = "typosquat.bitflip"
    description = "One character differs from a protected name's by a single flipped bit."
    severity: ClassVar[Severity] = "medium"
    popular_max_rank: ClassVar[int | None] = WEAK_SIGNAL_MAX_RANK
    confidence = 0.68
    min_len = MIN_TYPO_LEN + 1
    min_len_top = 5
    min_len_watchlist = MIN_TYPO_LEN_WATCHLIST
    length_deltas = frozenset({0})
    probes = (neighbours,)

    def match(self, query: Query, target: Target) -> Match | None:
        for squat, name in string_pairs(query, target.forms):
            i = bitflip_index(squat, name)
            if i is not None and (target.watched or not (squat[i].isdigit() and name[i].isdigit())):
                return Match(
                    f"flips one bit of '{name[i]}' to '{squat[i]}' at position {i + 1}", self.confidence
                )
        return None
