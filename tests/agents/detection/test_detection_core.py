"""Names, index, scoring and the Detector's public API."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import typostream.agents.domain.detection as detection
from typostream.agents.domain.detection import Detector, ScanResult, Threat
from typostream.agents.domain.detection.index import CandidateIndex, deletions
from typostream.agents.domain.detection.names import normalize, skeleton, split_scope
from typostream.agents.domain.detection.popular import load_popular, top_names
from typostream.agents.domain.detection.scoring import severity_for, verdict_for
from typostream.agents.domain.errors import UnknownRegistryError


def test_exported_members() -> None:
    for name in detection.__all__:
        assert hasattr(detection, name)


def test_normalize() -> None:
    assert normalize("Foo.Bar__baz", "pypi") == "foo-bar-baz"
    assert normalize("@Scope/Name", "npm") == "@scope/name"
    assert split_scope("@types/node") == ("types", "node")
    assert split_scope("node") == (None, "node")
    assert skeleton("k0a_Multer") == "koamulter"


def test_snapshots_loaded() -> None:
    npm, pypi = load_popular("npm"), load_popular("pypi")
    assert len(npm) >= 15_000 and len(pypi) >= 14_000
    assert npm[0].rank == 1 and "requests" in top_names("pypi", 100)
    assert load_popular("rubygems") == ()


def test_index_near_uses_deletions(target_factory) -> None:
    idx = CandidateIndex.build("npm", [target_factory("lodash"), target_factory("request")])
    from typostream.agents.domain.detection.names import NameForms

    assert {t.name for t in idx.near(NameForms.of("lodahs", "npm"))} == {"lodash"}
    assert idx.near(NameForms.of("zzzzzz", "npm")) == []
    assert sorted(deletions("abc")) == ["ab", "ac", "bc"]


@pytest.mark.parametrize(
    ("name", "registry", "target"),
    [("lodahs", "npm", "lodash"), ("reqeusts", "pypi", "requests"), ("crossenv", "npm", "cross-env")],
)
def test_scan_flags(detector: Detector, name: str, registry: str, target: str) -> None:
    result = detector.scan(name, registry)
    assert isinstance(result, ScanResult) and result.verdict != "clean"
    assert isinstance(result.threats[0], Threat) and result.threats[0].target == target
    assert 0 < result.threats[0].score <= 1 and target in result.threats[0].evidence


@pytest.mark.parametrize("name", ["react", "requests", "lodash", "@types/dayzed", "@types/lodash"])
def test_popular_and_scoped_are_clean(detector: Detector, name: str) -> None:
    reg = "pypi" if name == "requests" else "npm"
    assert detector.scan(name, reg).verdict == "clean"


def test_to_dict_shape(detector: Detector) -> None:
    data = detector.scan("lodahs", "npm").to_dict()
    assert set(data) == {"name", "registry", "verdict", "threats"}
    assert set(data["threats"][0]) == {"type", "target", "technique", "score", "severity", "evidence"}
    json.dumps(data)


def test_unknown_registry(detector: Detector) -> None:
    with pytest.raises(UnknownRegistryError):
        detector.scan("x", "cargo")
    with pytest.raises(ValueError):
        detector.scan("x", "maven")


def test_watchlist_allowlist_and_dependency_confusion(tmp_path: Path) -> None:
    watch = tmp_path / "watch.txt"
    watch.write_text("# internal\nacme-billing-core\n")
    det = Detector.default(watchlist=watch, allowlist=["acme-biling-core"])
    dc = det.scan("acme-billing-core", "npm")
    assert dc.verdict == "malicious" and dc.threats[0].type == "dependency_confusion"
    assert det.scan("acme-billing-cor", "npm").threats[0].target == "acme-billing-core"
    assert det.scan("acme-biling-core", "npm").verdict == "clean"
    assert det.scan("acme_billing-core", "rubygems").threats[0].technique == "separator"


def test_load_names_formats(tmp_path: Path) -> None:
    req = tmp_path / "requirements.txt"
    req.write_text("requests==2.0  # pinned\n-r base.txt\nflask[async]>=2\n\nDjango ; python_version>'3'\n")
    assert Detector.load_names(req) == ["requests", "flask", "Django"]
    pkg = tmp_path / "package.json"
    pkg.write_text(json.dumps({"dependencies": {"lodash": "^4"}, "devDependencies": {"@types/node": "*"}}))
    assert Detector.load_names(pkg) == ["lodash", "@types/node"]


def test_scoring_bands() -> None:
    assert severity_for(0.95) == "critical" and severity_for(0.8) == "high"
    assert severity_for(0.6) == "medium" and severity_for(0.1) == "low"
    assert (
        verdict_for([]) == "clean"
        and verdict_for([0.6]) == "suspicious"
        and verdict_for([0.95]) == "malicious"
    )


@pytest.mark.parametrize(
    ("name", "target"),
    [
        ("babelcli", "babel-cli"),  # separator change; babel-cli ranks ~12,000 on npm
        ("buffer-to-stream", "stream-to-buffer"),  # word order, outside the reorder rank limit
    ],
)
def test_weak_signal_techniques_need_a_top_target_or_the_watchlist(name: str, target: str) -> None:
    """Regression: lower-ranked popular names drew most mid-band false alarms (see tunables)."""
    assert Detector.default().scan(name, "npm").verdict == "clean"
    watched = Detector.default(watchlist=[target]).scan(name, "npm")
    assert [t.target for t in watched.threats] == [target]


def test_a_dropped_separator_is_a_separator_change_not_an_omission(detector: Detector) -> None:
    [threat] = detector.scan("crossenv", "npm").threats
    assert (threat.target, threat.technique) == ("cross-env", "separator")


@pytest.mark.parametrize(("name", "target"), [("bs85", "bs58"), ("bpi39", "bip39"), ("dhkey", "hdkey")])
def test_transpositions_of_short_popular_names_are_flagged(
    detector: Detector, name: str, target: str
) -> None:
    """Regression: a 6-character floor missed swaps of short crypto-library names (dev set)."""
    threats = detector.scan(name, "npm").threats
    assert [(t.target, t.technique) for t in threats][:1] == [(target, "transposition")]
