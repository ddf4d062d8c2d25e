"""One (squat, target) table per typo technique, negatives, and named regressions."""

from __future__ import annotations

import pytest

from typostream.agents.domain.detection.index import CandidateIndex
from typostream.agents.domain.detection.techniques import TECHNIQUES, Query
from typostream.agents.domain.detection.techniques.bitflip import bitflip_index, bitflips
from typostream.agents.domain.detection.techniques.insertion import inserted_index
from typostream.agents.domain.detection.techniques.omission import omitted_index
from typostream.agents.domain.detection.techniques.repetition import repeated_index
from typostream.agents.domain.detection.techniques.substitution import keyboard_adjacent, substituted_index
from typostream.agents.domain.detection.techniques.transposition import swapped_index

CASES = {
    "typosquat.omission": [("requst", "request"), ("lodsh", "lodash"), ("expess", "express")],
    "typosquat.repetition": [("reequest", "request"), ("axioss", "axios"), ("lodassh", "lodash")],
    "typosquat.transposition": [("lodahs", "lodash"), ("reqeust", "request"), ("bpi66", "bip66")],
    "typosquat.substitution": [("reqyest", "request"), ("commqnder", "commander"), ("4equest", "request")],
    "typosquat.bitflip": [("buffe2-xor", "buffer-xor"), ("jsmsha3", "js-sha3"), ("buffer-8or", "buffer-xor")],
    "typosquat.insertion": [("colour-string", "color-string")],
}
NEGATIVES = {
    "typosquat.omission": [("request", "request"), ("reqst", "request"), ("handlebar", "handlebars")],
    "typosquat.repetition": [("requesxt", "request")],
    "typosquat.transposition": [("lodash", "lodash"), ("ldoahs", "lodash")],
    "typosquat.substitution": [("jax-cuda12", "jax-cuda11"), ("xyz", "abc"), ("immediato", "immediate")],
    "typosquat.bitflip": [("base36-tools", "base16-tools")],
    "typosquat.insertion": [("gextend-lib", "extend-lib"), ("vue3-resize", "vue-resize")],
}


@pytest.mark.parametrize(
    ("tid", "squat", "target"), [(t, s, g) for t, rows in CASES.items() for s, g in rows]
)
def test_technique_matches(tid: str, squat: str, target: str, target_factory) -> None:
    assert TECHNIQUES[tid].match(Query.of(squat, "npm"), target_factory(target)) is not None


@pytest.mark.parametrize(
    ("tid", "squat", "target"), [(t, s, g) for t, rows in CASES.items() for s, g in rows]
)
def test_own_probes_find_the_target(tid: str, squat: str, target: str, target_factory) -> None:
    """A technique's ``probes`` find what it matches: it needs no other technique's lookups."""
    tech, wanted = TECHNIQUES[tid], target_factory(target)
    index = CandidateIndex.build("npm", [wanted, target_factory("zzzzzz-zzzz", rank=2)])
    found = [t for probe in tech.probes for t in probe(Query.of(squat, "npm"), index)]
    assert {t.name for t in found} == {target}


@pytest.mark.parametrize(
    ("tid", "squat", "target"), [(t, s, g) for t, rows in NEGATIVES.items() for s, g in rows]
)
def test_technique_negatives(tid: str, squat: str, target: str, target_factory) -> None:
    assert TECHNIQUES[tid].match(Query.of(squat, "npm"), target_factory(target, rank=50_000)) is None


def test_pure_functions() -> None:
    assert omitted_index("reqest", "request") == 3
    assert repeated_index("reequest", "request") == 1
    assert swapped_index("lodahs", "lodash") == 4
    assert substituted_index("reqyest", "request") == 3
    assert inserted_index("colour", "color") == 4
    assert bitflip_index("js-shas", "js-sha3") == 6
    assert keyboard_adjacent("g", "h") and not keyboard_adjacent("g", "p")
    assert "2" in bitflips("r")


def test_short_popular_names_need_high_rank(target_factory) -> None:
    omission = TECHNIQUES["typosquat.omission"]
    assert omission.applies(target_factory("react", rank=200))
    assert not omission.applies(target_factory("dayjz", rank=5_000))
    assert omission.applies(target_factory("ccxt", watched=True, rank=0))


def test_regression_digit_versions_are_not_substitutions(target_factory) -> None:
    """dev negatives: jax-cuda11-pjrt vs jax-cuda12-pjrt, base16 vs base36."""
    q = Query.of("jax-cuda11-pjrt", "pypi")
    assert (
        TECHNIQUES["typosquat.substitution"].match(q, target_factory("jax-cuda12-pjrt", "pypi", 100)) is None
    )


def test_trailing_omission_and_far_substitution_only_for_watchlist(target_factory) -> None:
    """mid negatives: handlebar/handlebars (base word), immediato/immediate (non-neighbouring key
    beyond the top ranks)."""
    omission, substitution = TECHNIQUES["typosquat.omission"], TECHNIQUES["typosquat.substitution"]
    assert omission.match(Query.of("expres", "npm"), target_factory("express", rank=5)) is None
    assert omission.match(Query.of("expres", "npm"), target_factory("express", watched=True)) is not None
    q = Query.of("immediato", "npm")
    assert substitution.match(q, target_factory("immediate", rank=1_000)) is None
    assert substitution.match(q, target_factory("immediate", watched=True)) is not None


def test_fused_js_does_not_count_for_the_length_gate(target_factory) -> None:
    """mid negative: days/dayjs (the distinctive part of ``dayjs`` is ``day``)."""
    from typostream.agents.domain.detection.index import distinctive_len

    assert distinctive_len("dayjs") == 3 and distinctive_len("js") == 2 and distinctive_len("lodash") == 6
    assert not TECHNIQUES["typosquat.omission"].applies(target_factory("dayjs", rank=865))
    assert TECHNIQUES["typosquat.omission"].applies(target_factory("dayjs", watched=True))
