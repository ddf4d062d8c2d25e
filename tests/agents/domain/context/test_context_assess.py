"""``Assessor.assess`` with versions: dependency-confusion versions rescore name threats and can be
threats of their own; without a version (or with an ordinary one) results are the name detection's."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from typostream.agents.domain.assess import Assessor, load_known
from typostream.agents.domain.context import ContextThreat
from typostream.agents.domain.detection import Detector
from typostream.agents.domain.messages import threat_id_for

# typosquats of every technique family, popular names, unknown names, scoped names
NAMES = [
    ("npm", "lodahs"),
    ("npm", "expresss"),
    ("npm", "crossenv"),
    ("npm", "@angullar/core"),
    ("npm", "react"),
    ("npm", "@nrwl/devkit"),
    ("npm", "left-pad"),
    ("npm", "acme-internal-auth"),
    ("pypi", "reqeusts"),
    ("pypi", "jeIlyfish"),
    ("pypi", "requests"),
    ("pypi", "numpyy"),
    ("pypi", "some-unknown-package-name"),
]


@pytest.fixture(scope="module")
def assessor() -> Assessor:
    return Assessor(Detector.default(), load_known())


@pytest.mark.parametrize(("registry", "name"), NAMES)
@pytest.mark.parametrize("version", [None, "", "1.0.0", "2.31.0", "0.7.29", "2024.1.0", "3.99.0"])
def test_without_a_pattern_the_result_is_the_name_detections(
    assessor: Assessor, registry: str, name: str, version: str | None
) -> None:
    result = assessor.assess(name, registry, version)
    scanned = assessor.detector.scan(name, registry)
    name_threats = [t for t in result.threats if t.type != "malicious_package"]
    assert name_threats == scanned.threats
    assert not any(isinstance(t, ContextThreat) for t in result.threats)
    assert all("signals" not in t.to_dict() for t in result.threats)


def test_a_nines_version_rescores_name_threats_keeping_their_identity(assessor: Assessor) -> None:
    plain = assessor.assess("lodahs", "npm", "1.0.0")
    confused = assessor.assess("lodahs", "npm", "99.0.0")
    assert [(t.type, t.target, t.technique) for t in confused.threats] == [
        (t.type, t.target, t.technique) for t in plain.threats
    ]
    # same finding, same threat id: the rescored threat replaces the name threat, it is no extra one
    assert [threat_id_for("e", t) for t in confused.threats] == [threat_id_for("e", t) for t in plain.threats]
    top = confused.threats[0]
    assert isinstance(top, ContextThreat) and top.score > plain.threats[0].score
    assert top.severity == "critical" and confused.verdict == "malicious" and plain.verdict == "suspicious"
    assert top.to_dict()["signals"] == [
        {"kind": "version.nines", "detail": "version 99.0.0 has an all-nines major (99)", "weight": 3.7}
    ]


def test_a_nines_version_alone_is_a_dependency_confusion_threat(assessor: Assessor) -> None:
    result = assessor.assess("acme-internal-auth", "npm", "999.9.9")
    assert result.verdict == "suspicious"
    [threat] = result.threats
    assert (threat.type, threat.target, threat.technique, threat.severity) == (
        "dependency_confusion",
        "acme-internal-auth",
        "version_pattern",
        "high",
    )
    assert [s["kind"] for s in threat.to_dict()["signals"]] == ["version.nines", "version.internal_name"]
    # a weaker pattern alone is no threat: a high major is common enough among legitimate packages
    assert assessor.assess("acme-internal-auth", "npm", "132.0.0").threats == []


@pytest.mark.parametrize(
    ("registry", "name"), [("npm", "react"), ("npm", "@nrwl/devkit"), ("pypi", "requests")]
)
def test_a_popular_package_at_9999_is_its_owner_not_confusion(
    assessor: Assessor, registry: str, name: str
) -> None:
    assert assessor.assess(name, registry, "9999.0.0").verdict == "clean"


def test_advisories_still_come_first(assessor: Assessor) -> None:
    result = assessor.assess("jeIlyfish", "pypi", "99.0")
    assert result.verdict == "malicious" and result.threats[0].type == "malicious_package"
    squat = next(t for t in result.threats if t.type == "typosquat")
    assert isinstance(squat, ContextThreat)


EXE = Path(sys.executable).with_name("typostream")


@pytest.mark.skipif(not EXE.exists(), reason="typostream entry point not installed")
def test_scan_with_versions_on_the_command_line() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TYPOSTREAM_")}
    proc = subprocess.run(
        [
            str(EXE),
            "scan",
            "--registry",
            "npm",
            "--json",
            "acme-internal-auth@99.0.0",
            "acme-internal-auth",
            "lodahs",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    confused, bare, squat = (json.loads(line) for line in proc.stdout.splitlines())
    assert (confused["version"], confused["verdict"]) == ("99.0.0", "suspicious")
    assert confused["threats"][0]["type"] == "dependency_confusion"
    assert [s["kind"] for s in confused["threats"][0]["signals"]] == [
        "version.nines",
        "version.internal_name",
    ]
    assert bare == {
        "name": "acme-internal-auth",
        "version": None,
        "registry": "npm",
        "verdict": "clean",
        "threats": [],
    }
    assert "signals" not in squat["threats"][0]


def test_an_allowlisted_name_at_a_nines_version_is_the_teams_own() -> None:
    # an internal placeholder a team publishes at 99.x must not alert once the team allowlists it
    allowing = Assessor(Detector.default(allowlist=["acme-internal-auth"]), load_known())
    assert allowing.assess("acme-internal-auth", "npm", "999.9.9").threats == []
    assert allowing.assess("Acme-Internal-Auth", "npm", "999.9.9").verdict == "clean"
