"""Technique registry: an explicit class list turned into ``{id: instance}``.

``TYPOSQUAT_TECHNIQUES`` are tried on every candidate pair; the best-scoring match wins.
"""

from __future__ import annotations

from types import MappingProxyType

from typostream.agents.detection.techniques.base import Match, Severity, Technique
from typostream.agents.detection.techniques.bitflip import BitFlip
from typostream.agents.detection.techniques.combosquat import Combosquat
from typostream.agents.detection.techniques.dependency_confusion import DependencyConfusion
from typostream.agents.detection.techniques.homoglyph import Homoglyph
from typostream.agents.detection.techniques.insertion import Insertion
from typostream.agents.detection.techniques.multi_edit import MultiEdit
from typostream.agents.detection.techniques.omission import Omission
from typostream.agents.detection.techniques.reorder import Reorder
from typostream.agents.detection.techniques.repetition import Repetition
from typostream.agents.detection.techniques.scope import ScopeConfusion
from typostream.agents.detection.techniques.separator import Separator
from typostream.agents.detection.techniques.substitution import Substitution
from typostream.agents.detection.techniques.transposition import Transposition

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
