"""Base class every output format extends, and the :class:`Finding` it renders: one assessed
package, with the manifest file and line it came from when it came from one."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, TextIO

from typostream.agents.domain.detection import ScanResult

__all__ = ["Finding", "Reporter"]


@dataclass(frozen=True, slots=True)
class Finding:
    """One scanned package: its :class:`ScanResult` (an ``Assessment`` carries the version) and, when
    it came from a manifest, ``file`` (a POSIX path relative to the scan root) and ``line`` (1-based)."""

    result: ScanResult
    file: str | None = None
    line: int | None = None

    @property
    def version(self) -> str | None:
        return getattr(self.result, "version", None)

    def to_dict(self) -> dict[str, Any]:
        """The JSON line: ``{"name", "version", "registry", "verdict", "threats"}`` plus
        ``"file"``/``"line"`` for a package read from a manifest."""
        out = self.result.to_dict()
        out = {"name": out.pop("name"), "version": out.pop("version", self.version), **out}
        if self.file is not None:
            out["file"] = self.file
            out["line"] = self.line
        return out


class Reporter(ABC):
    """One output format of ``typostream scan``. Subclasses declare identity and implement :meth:`render`.

    ``id`` is the ``--format`` value; ``root`` is the directory findings' files are relative to
    (None when nothing came from a file).
    """

    id: ClassVar[str]
    description: ClassVar[str]

    @abstractmethod
    def render(self, findings: Sequence[Finding], root: Path | None = None) -> str:
        """The whole output as text: empty, or ending in a newline."""

    def write(self, findings: Sequence[Finding], root: Path | None, stream: TextIO) -> None:
        """Write the output to ``stream`` (a reporter that styles terminals overrides this)."""
        stream.write(self.render(findings, root))
        stream.flush()
