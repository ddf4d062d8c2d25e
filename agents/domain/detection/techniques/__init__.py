"""Technique registry: an explicit class list turned into ``{id: instance}``.

``TYPOSQUAT_TECHNIQUES`` are tried on every candidate pair; the best-scoring match wins.
"""

from __future__ import annotations

from types import MappingProxyType

from typostream.agents.domain.detection.techniques.base import Match, Severity, Technique
from typostream.agents.domain.detection.techniques.bitflip import BitFlip
from typostream.agents.domain.detection.techniques.combosquat import Combosquat
from typostream.agents.domain.detection.techniques.dependency_confusion import DependencyConfusion
from typostream.agents.domain.detection.techniques.homoglyph import Homoglyph
from typostream.agents.domain.detection.techniques.insertion import Insertion
from typostream.agents.domain.detection.techniques.multi_edit import MultiEdit
from typostream.agents.domain.detection.techniques.omission import Omission
from typostream.agents.domain.detection.techniques.reorder import Reorder
from typostream.agents.domain.detection.techniques.repetition import Repetition
from typostream.agents.domain.detection.techniques.scope import ScopeConfusion
from typostream.agents.domain.detection.techniques.separator import Separator
from typostream.agents.domain.detection.techniques.substitution import Substitution
from typostream.agents.domain.detection.techniques.transposition import Transposition

__all__ = ["DEPENDENCY_CONFUSION", "TECHNIQUES", "TYPOSQUAT_TECHNIQUES", "Match", "Severity", "Technique"]

_CLASSES: tuple[type[Technique], ...] = (
    ScopeConfusion,
    Homoglyph,
    Separator,
    Reorder,
    Transposition,
    Repetition,
    Omission,
    Substitution,
    BitFlip,
    Insertion,
    Combosquat,
    MultiEdit,
    DependencyConfusion,
)

TECHNIQUES: MappingProxyType[str, Technique] = MappingProxyType({cls.id: cls() for cls in _CLASSES})
DEPENDENCY_CONFUSION: Technique = TECHNIQUES[DependencyConfusion.id]
TYPOSQUAT_TECHNIQUES: tuple[Technique, ...] = tuple(
    t for t in TECHNIQUES.values() if t is not DEPENDENCY_CONFUSION
)
