"""Base class every output format extends: identity plus one ``render`` of a scan's results."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import ClassVar, TextIO

from typostream.agents.domain.detection import ScanResult

__all__ = ["Reporter"]


class Reporter(ABC):
    """One output format of ``typostream scan``. Subclasses declare identity and implement :meth:`render`.

    ``id`` is the ``--format`` value; ``source`` is the file the names came from (``--file``), or
    None when they were given as arguments.
    """

    id: ClassVar[str]
    description: ClassVar[str]

    @abstractmethod
    def render(self, results: Sequence[ScanResult], source: str | None) -> str:
        """The whole output as text: empty, or ending in a newline."""

    def write(self, results: Sequence[ScanResult], source: str | None, stream: TextIO) -> None:
        """Write the output to ``stream`` (a reporter that styles terminals overrides this)."""
        stream.write(self.render(results, source))
        stream.flush()
