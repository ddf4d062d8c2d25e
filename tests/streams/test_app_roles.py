"""What each worker role builds at start (no broker: ``build_app`` contacts nothing)."""

from __future__ import annotations

from pathlib import Path

from typostream.streams.app import ROLE_STORE, build_app
from typostream.streams.config import Settings


def test_the_store_process_builds_no_detector_until_a_scan_needs_one(tmp_path: Path) -> None:
    # The store process of --processes N serves the scan API but detects nothing from the stream: its
    # detector (the candidate indexes, ~70 MB of Python objects) is built on the first scan. The
    # metrics endpoint registers the advisory index at start; that must not build the detector.
    worker = build_app(Settings(data_dir=tmp_path), sinks=[], store="memory://", role=ROLE_STORE)
    assessor = worker.assessor
    assert list(getattr(assessor.known, "sources", ()))  # the advisory index is watched from the start
    assert not getattr(assessor.detector, "built", True)
    result = assessor.assess("reqeusts", "pypi", "1.0.0")
    assert [t.target for t in result.threats] == ["requests"]
    assert assessor.detector.built
