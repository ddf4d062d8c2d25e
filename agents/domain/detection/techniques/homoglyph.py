"""Homoglyphs and Unicode confusables: ``0/o``, ``1/l/i``, ``rn/m``, ``vv/w``, Cyrillic/Greek letters.

Folding uses the maintained Unicode confusables table shipped by ``confusable-homoglyphs``
(see :func:`typostream.agents.domain.detection.names.fold`).
"""

from __future__ import annotations

from typing import ClassVar

from typostream.agents.domain.detection.index import Target
from typostream.agents.domain.detection.names import fold, squash
from typostream.agents.domain.detection.techniques.base import Match, Query, Severity, Technique
from typostream.agents.domain.detection.techniques.probes import look_alikes

__all__ = ["Homoglyph", "is_homoglyph"]


def is_homoglyph(squat: str, target: str) -> bool:
    """True when the names differ but fold to the same look-alike skeleton."""
    s, t = squash(squat), squash(target)
    return s != t and fold(s) == fold(t)


class Homoglyph(Technique):
    id = "typosquat.homoglyph"
    description = "Look-alike characters (0/o, 1/l/i, rn/m, vv/w, Cyrillic or Greek letters) replace letters."
    severity: ClassVar[Severity] = "high"
    confidence = 0.88
    min_len = 4
    min_len_top = 3
    min_len_watchlist = 2
    scoped_queries = True
    probes = (look_alikes,)

    def match(self, query: Query, target: Target) -> Match | None:
        if query.skeleton != target.forms.skeleton or query.squashed == target.forms.squashed:
            return None
        if query.squashed.lower() == target.forms.squashed.lower():
            return None
        odd = sorted({c for c in query.squashed if c not in target.forms.squashed})
        shown = (
            ", ".join(f"'{c}' (U+{ord(c):04X})" if not c.isascii() else f"'{c}'" for c in odd) or "sequences"
        )
        return Match(f"uses look-alike {shown}", self.confidence, 0)
