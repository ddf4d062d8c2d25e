"""Homoglyph, separator, reorder, combosquat, scope confusion, multi-edit, dependency confusion."""

from __future__ import annotations

import pytest

from typostream.agents.domain.detection.names import NameForms
from typostream.agents.domain.detection.techniques import TECHNIQUES, TYPOSQUAT_TECHNIQUES
from typostream.agents.domain.detection.techniques.combosquat import affix_cores
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
    assert TECHNIQUES[tid].match(NameForms.of(squat, "npm"), target_factory(target, rank=10)) is not None


def test_pure_predicates() -> None:
    assert is_homoglyph("l0dash", "lodash") and not is_homoglyph("lodash", "lodash")
    assert is_separator_change("foo_bar", "foo-bar") and not is_separator_change("foobar", "foobar")
    assert is_reordered("b-a", "a-b") and not is_reordered("a-b", "a-b")
    assert ("openssl", "prefix 'node'") in affix_cores("node-openssl")
    assert affix_cores("react-dom") == []


def test_multi_edit_only_for_watchlist(target_factory) -> None:
    tech = TECHNIQUES["typosquat.multi_edit"]
    assert not tech.applies(target_factory("bitcoinjs-lib", rank=5))
    assert tech.applies(target_factory("bitcoinjs-lib", watched=True, rank=0))
    assert tech.match(NameForms.of("bitcoisnj-lib", "npm"), target_factory("bitcoinjs-lib")) is not None


def test_dependency_confusion(target_factory) -> None:
    tech = TECHNIQUES["dependency_confusion.public_publish"]
    q = NameForms.of("acme-internal", "npm")
    assert tech.match(q, target_factory("acme-internal", rank=0, watched=True)) is not None
    assert tech.match(q, target_factory("acme-internal", rank=3, watched=True)) is None


def test_registry_is_explicit_and_ids_are_dotted() -> None:
    assert len(TECHNIQUES) == len(TYPOSQUAT_TECHNIQUES) + 1
    for tid, tech in TECHNIQUES.items():
        assert tid == tech.id and "." in tid and tech.description and tech.severity


def _match(tid: str, squat: str, target) -> bool:
    return TECHNIQUES[tid].match(NameForms.of(squat, "npm"), target) is not None


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
