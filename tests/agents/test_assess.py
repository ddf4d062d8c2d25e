"""Assessor.assess(): one verdict from name detection plus known-malicious advisories."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from typostream.agents.domain.assess import Assessor, load_known
from typostream.agents.domain.detection import Detector


@pytest.fixture(scope="module")
def detector() -> Detector:
    return Detector.default()


def test_all_versions_advisory_makes_the_name_malicious(detector: Detector) -> None:
    result = Assessor(detector, load_known()).assess("jeIlyfish", "pypi")
    assert result.verdict == "malicious"
    assert result.threats[0].type == "malicious_package"
    # the name-based finding is kept next to the advisory
    assert any(t.type == "typosquat" and t.target == "jellyfish" for t in result.threats)


def test_version_specific_advisory_needs_the_version(detector: Detector) -> None:
    known = load_known()
    assert Assessor(detector, known).assess("ua-parser-js", "npm").verdict == "clean"
    assert Assessor(detector, known).assess("ua-parser-js", "npm", "0.7.29").verdict == "malicious"
    assert Assessor(detector, known).assess("ua-parser-js", "npm", "0.7.30").verdict == "clean"


def test_extra_advisory_paths_are_added_to_the_seed(detector: Detector, tmp_path: Path) -> None:
    advisory = {
        "id": "MAL-TEST-1",
        "summary": "test advisory",
        "affected": [
            {
                "package": {"ecosystem": "npm", "name": "acme-evil"},
                "ranges": [{"type": "SEMVER", "events": [{"introduced": "0"}]}],
            }
        ],
    }
    (tmp_path / "MAL-TEST-1.json").write_text(json.dumps(advisory))
    known = load_known(f" {tmp_path} ,")
    assert Assessor(detector, known).assess("acme-evil", "npm").threats[0].target == "MAL-TEST-1"
    assert Assessor(detector, known).assess("crossenv", "npm").verdict == "malicious"  # seed still loaded
