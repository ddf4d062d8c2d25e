"""``--format json``: one JSON object per scanned package, one per line (JSON Lines).

``{"name", "version", "registry", "verdict", "threats": [...]}``, plus ``"file"`` and ``"line"``
for a package read from a manifest (see :meth:`Finding.to_dict`).

Each line is ``json.dumps(finding.to_dict(), ensure_ascii=False)``. Most packages are clean and
given by name, and their line is written from its four strings directly (a fifth of the cost of
building and encoding the dict; ``tests/streams/test_reports.py`` holds it to the same bytes).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from json.encoder import encode_basestring  # what JSONEncoder(ensure_ascii=False) quotes strings with
from pathlib import Path
from typing import ClassVar

from typostream.agents.domain.assess import Assessment
from typostream.agents.domain.detection import ScanResult
from typostream.streams.reports.base import Finding, Reporter

__all__ = ["JsonReporter", "line"]

_encode = json.JSONEncoder(ensure_ascii=False).encode  # = json.dumps(..., ensure_ascii=False), made once
_PLAIN: frozenset[type] = frozenset({ScanResult, Assessment})
"""Result types whose ``to_dict`` is exactly ``{name, [version,] registry, verdict, threats}``."""


def line(finding: Finding) -> str:
    """The JSON line of ``finding`` (no newline)."""
    result = finding.result
    if not result.threats and finding.file is None and type(result) in _PLAIN:
        version = getattr(result, "version", None)
        if version is None or type(version) is str:
            return (
                f'{{"name": {encode_basestring(result.name)}, '
                f'"version": {"null" if version is None else encode_basestring(version)}, '
                f'"registry": {encode_basestring(result.registry)}, '
                f'"verdict": {encode_basestring(result.verdict)}, "threats": []}}'
            )
    return _encode(finding.to_dict())


class JsonReporter(Reporter):
    id: ClassVar[str] = "json"
    description: ClassVar[str] = "One JSON object per package, one per line (JSON Lines)."

    def render(self, findings: Sequence[Finding], root: Path | None = None) -> str:
        return "".join([line(f) + "\n" for f in findings])
