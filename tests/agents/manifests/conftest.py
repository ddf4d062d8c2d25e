"""Fixtures of the manifest parser tests: the hand-written, real-shaped files in tests/fixtures/manifests."""

from __future__ import annotations

from pathlib import Path

from typostream.agents.domain.manifests import parse_file

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "manifests"


def entries(path: Path, registry: str | None = None) -> list[tuple[str, str | None, int | None]]:
    """``(name, version, line)`` of every entry of ``path``, checking each entry's registry and file."""
    fmt, found = parse_file(path, registry=registry)
    assert all(e.registry == (fmt.registry or registry) for e in found)
    return [(e.name, e.version, e.line) for e in found]
