"""Output formats of ``typostream scan``, one :class:`Reporter` per format (GuardDog style).

A new format is one module here with a :class:`Reporter` subclass, one entry in ``_CLASSES`` and
its test; ``scan --format`` offers every id in :data:`REPORTERS`, in this order (the first is the
default).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from typostream.streams.reports.base import Finding, Reporter
from typostream.streams.reports.json import JsonReporter
from typostream.streams.reports.sarif import SarifReporter, to_sarif
from typostream.streams.reports.table import TableReporter

__all__ = ["REPORTERS", "Finding", "Reporter", "to_sarif"]

_CLASSES: tuple[type[Reporter], ...] = (JsonReporter, SarifReporter, TableReporter)

REPORTERS: Mapping[str, Reporter] = MappingProxyType({cls.id: cls() for cls in _CLASSES})
"""``{format id: reporter}``."""

assert len(REPORTERS) == len(_CLASSES), "two reporters share an id"
