"""The context-aware score: calibration properties, the emission rule, and the threat event it makes."""

from __future__ import annotations

import math

import pytest
from jsonschema import Draft202012Validator

from tests.agents.domain.context.context_cases import load_cases
from typostream.agents.domain.context import (
    ContextThreat,
    NameEvidence,
    PublishContext,
    Signal,
    combine,
    context_only_threat,
    judge,
    needs_history,
    run_detectors,
    version_signals,
    with_context,
)
from typostream.agents.domain.context.tunables import BASE_SCORE, CONTEXT_ALERT_SCORE, SEVERITY_FLOOR_SCORES
from typostream.agents.domain.detection import Threat
from typostream.agents.domain.detection.scoring import severity_for
from typostream.agents.domain.events import parse_publish
from typostream.agents.domain.messages import event_message, threat_db_row, threat_event, threat_id_for
from typostream.agents.domain.metadata import PackageMetadata
from typostream.schemas import load_json_schema

NAME = Threat("typosquat", "lodash", "transposition", 0.62, "medium", "'lodahs' swaps 'sh'")


def sig(weight: float, kind: str = "test.signal") -> Signal:
    return Signal(kind, f"weight {weight}", weight)


# --- calibration -----------------------------------------------------------------------------
@pytest.mark.parametrize("score", [0.0, 0.35, 0.62, 0.9, 1.0])
def test_no_signal_leaves_a_name_score_exactly_as_it_was(score: float) -> None:
    assert combine(score, []) == score
    assert with_context(NAME, []) is NAME
    assert combine(None, []) == 0.0


def test_the_score_is_monotonic_bounded_and_symmetric_in_log_odds() -> None:
    weights = [-4.0, -1.0, -0.1, 0.0, 0.1, 1.0, 4.0, 40.0]
    scores = [combine(0.62, [sig(w)]) for w in weights]
    assert scores == sorted(scores) and all(0.0 <= s <= 1.0 for s in scores)
    assert combine(0.62, [sig(0.0)]) == pytest.approx(0.62, abs=1e-3)
    # +w then -w is the name score again: weights are log-odds, they add
    assert combine(0.62, [sig(1.3), sig(-1.3)]) == pytest.approx(0.62, abs=1e-3)
    # doubling the odds: +ln 2 takes even odds (0.5) to 2:1 (0.667)
    assert combine(0.5, [sig(math.log(2))]) == pytest.approx(2 / 3, abs=1e-3)
    assert combine(1.0, [sig(-100.0)]) >= 0.0 and combine(0.0, [sig(100.0)]) <= 1.0


def test_without_name_evidence_the_prior_is_the_base_score() -> None:
    assert combine(None, [sig(0.0)]) == pytest.approx(BASE_SCORE, abs=1e-3)
    # one weak prior-based signal alone never reaches an alert, nor do three of them together
    assert combine(None, [sig(0.6)]) < CONTEXT_ALERT_SCORE
    assert combine(None, [sig(0.6), sig(0.4), sig(0.3)]) < CONTEXT_ALERT_SCORE


@pytest.mark.parametrize(
    ("name", "version", "severity"),
    [
        ("acme-billing", "99.0.0", "medium"),  # an all-nines version alone
        ("acme-internal-billing", "999.9.9", "high"),  # ... with an internal-looking name
        ("acme-billing", "0.0.9999", "medium"),  # a nines component alone
        ("acme-billing", "132.0.0", None),  # a high major alone: not a threat
        ("acme-billing", "1.0.0", None),
    ],
)
def test_version_patterns_alone(name: str, version: str, severity: str | None) -> None:
    threat = context_only_threat(name, version_signals(name, version))
    assert (threat.severity if threat else None) == severity
    if threat is not None:
        assert (threat.type, threat.target, threat.technique) == (
            "dependency_confusion",
            name,
            "version_pattern",
        )


def test_a_name_threat_with_a_dependency_confusion_version_is_critical() -> None:
    rescored = with_context(NAME, version_signals("lodahs", "99.0.0"))
    assert isinstance(rescored, ContextThreat)
    assert rescored.score >= 0.9 and rescored.severity == "critical"
    assert (rescored.type, rescored.target, rescored.technique, rescored.evidence) == (
        NAME.type,
        NAME.target,
        NAME.technique,
        NAME.evidence,
    )
    weak = with_context(NAME, version_signals("lodahs", "132.0.0"))
    assert NAME.score < weak.score < rescored.score and weak.severity == "high"


def test_every_case_orders_malicious_above_clean_and_no_clean_case_alerts() -> None:
    scores: dict[str, list[float]] = {"malicious": [], "clean": []}
    for case in load_cases():
        run = run_detectors(case.context)
        verdict = judge(case.context, run.signals, None)  # context alone, no name evidence
        scores[case.label].append(verdict.score)
        if case.label == "clean":
            assert verdict.threat is None, case.id
            with_name = judge(
                case.context, run.signals, case.evidence, case.evidence.severity if case.evidence else ""
            )
            assert with_name.threat is None, case.id  # nor raises the name threat it has
    # the takeover shape (a new publisher on an established package) is evidence, not an alert alone
    assert sorted(scores["malicious"])[1] > max(scores["clean"])


# --- the emission rule -------------------------------------------------------------------------
def _context(**fields: object) -> PublishContext:
    meta = PackageMetadata("npm", "lodahs", "99.0.0", install_scripts={"postinstall": "node x.js"})
    return PublishContext("npm", "lodahs", "99.0.0", metadata=meta, target="lodash", **fields)  # type: ignore[arg-type]


def test_judge_counts_version_signals_once_and_lists_them_all() -> None:
    context = _context()
    signals = run_detectors(context).signals
    assert {s.kind for s in signals} >= {"version.nines", "install_script.hook"}
    evidence = NameEvidence("typosquat", "lodash", "medium")
    verdict = judge(context, signals, evidence, "medium")
    nines = next(s for s in verdict.signals if s.kind == "version.nines")
    assert nines.weight == 0.0 and "already in the name threat" in nines.detail  # detect counted it
    counted = [s for s in signals if not s.kind.startswith("version.")]
    assert verdict.score == combine(SEVERITY_FLOOR_SCORES["medium"], counted)
    assert verdict.threat is not None and verdict.threat.signals == verdict.signals
    assert (verdict.threat.type, verdict.threat.target, verdict.threat.technique) == (
        "typosquat",
        "lodash",
        "context",
    )
    # no name evidence: the version signals were in no threat yet, so they count
    alone = judge(context, signals, None)
    assert alone.score == combine(None, signals) and alone.threat is not None
    assert alone.threat.type == "dependency_confusion" and alone.threat.target == "lodahs"


def test_a_threat_is_emitted_only_when_context_raises_the_severity() -> None:
    context = _context()
    signals = run_detectors(context).signals
    evidence = NameEvidence("typosquat", "lodash", "medium")
    assert judge(context, signals, evidence, "medium").threat is not None
    assert judge(context, signals, evidence, "critical").threat is None
    lowering = (Signal("maintainer.shared_with_target", "jdalton maintains lodash", -3.0),)
    assert judge(context, lowering, evidence, "medium").threat is None
    assert judge(context, (), evidence, "medium").threat is None


@pytest.mark.parametrize(
    ("last", "expected"),
    [
        ({"type": "typosquat", "target": "lodash", "severity": "high"}, ("typosquat", "lodash", 0.75)),
        (
            {"type": "dependency_confusion", "target": "acme", "severity": "critical"},
            ("dependency_confusion", "acme", 0.9),
        ),
        ({"type": "typosquat", "target": "x", "severity": "low"}, ("typosquat", "x", 0.35)),
        ({"type": "malicious_package", "target": "MAL-1", "severity": "critical"}, None),
        ({"type": "typosquat", "target": "x", "severity": "unknown"}, None),
        ({"type": "typosquat", "severity": "high"}, None),
        (None, None),
    ],
)
def test_name_evidence_from_the_riskiest_threat(last: dict | None, expected: tuple | None) -> None:
    evidence = NameEvidence.from_last_threat(last)
    assert (None if evidence is None else (evidence.type, evidence.target, evidence.score)) == expected


def test_history_is_asked_for_only_when_a_first_release_would_weigh_on_something() -> None:
    plain = PackageMetadata("npm", "x", "1.0.0", description="d", repository="github:a/x")
    hooked = PackageMetadata("npm", "x", "1.0.0", install_scripts={"install": "node i.js"})
    evidence = NameEvidence("typosquat", "y", "medium")
    assert not needs_history(PublishContext("npm", "x", "1.0.0", metadata=plain), None, ())
    assert needs_history(PublishContext("npm", "x", "1.0.0", metadata=plain), evidence, ())
    assert needs_history(PublishContext("npm", "x", "1.0.0", metadata=hooked), None, ())
    assert needs_history(
        PublishContext("npm", "x", "99.0.0", metadata=plain), None, version_signals("x", "99.0.0")
    )
    assert not needs_history(
        PublishContext("npm", "x", "1.0.0"), evidence, ()
    )  # no metadata: enrichment skipped


# --- the threat event -----------------------------------------------------------------------------
def test_threat_event_lists_every_signal_and_keeps_the_schema() -> None:
    raw = b'{"name":"lodahs","version":"99.0.0","created_date":"2026-11-25T10:00:00Z","type":"npm"}'
    event = event_message(
        parse_publish(raw, 1 << 16), partition=0, offset=1, received_at="2026-11-25T10:00:01Z"
    )
    context = _context()
    verdict = judge(
        context, run_detectors(context).signals, NameEvidence("typosquat", "lodash", "medium"), "medium"
    )
    assert verdict.threat is not None
    message = threat_event(event, verdict.threat, "2026-11-25T10:00:02Z")
    Draft202012Validator(load_json_schema("threat_event")).validate(message)
    listed = message["threat"]["signals"]
    assert [s["kind"] for s in listed] == [s.kind for s in verdict.signals]
    assert all(set(s) == {"kind", "detail", "weight"} for s in listed)
    assert message["threat"]["evidence"][0] == verdict.threat.evidence
    assert len(message["threat"]["evidence"]) == 1 + len(listed)
    assert message["severity"] == verdict.severity == severity_for(verdict.score)
    assert message["id"] == threat_id_for(event["event_id"], verdict.threat)
    # ClickHouse: the signals ride in the existing evidence column
    row = threat_db_row(message)
    assert all(s.kind in row["evidence"] for s in verdict.signals)
    # a name-only threat's event is what it always was: no signals key
    plain = threat_event(event, NAME, "2026-11-25T10:00:02Z")
    assert "signals" not in plain["threat"] and plain["threat"]["evidence"] == [NAME.evidence]
