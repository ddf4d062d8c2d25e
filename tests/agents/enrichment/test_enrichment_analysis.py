"""analyse (content findings) and advisory_threats: findings shaped like detection threats."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from typostream.agents.adapters.registry import PackageMetadata, parse_npm
from typostream.agents.domain.advisories import KnownMalicious
from typostream.agents.domain.assess import advisory_threats
from typostream.agents.domain.content import Finding, analyse
from typostream.agents.domain.detection import Threat
from typostream.agents.domain.patterns import PatternSet

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(scope="module")
def patterns() -> PatternSet:
    return PatternSet.default()


@pytest.fixture(scope="module")
def known() -> KnownMalicious:
    return KnownMalicious.default()


def test_finding_has_the_threat_fields() -> None:
    assert list(Finding.__dataclass_fields__) == list(Threat.__dataclass_fields__)


def test_advisory_threats(known: KnownMalicious) -> None:
    [finding] = advisory_threats(known, "npm", "crossenv", "6.1.1")
    assert finding.type == "malicious_package"
    assert finding.technique == "known_malicious"
    assert finding.target == "TYPOSTREAM-SEED-2"
    assert (finding.score, finding.severity) == (1.0, "critical")
    assert "all versions" in finding.evidence
    assert advisory_threats(known, "npm", "cross-env", "7.0.3") == []


def test_analyse_patterns(patterns: PatternSet) -> None:
    doc = json.loads((FIXTURES / "npm_evil_1.0.0.json").read_text())
    meta = parse_npm(doc, "crossenv", "6.1.1")
    findings = analyse(meta, patterns)
    by_target = {f.target: f for f in findings}
    assert {f.type for f in findings} == {"suspicious_pattern"}  # advisories are the assessor's job
    assert {"exfil-env-network", "exfil-tunnel-oast", "obfuscation-buffer-base64"} <= set(by_target)
    env = by_target["exfil-env-network"]
    assert env.type == "suspicious_pattern"
    assert env.technique == "install_script.exfiltration"
    assert (env.severity, env.score) == ("high", 0.75)
    assert "scripts.preinstall" in env.evidence
    assert [f.score for f in findings] == sorted((f.score for f in findings), reverse=True)


def test_analyse_benign_metadata_is_clean(patterns: PatternSet, known: KnownMalicious) -> None:
    meta = PackageMetadata(
        "npm",
        "@acme/widgets",
        "1.0.0",
        description="Widgets",
        install_scripts={"postinstall": "node-gyp rebuild", "prepare": "husky install"},
        homepage="https://github.com/acme/widgets#readme",
    )
    assert analyse(meta, patterns) == []


def test_analyse_description_and_urls(patterns: PatternSet, known: KnownMalicious) -> None:
    meta = PackageMetadata(
        "pypi",
        "discord-helper",
        "0.1",
        description="Best discord token grabber",
        homepage="https://x.ngrok.io",
    )
    findings = analyse(meta, patterns)
    assert {(f.target, f.technique) for f in findings} == {
        ("description-malware-tooling", "description.self_described_malware"),
        ("exfil-tunnel-oast", "description.exfiltration"),
    }


def test_pattern_in_both_fields_is_reported_once(patterns: PatternSet, known: KnownMalicious) -> None:
    meta = PackageMetadata(
        "npm",
        "x",
        "1",
        description="posts to https://discord.com/api/webhooks/1",
        install_scripts={"install": "node -e \"fetch('https://discord.com/api/webhooks/1')\""},
    )
    findings = analyse(meta, patterns)
    assert [(f.target, f.technique) for f in findings] == [
        ("exfil-discord-webhook", "install_script.exfiltration")
    ]


def test_analyse_without_metadata(patterns: PatternSet) -> None:
    assert analyse(None, patterns) == []
