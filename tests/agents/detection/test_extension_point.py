"""The extension point: a technique plugged in from outside is run by the unchanged detector."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import ClassVar

import pytest

from typostream.agents.domain.detection import Detector, ScanResult
from typostream.agents.domain.detection.affixes import folded_cores
from typostream.agents.domain.detection.index import CandidateIndex, Target
from typostream.agents.domain.detection.names import NameForms
from typostream.agents.domain.detection.techniques import (
    DEFAULT_TECHNIQUES,
    TECHNIQUES,
    Match,
    Probe,
    Query,
    Technique,
    TechniqueSet,
)
from typostream.agents.domain.detection.techniques.combosquat import affixed_cores
from typostream.agents.domain.detection.techniques.multi_edit import typo_anchored
from typostream.agents.domain.detection.techniques.plural import singulars
from typostream.agents.domain.detection.techniques.probes import look_alikes, neighbours
from typostream.agents.domain.detection.techniques.scope import scoped_bare


def reversed_key(query: Query, index: CandidateIndex) -> Sequence[Target]:
    """A throw-away probe: the target spelt backwards."""
    hit = index.by_key.get(query.key[::-1])
    return () if hit is None else (hit,)


class Reversal(Technique):
    """A throw-away technique the detector has never heard of."""

    id = "typosquat.reversal"
    description = "The protected name spelt backwards."
    confidence = 0.8
    probes: ClassVar[tuple[Probe, ...]] = (reversed_key,)

    def match(self, query: Query, target: Target) -> Match | None:
        if query.key[::-1] != target.forms.key:
            return None
        return Match(f"reverses '{target.forms.key}'", self.confidence, 0)


class ExactCopy(Technique):
    """A throw-away exact-key technique: flags any watchlisted name published as it is."""

    id = "dependency_confusion.exact_copy"
    description = "A watchlisted name published as it is."
    confidence = 0.5
    min_len_watchlist = 0
    exact_key = True

    def match(self, query: Query, target: Target) -> Match | None:
        return Match("is a copy", self.confidence, 0) if target.watched else None


def counting(probe: Probe, calls: list[str]) -> Probe:
    def counted(query: Query, index: CandidateIndex) -> Iterable[Target]:
        calls.append(query.key)
        return probe(query, index)

    return counted


def build(targets: list[Target], techniques: Iterable[Technique], registry: str = "npm") -> Detector:
    index = CandidateIndex.build(registry, targets)
    return Detector({registry: index}, {registry: frozenset()}, TechniqueSet.of(techniques))


@pytest.fixture
def popular(target_factory: Callable[..., Target]) -> list[Target]:
    return [target_factory(name, rank=i + 1) for i, name in enumerate(["lodash", "express", "request"])]


def test_a_plugged_in_technique_is_run_without_detector_changes(popular: list[Target]) -> None:
    assert build(popular, TECHNIQUES.values()).scan("hsadol", "npm").verdict == "clean"
    result = build(popular, (*TECHNIQUES.values(), Reversal())).scan("hsadol", "npm")
    [threat] = result.threats
    assert (threat.type, threat.technique, threat.target) == ("typosquat", "reversal", "lodash")
    assert result.verdict == "suspicious" and "reverses 'lodash'" in threat.evidence


def test_a_probe_declared_twice_runs_once_per_scan(popular: list[Target]) -> None:
    calls: list[str] = []
    shared = counting(reversed_key, calls)

    class Again(Reversal):
        id = "typosquat.reversal_again"
        probes = (shared,)

    class Once(Reversal):
        probes = (shared,)

    det = build(popular, (Once(), Again()))
    assert det.scan("hsadol", "npm").threats[0].technique == "reversal"
    assert calls == ["hsadol"]


def test_scoped_names_run_only_the_probes_of_techniques_that_compare_them(
    target_factory: Callable[..., Target],
) -> None:
    unscoped_calls: list[str] = []
    scoped_calls: list[str] = []

    class Unscoped(Reversal):
        probes = (counting(reversed_key, unscoped_calls),)

    class Scoped(Reversal):
        id = "typosquat.scoped_reversal"
        scoped_queries = True
        probes = (counting(reversed_key, scoped_calls),)

    det = build([target_factory("@types/node")], (Unscoped(), Scoped()))
    det.scan("@acme/thing", "npm")
    det.scan("thing", "npm")
    assert scoped_calls == ["@acme/thing", "thing"] and unscoped_calls == ["thing"]
    assert DEFAULT_TECHNIQUES.scoped_probes == (look_alikes,)
    assert DEFAULT_TECHNIQUES.probes == (
        look_alikes,
        scoped_bare,
        neighbours,
        singulars,
        affixed_cores,
        typo_anchored,
    )


def test_a_technique_may_leave_probes_out_of_scoped_scans(target_factory: Callable[..., Target]) -> None:
    """``scoped_probes``: a probe that only finds targets for unscoped names is not run for
    scoped ones (scope confusion's ``scoped_bare``)."""
    calls: list[str] = []

    class Both(Reversal):
        scoped_queries = True
        probes = (counting(reversed_key, calls), look_alikes)
        scoped_probes = (look_alikes,)

    det = build([target_factory("lodash")], (Both(),))
    det.scan("@acme/thing", "npm")
    det.scan("thing", "npm")
    assert calls == ["thing"]


def test_exact_key_techniques_judge_the_watched_key_only(target_factory) -> None:
    watched = target_factory("acme-billing", rank=0, watched=True)
    det = build([watched], (*DEFAULT_TECHNIQUES.candidates, ExactCopy()))
    copy = det.scan("acme-billing", "npm")
    assert [(t.type, t.technique) for t in copy.threats] == [("dependency_confusion", "exact_copy")]
    assert copy.verdict == "suspicious"  # a low score and no forces_malicious
    typo = det.scan("acme-biling", "npm")
    assert [t.technique for t in typo.threats] == ["omission"]  # not judged by the exact technique

    class Conclusive(ExactCopy):
        forces_malicious = True

    assert build([watched], (Conclusive(),)).scan("acme-billing", "npm").verdict == "malicious"


def test_dependency_confusion_is_conclusive_through_the_same_hook(target_factory) -> None:
    det = build([target_factory("@a/bc", rank=0, watched=True)], TECHNIQUES.values())
    result = det.scan("@a/bc", "npm")
    assert result.verdict == "malicious"
    assert [t.type for t in result.threats] == ["dependency_confusion"]
    assert result.threats[0].score < 0.9  # malicious for the technique, not the score


def test_a_candidate_technique_must_declare_probes() -> None:
    class Blind(Reversal):
        probes = ()

    with pytest.raises(ValueError, match=r"typosquat\.reversal declares no probes"):
        TechniqueSet.of([Blind()])
    assert TechniqueSet.of([ExactCopy()]).exact  # exact-key techniques need none


def test_query_is_the_name_forms_plus_shared_data() -> None:
    query = Query.of("Node-OpenSSL", "npm")
    assert isinstance(query, NameForms) and tuple(query) == tuple(NameForms.of("Node-OpenSSL", "npm"))
    assert query.words == ["node", "openssl"]
    assert query.cores == folded_cores("node-openssl") == [("openssl", "prefix 'node'", "openssl")]
    assert Query.of("lodash", "npm").cores == []
    scoped = Query.of("@acme/node-x", "npm")
    assert scoped.words == ["acme", "node", "x"] and scoped.cores == []  # computed on first use
    # a Query built without ``of`` computes the same data on first use
    rebuilt = Query._make(NameForms.of("Node-OpenSSL", "npm"))
    assert rebuilt.words == query.words and rebuilt.cores == query.cores


def test_derived_data_is_computed_once_per_query() -> None:
    calls: list[str] = []

    def reversed_name(query: Query) -> str:
        calls.append(query.key)
        return query.key[::-1]

    query, other = Query.of("lodash", "npm"), Query.of("express", "npm")
    assert query.derived(reversed_name) == query.derived(reversed_name) == "hsadol"
    assert other.derived(reversed_name) == "sserpxe"
    assert calls == ["lodash", "express"]
    assert query.derived(lambda q: q.key.upper()) == "LODASH"  # another function, another entry


def test_clean_results_are_plain_scan_results(detector: Detector) -> None:
    first, second = detector.scan("zzqqxxvv", "npm"), detector.scan("zzqqxxvv", "npm")
    assert first == ScanResult("zzqqxxvv", "npm") and first.verdict == "clean" and first.threats == []
    assert first.threats is not second.threats  # never a shared list
    with pytest.raises(AttributeError):
        first.verdict = "malicious"  # type: ignore[misc]
