"""``--format json``: one JSON object per scanned package, one per line (JSON Lines).

``{"name", "version", "registry", "verdict", "threats": [...]}``, plus ``"file"`` and ``"line"``
for a package read from a manifest (see :meth:`Finding.to_dict`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

from typostream.streams.reports.base import Finding, Reporter

__all__ = ["JsonReporter"]


class JsonReporter(Reporter):
    id: ClassVar[str] = "json"
    description: ClassVar[str] = "One JSON object per package, one per line (JSON Lines)."

    def render(self, findings: Sequence[Finding], root: Path | None = None) -> str:
        return "".join(json.dumps(f.to_dict(), ensure_ascii=False) + "\n" for f in findings)
