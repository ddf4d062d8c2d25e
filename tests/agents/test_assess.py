"""Assessor.assess(): one verdict per package version from name detection plus known-malicious advisories."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from typostream.agents.domain.advisories import KnownMalicious
from typostream.agents.domain.assess import Assessment, Assessor, load_known
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


def test_the_assessment_carries_the_version(detector: Detector) -> None:
    assessor = Assessor(detector, load_known())
    result = assessor.assess("ua-parser-js", "npm", " 0.7.29 ")
    assert isinstance(result, Assessment) and result.version == "0.7.29"
    assert result.to_dict()["version"] == "0.7.29"
    assert list(result.to_dict()) == ["name", "version", "registry", "verdict", "threats"]
    assert result.threats[0].evidence.startswith("TYPOSTREAM-SEED-3 (version 0.7.29 listed): ")
    assert assessor.assess("react", "npm").to_dict() == {
        "name": "react",
        "version": None,
        "registry": "npm",
        "verdict": "clean",
        "threats": [],
    }
    assert assessor.assess("react", "npm", "").version is None


def test_pinned_pypi_versions_match_listed_advisories(detector: Detector) -> None:
    """Issue 11: most PyPI advisories list exact versions; a pin must meet them (PEP 440 equality)."""
    assessor = Assessor(detector, load_known())
    assert assessor.assess("ctx", "pypi", "0.2.6").verdict == "malicious"
    assert assessor.assess("ctx", "pypi", "0.2.6.0").verdict == "malicious"
    assert assessor.assess("ctx", "pypi", "0.2.7").verdict == "clean"


def test_ranged_advisories(detector: Detector) -> None:
    advisory = {
        "id": "MAL-RANGE",
        "summary": "versions 2.x were malicious",
        "affected": [
            {
                "package": {"ecosystem": "PyPI", "name": "acme-range"},
                "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "2.0"}, {"fixed": "3.0"}]}],
            }
        ],
    }
    known = KnownMalicious.from_advisories([advisory])
    assessor = Assessor(detector, known)
    result = assessor.assess("acme-range", "pypi", "2.5")
    assert result.verdict == "malicious"
    assert (
        result.threats[0].evidence
        == "MAL-RANGE (version 2.5 in range >=2.0, <3.0): versions 2.x were malicious"
    )
    assert assessor.assess("acme-range", "pypi", "3.0").verdict == "clean"
    assert (
        assessor.assess("acme-range", "pypi").verdict == "clean"
    )  # no version: all-versions advisories only
