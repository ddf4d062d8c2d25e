"""Candidate index: the one-edit pre-filter, symmetric deletions, other scopes, and dispatch data."""

from __future__ import annotations

import random

import pytest

from typostream.agents.domain.detection.affixes import affix_cores, folded_cores
from typostream.agents.domain.detection.index import CandidateIndex, edit_keys
from typostream.agents.domain.detection.names import tokens
from typostream.agents.domain.detection.techniques import DEFAULT_TECHNIQUES, Query


def _one_edits(text: str, alphabet: str) -> set[str]:
    out = {text}
    for i in range(len(text) + 1):
        out.update(text[:i] + c + text[i:] for c in alphabet)
    for i in range(len(text)):
        out.add(text[:i] + text[i + 1 :])
        out.update(text[:i] + c + text[i + 1 :] for c in alphabet)
    for i in range(len(text) - 1):
        out.add(text[:i] + text[i + 1] + text[i] + text[i + 2 :])
    return out - {""}


def test_prefilter_never_misses_a_one_edit_neighbour(target_factory) -> None:
    rng = random.Random(3)
    for _ in range(300):
        target = "".join(rng.choice("abc") for _ in range(rng.randint(1, 9)))
        idx = CandidateIndex.build("npm", [target_factory(target)])
        for query in _one_edits(target, "abc"):
            assert idx.may_be_one_edit(query), (target, query)


def test_edit_keys_pieces() -> None:
    assert edit_keys("abcdefghi", 9) == ("abcdef", "efghi", "abc\x00hi")
    assert edit_keys("ab", 1) == ("ab"[:1], "", "\x00")


def test_prefilter_and_neighbours(target_factory) -> None:
    idx = CandidateIndex.build("npm", [target_factory("lodash"), target_factory("request")])
    assert idx.may_be_one_edit("lodahs") and idx.may_be_one_edit("reqest")
    assert not idx.may_be_one_edit("zzzzzz") and not idx.may_be_one_edit("webpack")
    assert {t.name for t in idx.within_one_edit("lodahs")} == {"lodash"}
    assert idx.within_one_edit("zzzzzz") == [] and idx.watched_edit == {}


def test_other_scopes(target_factory) -> None:
    idx = CandidateIndex.build("npm", [target_factory("@angular/core"), target_factory("@babel/core")])
    assert [t.name for t in idx.other_scopes("angullar", "core")] == ["@angular/core"]
    assert idx.other_scopes("angular", "cli") == [] and idx.other_scopes("zzz", "core") == []


def test_watched_edit_holds_watchlisted_targets_only(target_factory) -> None:
    idx = CandidateIndex.build("npm", [target_factory("lodash"), target_factory("openssl", watched=True)])
    assert {t.name for t in idx.within_one_edit("opensl", watched_only=True)} == {"openssl"}
    assert idx.within_one_edit("lodas", watched_only=True) == []


def test_tokens_and_folded_cores() -> None:
    assert tokens("@babel/plugin-x") == ["babel", "plugin", "x"] and tokens("a--b..c") == ["a", "b", "c"]
    assert folded_cores("node-0penssl") == [("0penssl", "prefix 'node'", "openssl")]
    assert [c[:2] for c in folded_cores("mysqljs")] == affix_cores("mysqljs")


@pytest.mark.parametrize(
    ("squat", "target"),
    [("requst", "request"), ("reequest", "request"), ("reqeust", "request"), ("reqyest", "request"),
     ("colour-string", "color-string"), ("buffe2-xor", "buffer-xor"), ("cofee-script", "coffeescript"),
     ("babelcli", "babel-cli"), ("parser-body", "body-parser")],
)  # fmt: skip
def test_length_deltas_admit_every_match(squat: str, target: str, target_factory) -> None:
    """The detector skips a technique whose ``length_deltas`` exclude the pair: never one that matches."""
    q, t = Query.of(squat, "npm"), target_factory(target, rank=1, watched=True)
    deltas = {len(q.key) - len(t.forms.key), len(q.squashed) - len(t.forms.squashed)}
    matched = [tech for tech in DEFAULT_TECHNIQUES.candidates if tech.match(q, t) is not None]
    assert matched
    for tech in matched:
        assert tech.length_deltas is None or deltas & tech.length_deltas, tech.id


def test_issue12_tables(target_factory) -> None:
    """by_singular (plurals), by_core (PyPI language words), typo_anchors (two typos, top ranks)."""
    from typostream.agents.domain.detection.index import CandidateIndex, anchor_key

    npm = CandidateIndex.build(
        "npm",
        [
            target_factory("body-parser", rank=1),
            target_factory("discord.js", rank=2),
            target_factory("tensorflow-lite", rank=3),
            target_factory("tensorflow-huge", rank=30_000),
            target_factory("@scope/a-long-name", rank=4),
        ],
    )
    assert [t.name for t in npm.by_singular["bodyparser"]] == ["body-parser"]
    assert not npm.by_core  # npm protects no language-less cores
    assert [t.name for t in npm.typo_anchors[anchor_key("tensorflow-lite", len("tensorflow-lite") - 2)]] == [
        "tensorflow-lite"
    ]
    assert all(t.rank <= 20_000 and t.forms.scope is None for ts in npm.typo_anchors.values() for t in ts)
    assert [t.name for t in npm.two_typo_candidates("tenosrflow-ltie")] == ["tensorflow-lite"]
    pypi = CandidateIndex.build("pypi", [target_factory("discord.py", "pypi", rank=1)])
    assert [t.name for t in pypi.by_core["dlscord"]] == ["discord.py"]  # skeleton: i folds to l
