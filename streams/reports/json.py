"""``--format json``: one JSON object per scanned name, one per line (``ScanResult.to_dict``)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import ClassVar

from typostream.agents.domain.detection import ScanResult
from typostream.streams.reports.base import Reporter

__all__ = ["JsonReporter"]


class JsonReporter(Reporter):
    id: ClassVar[str] = "json"
    description: ClassVar[str] = "One JSON object per name, one per line (JSON Lines)."

    def render(self, results: Sequence[ScanResult], source: str | None) -> str:
        return "".join(json.dumps(result.to_dict(), ensure_ascii=False) + "\n" for result in results)
