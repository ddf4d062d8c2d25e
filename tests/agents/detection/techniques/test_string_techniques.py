"""Homoglyph, separator, reorder, combosquat, scope confusion, multi-edit, dependency confusion."""

from __future__ import annotations

import pytest

from typostream.agents.domain.detection.affixes import affix_cores
from typostream.agents.domain.detection.index import CandidateIndex
from typostream.agents.domain.detection.techniques import DEFAULT_TECHNIQUES, TECHNIQUES, Query
from typostream.agents.domain.detection.techniques.homoglyph import is_homoglyph
from typostream.agents.domain.detection.techniques.reorder import is_reordered
from typostream.agents.domain.detection.techniques.scope import legacy_families
from typostream.agents.domain.detection.techniques.separator import is_separator_change, js_spelling

CASES = [
    ("typosquat.homoglyph", "k0a-multer", "koa-multer"),
    ("typosquat.homoglyph", "reqսests", "requests"),
    ("typosquat.homoglyph", "rnongoose", "mongoose"),
    ("typosquat.homoglyph", "pаypal-sdk", "paypal-sdk"),
    ("typosquat.separator", "babelcli", "babel-cli"),
    ("typosquat.separator", "cross_env", "cross-env"),
    ("typosquat.reorder", "parser-body", "body-parser"),
    ("typosquat.combosquat", "nodemailer-js", "nodemailer"),
    ("typosquat.combosquat", "node-openssl", "openssl"),
    ("typosquat.combosquat", "mysqljs", "mysql"),
    ("typosquat.combosquat", "python-requests", "requests"),
    ("typosquat.combosquat", "lodash4", "lodash"),
    ("typosquat.scope_confusion", "sentry-node", "@sentry/node"),
    ("typosquat.scope_confusion", "@angullar/core", "@angular/core"),
]


@pytest.mark.parametrize(("tid", "squat", "target"), CASES)
def test_matches(tid: str, squat: str, target: str, target_factory) -> None:
    assert TECHNIQUES[tid].match(Query.of(squat, "npm"), target_factory(target, rank=10)) is not None


def test_pure_predicates() -> None:
    assert is_homoglyph("l0dash", "lodash") and not is_homoglyph("lodash", "lodash")
    assert is_separator_change("foo_bar", "foo-bar") and not is_separator_change("foobar", "foobar")
    assert is_reordered("b-a", "a-b") and not is_reordered("a-b", "a-b")
    assert ("openssl", "prefix 'node'") in affix_cores("node-openssl")
    assert affix_cores("react-dom") == []


def test_multi_edit_any_two_edits_for_watchlist_two_typos_for_popular(target_factory) -> None:
    tech = TECHNIQUES["typosquat.multi_edit"]
    assert tech.applies(target_factory("bitcoinjs-lib", watched=True, rank=0))
    assert tech.applies(target_factory("bitcoinjs-lib", rank=5))
    assert not tech.applies(target_factory("lodash", rank=5))  # too short for two edits
    assert tech.match(Query.of("bitcoisnj-lib", "npm"), target_factory("bitcoinjs-lib")) is not None
    # any two edits of a watchlisted name; only two typos of a popular one
    assert tech.match(Query.of("bitcoxxjs-lib", "npm"), target_factory("bitcoinjs-lib", watched=True, rank=0))
    assert tech.match(Query.of("bitcoxxjs-lib", "npm"), target_factory("bitcoinjs-lib")) is None


def test_dependency_confusion(target_factory) -> None:
    tech = TECHNIQUES["dependency_confusion.public_publish"]
    q = Query.of("acme-internal", "npm")
    assert tech.match(q, target_factory("acme-internal", rank=0, watched=True)) is not None
    assert tech.match(q, target_factory("acme-internal", rank=3, watched=True)) is None
    assert tech.match(q, target_factory("acme-internals", rank=0, watched=True)) is None
    # it judges the exact watched key only, of any length and scoped or not, and is conclusive
    assert tech.exact_key and tech.forces_malicious and tech.scoped_queries and not tech.probes
    assert tech.applies(target_factory("x", rank=0, watched=True))


def test_registry_is_explicit_and_ids_are_dotted() -> None:
    assert DEFAULT_TECHNIQUES.exact == (TECHNIQUES["dependency_confusion.public_publish"],)
    assert set(DEFAULT_TECHNIQUES.candidates) == set(TECHNIQUES.values()) - set(DEFAULT_TECHNIQUES.exact)
    for tid, tech in TECHNIQUES.items():
        assert tid == tech.id and "." in tid and tech.description and tech.severity


@pytest.mark.parametrize(("tid", "squat", "target"), CASES)
def test_own_probes_find_the_target(tid: str, squat: str, target: str, target_factory) -> None:
    """A technique's ``probes`` find what it matches: it needs no other technique's lookups."""
    tech, wanted = TECHNIQUES[tid], target_factory(target, rank=10)
    index = CandidateIndex.build("npm", [wanted, target_factory("zzzzzz-zzzz", rank=11)])
    found = [t for probe in tech.probes for t in probe(Query.of(squat, "npm"), index)]
    assert {t.name for t in found} == {target}


def _match(tid: str, squat: str, target) -> bool:
    return TECHNIQUES[tid].match(Query.of(squat, "npm"), target) is not None


@pytest.mark.parametrize(
    ("tid", "squat", "target"),
    [
        ("typosquat.combosquat", "pretty-format2", "pretty-format"),  # forks of multi-word names
        ("typosquat.combosquat", "gauge-ts", "gauge"),  # TypeScript ports
        ("typosquat.combosquat", "ts-dot-prop", "dot-prop"),
        ("typosquat.separator", "fft-js", "fft.js"),  # one name, three npm spellings
        ("typosquat.separator", "loadjs", "load-js"),
        ("typosquat.scope_confusion", "@eui/base", "@mui/base"),  # short scopes: other organisations
        ("typosquat.scope_confusion", "babel-plugin-x", "@babel/plugin-x"),  # babel-* before @babel
        ("typosquat.reorder", "serverless-sentry", "@sentry/serverless"),  # community plugin naming
    ],
)
def test_popular_only_negatives(tid: str, squat: str, target: str, target_factory) -> None:
    """mid-band naming conventions: not flagged for popular names, still flagged for watchlisted ones."""
    assert not _match(tid, squat, target_factory(target, rank=10))
    assert _match(tid, squat, target_factory(target, rank=0, watched=True))


def test_naming_convention_predicates() -> None:
    assert js_spelling("fft-js", "fft.js") and js_spelling("fftjs", "fft.js")
    assert not js_spelling("babelcli", "babel-cli") and not js_spelling("a-js", "b.js")
    assert legacy_families(["babel-core", "babel-loader", "babel-jest", "jest-cli", "react"]) == {"babel"}
    assert legacy_families(["babel-core", "babel-loader"], min_names=3) == frozenset()
