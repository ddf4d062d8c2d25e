"""Technique registry: an explicit class list turned into ``{id: instance}``.

Adding a technique: its module (a :class:`Technique` subclass, see ``base.py``), one line in
``_CLASSES`` and its tests. ``DEFAULT_TECHNIQUES`` is the registry as the detector runs it.
"""

from __future__ import annotations

from types import MappingProxyType

from typostream.agents.domain.detection.techniques.base import (
    Match,
    Probe,
    Query,
    Severity,
    Technique,
    TechniqueSet,
)
from typostream.agents.domain.detection.techniques.bitflip import BitFlip
from typostream.agents.domain.detection.techniques.combosquat import Combosquat
from typostream.agents.domain.detection.techniques.dependency_confusion import DependencyConfusion
from typostream.agents.domain.detection.techniques.homoglyph import Homoglyph
from typostream.agents.domain.detection.techniques.insertion import Insertion
from typostream.agents.domain.detection.techniques.multi_edit import MultiEdit
from typostream.agents.domain.detection.techniques.omission import Omission
from typostream.agents.domain.detection.techniques.plural import Plural
from typostream.agents.domain.detection.techniques.reorder import Reorder
from typostream.agents.domain.detection.techniques.repetition import Repetition
from typostream.agents.domain.detection.techniques.scope import ScopeConfusion
from typostream.agents.domain.detection.techniques.separator import Separator
from typostream.agents.domain.detection.techniques.substitution import Substitution
from typostream.agents.domain.detection.techniques.transposition import Transposition

__all__ = [
    "DEFAULT_TECHNIQUES",
    "TECHNIQUES",
    "Match",
    "Probe",
    "Query",
    "Severity",
    "Technique",
    "TechniqueSet",
]

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
    Plural,
    Combosquat,
    MultiEdit,
    DependencyConfusion,
)

TECHNIQUES: MappingProxyType[str, Technique] = MappingProxyType({cls.id: cls() for cls in _CLASSES})
DEFAULT_TECHNIQUES: TechniqueSet = TechniqueSet.of(TECHNIQUES.values())
