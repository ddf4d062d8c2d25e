"""One (squat, target) table per typo technique, negatives, and named regressions."""

from __future__ import annotations

import pytest

from typostream.agents.detection.names import NameForms
from typostream.agents.detection.techniques import TECHNIQUES
from typostream.agents.detection.techniques.bitflip import bitflip_index, bitflips
from typostream.agents.detection.techniques.insertion import inserted_index
from typostream.agents.detection.techniques.omission import omitted_index
from typostream.agents.detection.techniques.repetition import repeated_index
from typostream.agents.detection.techniques.substitution import keyboard_adjacent, substituted_index
from typostream.agents.detection.techniques.transposition import swapped_index

CASES = {
    "typosquat.omission": [("requst", "request"), ("lodas", "lodash"), ("expres", "express")],
    "typosquat.repetition": [("reequest", "request"), ("axioss", "axios"), ("lodassh", "lodash")],
    "typosquat.transposition": [("lodahs", "lodash"), ("reqeust", "request"), ("bpi66", "bip66")],
    "typosquat.substitution": [("reqyest", "request"), ("commqnder", "commander"), ("4equest", "request")],
    "typosquat.bitflip": [("buffe2-xor", "buffer-xor"), ("jsmsha3", "js-sha3"), ("buffer-8or", "buffer-xor")],
    "typosquat.insertion": [("colour-string", "color-string")],
}
NEGATIVES = {
    "typosquat.omission": [("request", "request"), ("reqst", "request")],
    "typosquat.repetition": [("requesxt", "request")],
    "typosquat.transposition": [("lodash", "lodash"), ("ldoahs", "lodash")],
    "typosquat.substitution": [("jax-cuda12", "jax-cuda11"), ("xyz", "abc")],
    "typosquat.bitflip": [("base36-tools", "base16-tools")],
    "typosquat.insertion": [("gextend-lib", "extend-lib"), ("vue3-resize", "vue-resize")],
}


@pytest.mark.parametrize(
    ("tid", "squat", "target"), [(t, s, g) for t, rows in CASES.items() for s, g in rows]
)
def test_technique_matches(tid: str, squat: str, target: str, target_factory) -> None:
    assert TECHNIQUES[tid].match(NameForms.of(squat, "npm"), target_factory(target)) is not None


@pytest.mark.parametrize(
    ("tid", "squat", "target"), [(t, s, g) for t, rows in NEGATIVES.items() for s, g in rows]
)
def test_technique_negatives(tid: str, squat: str, target: str, target_factory) -> None:
    assert TECHNIQUES[tid].match(NameForms.of(squat, "npm"), target_factory(target, rank=50_000)) is None


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
    q = NameForms.of("jax-cuda11-pjrt", "pypi")
    assert (
        TECHNIQUES["typosquat.substitution"].match(q, target_factory("jax-cuda12-pjrt", "pypi", 100)) is None
    )
