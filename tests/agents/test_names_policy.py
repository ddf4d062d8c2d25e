"""names_policy: the schema's per-registry name rule and its explanation in words agree."""

from __future__ import annotations

import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from typostream.agents.domain.events import _validator
from typostream.agents.domain.names_policy import describe_character, invisible_character, name_problem

# Mostly the characters the grammars care about, plus a few no registry allows.
ALPHABET = string.ascii_letters + string.digits + "-_.~!*'()@/+#:% " + "\u202e\u200b\x85\x7f\ufe0f\u3164é😀Ａ"
NAMES = st.text(alphabet=ALPHABET, min_size=1, max_size=30)


def schema_accepts(name: str, registry: str) -> bool:
    doc = {"name": name, "version": "1.0.0", "created_date": "2026-11-25T10:00:00Z", "type": registry}
    try:
        _validator()(doc)
    except Exception:
        return False
    return True


@settings(max_examples=3000, database=None, deadline=None)
@given(name=NAMES, registry=st.sampled_from(["npm", "pypi"]))
def test_the_schema_pattern_and_the_explanation_agree(name: str, registry: str) -> None:
    assert schema_accepts(name, registry) == (name_problem(name, registry) is None), (
        name,
        name_problem(name, registry),
    )


@pytest.mark.parametrize("registry", ["npm", "pypi"])
def test_real_names_have_no_problem(registry: str) -> None:
    from typostream.data.names import iter_names, names_file

    assert [n for n in iter_names(names_file(registry)) if name_problem(n, registry)] == []


@pytest.mark.parametrize(
    ("name", "index"),
    [
        ("plain", None),
        ("café-ünïcode", None),  # a registry without a grammar may allow letters beyond ASCII
        ("emoji😀", None),
        ("a\u202eb", 1),
        ("ab\u200d", 2),
        ("a\u3164", 1),
        ("a\ufe0f", 1),
        ("a b", 1),
        ("a\u2028b", 1),
        ("\x9bx", 0),
        ("x\U000e0041", 1),  # a tag character
    ],
)
def test_invisible_characters_are_refused_for_every_registry(name: str, index: int | None) -> None:
    assert invisible_character(name) == index
    assert (name_problem(name, "some-future-registry") is None) == (index is None)


def test_description_is_ascii_and_names_the_code_point() -> None:
    assert (
        describe_character("x\u202e", 1)
        == "U+202E RIGHT-TO-LEFT OVERRIDE at index 1 (a bidirectional control)"
    )
    assert describe_character("\x00", 0) == "U+0000 at index 0 (a C0 control character)"
    assert describe_character("\ue000", 0) == "U+E000 at index 0 (a private-use character)"
