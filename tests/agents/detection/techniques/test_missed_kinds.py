"""The kinds of real squat issue 12 listed as missed: each with a constructed positive, the probe
that finds it, and negatives (how legitimate names near popular ones are formed).

All names here are constructed for the tests; none is taken from the dev set.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from typostream.agents.domain.detection import Detector
from typostream.agents.domain.detection.index import CandidateIndex, Target, anchor_key, singular_key
from typostream.agents.domain.detection.techniques import TECHNIQUES, Query, TechniqueSet
from typostream.agents.domain.detection.techniques.combosquat import families, family_counts
from typostream.agents.domain.detection.techniques.insertion import appended_typo
from typostream.agents.domain.detection.techniques.multi_edit import one_typo, two_typos
from typostream.agents.domain.detection.techniques.plural import plural_change
from typostream.agents.domain.detection.techniques.substitution import keyboard_adjacent, looks_alike
from typostream.agents.domain.detection.tunables import (
    APPEND_MAX_RANK,
    CODE_NAME_MAX_RANK,
    NON_ADJACENT_MAX_RANK,
    OMIT_LAST_MAX_RANK,
    PLURAL_MAX_RANK,
    SCOPE_DROP_MAX_RANK,
    SHORT_SUBSTITUTION_MAX_RANK,
    SHORT_WORD_MAX_RANK,
    TWO_TYPO_MAX_RANK,
    WEAK_SIGNAL_MAX_RANK,
)

Factory = Callable[..., Target]


def matches(tid: str, squat: str, target: Target, registry: str = "npm") -> bool:
    return TECHNIQUES[tid].match(Query.of(squat, registry), target) is not None


def build_detector(targets: list[Target], registry: str = "npm") -> Detector:
    """A detector over ``targets`` alone, running every registered technique."""
    index = CandidateIndex.build(registry, targets)
    return Detector({registry: index}, {registry: frozenset()}, TechniqueSet.of(TECHNIQUES.values()))


def flagged(det: Detector, name: str, registry: str = "npm") -> list[tuple[str, str]]:
    return [(t.target, t.technique) for t in det.scan(name, registry).threats]


# --- an npm scoped name republished unscoped -----------------------------------------------------
def test_scope_dropped_to_the_bare_name_of_a_watchlisted_name(target_factory: Factory) -> None:
    det = build_detector([target_factory("@acme/billing-client", rank=0, watched=True)])
    assert flagged(det, "billing-client") == [("@acme/billing-client", "scope_confusion")]
    det = build_detector([target_factory("@acme/cli", rank=0, watched=True)])
    assert flagged(det, "cli") == [("@acme/cli", "scope_confusion")]  # any length: the user asked
    assert ("@acme/cli", "scope_confusion") not in flagged(det, "@acme/cli")  # the owner's own name


def test_scope_dropped_to_the_bare_name_of_a_popular_name(target_factory: Factory) -> None:
    target = target_factory("@ungap-x/structured-clone", rank=10)
    assert matches("typosquat.scope_confusion", "structured-clone", target)
    # a one-word bare name is usually an older, unscoped package (``generator``, ``@babel/generator``)
    assert not matches(
        "typosquat.scope_confusion", "generator", target_factory("@babel-x/generator", rank=10)
    )
    # and beyond the rank limit scope drops are legacy names
    far = target_factory("@ungap-x/structured-clone", rank=SCOPE_DROP_MAX_RANK + 1)
    assert not matches("typosquat.scope_confusion", "structured-clone", far)
    # other scoped names are not bare-name drops
    assert not matches("typosquat.scope_confusion", "@other/structured-clone", far)


# --- one character appended to the end of a very popular name ------------------------------------
def test_letter_appended_to_a_top_name(target_factory: Factory) -> None:
    assert matches("typosquat.insertion", "eslintz", target_factory("eslint", rank=10))
    assert matches("typosquat.insertion", "webpackq", target_factory("webpack", rank=APPEND_MAX_RANK))
    assert not matches("typosquat.insertion", "webpackq", target_factory("webpack", rank=APPEND_MAX_RANK + 1))
    # English derivations and digits are how names are derived; a trailing s is the plural's
    for squat, target in (("resolver", "resolve"), ("finished", "finishe"), ("eslint2", "eslint")):
        assert not matches("typosquat.insertion", squat, target_factory(target, rank=10))
    assert not appended_typo("eslints", "eslint") and not appended_typo("reacty", "react")
    assert not matches("typosquat.insertion", "chalkx", target_factory("chalk", rank=10))  # too short


def test_last_letter_dropped_from_a_top_name(target_factory: Factory) -> None:
    assert matches("typosquat.omission", "lodas", target_factory("lodash", rank=10))
    assert not matches("typosquat.omission", "lodas", target_factory("lodash", rank=OMIT_LAST_MAX_RANK + 1))
    for squat, target in (("handlebar", "handlebars"), ("sanitize", "sanitizer"), ("urllib", "urllib3")):
        assert not matches("typosquat.omission", squat, target_factory(target, rank=10))


# --- a trailing s added or dropped ----------------------------------------------------------------
@pytest.mark.parametrize(
    ("squat", "target"),
    [
        ("body-parsers", "body-parser"),
        ("prop-type", "prop-types"),
        ("mongooses", "mongoose"),
        ("cookies-parser", "cookie-parser"),
        ("cookieparsers", "cookie-parser"),
    ],
)
def test_plural(squat: str, target: str, target_factory: Factory) -> None:
    wanted = target_factory(target, rank=10)
    assert matches("typosquat.plural", squat, wanted)
    det = build_detector([wanted, target_factory("zzzzzz-zzzz", rank=11)])
    assert (target, "plural") in flagged(det, squat)


def test_plural_negatives(target_factory: Factory) -> None:
    plural = TECHNIQUES["typosquat.plural"]
    assert not matches("typosquat.plural", "mongoose", target_factory("mongoose", rank=10))
    assert not matches("typosquat.plural", "acces", target_factory("access", rank=10))  # ss is no plural
    assert not plural.applies(target_factory("chalk", rank=10))  # ``chalks``: too short to trust
    assert not plural.applies(target_factory("body-parser", rank=PLURAL_MAX_RANK + 1))
    assert plural.applies(target_factory("chalk", rank=0, watched=True))
    assert singular_key(["typing", "extensions"]) == "typingextension"
    assert singular_key(["aws", "sdk"]) == "awssdk"  # short words keep their s
    assert plural_change(["a", "b"], ["a", "b"]) is None


# --- look-alike letters, other layouts, short top names, very top names, code-like names ---------
def test_look_alike_letters_that_are_not_neighbours(target_factory: Factory) -> None:
    assert looks_alike("q", "g") and not keyboard_adjacent("q", "g")
    assert matches("typosquat.substitution", "reguest", target_factory("request", rank=WEAK_SIGNAL_MAX_RANK))
    assert not matches(
        "typosquat.substitution", "rexuest", target_factory("request", rank=WEAK_SIGNAL_MAX_RANK)
    )


def test_the_same_key_on_another_layout_is_a_neighbour(target_factory: Factory) -> None:
    assert keyboard_adjacent("y", "z") and keyboard_adjacent("w", "z")  # QWERTZ, AZERTY
    assert matches("typosquat.substitution", "pztest", target_factory("pytest", rank=3_000), "pypi")
    assert matches("typosquat.substitution", "zebpack", target_factory("webpack", rank=3_000))


def test_neighbouring_keys_on_short_top_names(target_factory: Factory) -> None:
    substitution = TECHNIQUES["typosquat.substitution"]
    jest = target_factory("jest", rank=SHORT_SUBSTITUTION_MAX_RANK)
    assert substitution.applies(jest) and matches("typosquat.substitution", "jesr", jest)
    assert not matches(
        "typosquat.substitution", "jesr", target_factory("jest", rank=SHORT_SUBSTITUTION_MAX_RANK + 1)
    )
    assert not matches("typosquat.substitution", "jexy", jest)  # two letters
    assert not matches("typosquat.substitution", "jesp", jest)  # not a neighbour of t


def test_any_letter_on_the_very_top_names(target_factory: Factory) -> None:
    assert matches("typosquat.substitution", "requpsts", target_factory("requests", rank=5), "pypi")
    far = target_factory("requests", rank=NON_ADJACENT_MAX_RANK + 1)
    assert not matches("typosquat.substitution", "requpsts", far, "pypi")
    # immediato/immediate: beyond the top ranks far substitutions are other words
    assert not matches("typosquat.substitution", "immediato", target_factory("immediate", rank=1_000))


def test_any_character_in_code_like_names(target_factory: Factory) -> None:
    target = target_factory("base58-check", rank=CODE_NAME_MAX_RANK)
    for squat in ("bace58-check", "b4se58-check", "base5x-check"):
        assert matches("typosquat.substitution", squat, target)
    assert not matches("typosquat.substitution", "base59-check", target)  # digit for digit: a version
    assert not matches("typosquat.substitution", "asn1-ts", target_factory("asn1-js", rank=100))  # TS port
    assert not matches("typosquat.substitution", "bace-check", target_factory("base-check", rank=1_000))
    assert not matches(
        "typosquat.substitution", "bace58-check", target_factory("base58-check", rank=CODE_NAME_MAX_RANK + 1)
    )


# --- two typos in a long top-ranked name ---------------------------------------------------------
@pytest.mark.parametrize(
    ("squat", "target", "kinds"),
    [
        ("matpllotllib", "matplotlib", ("repetition", "repetition")),
        ("tenorflpw", "tensorflow", ("omission", "substitution")),
        ("reqeusst-toolbelt", "requests-toolbelt", ("transposition", "transposition")),
        ("handelbras-runtime", "handlebars-runtime", ("transposition", "transposition")),
    ],
)
def test_two_typos(squat: str, target: str, kinds: tuple[str, str], target_factory: Factory) -> None:
    assert two_typos(squat, target) == kinds
    wanted = target_factory(target, rank=TWO_TYPO_MAX_RANK)
    assert matches("typosquat.multi_edit", squat, wanted)
    det = build_detector([wanted, target_factory("zzzzzz-zzzz", rank=11)])
    assert (target, "multi_edit") in flagged(det, squat)


def test_two_typos_negatives(target_factory: Factory) -> None:
    for squat, target in (
        ("validate", "validator"),  # derived words differ at the end
        ("stylint", "stylelint"),  # abbreviations drop letters: two omissions are not a kind
        ("pass-stream", "pause-stream"),  # a short word
        ("bitcoxxjs-lib", "bitcoinjs-lib"),  # two far substitutions
        ("xensorflox", "tensorflow"),  # the ends of the name
    ):
        assert two_typos(squat, target) is None, squat
    assert not matches(
        "typosquat.multi_edit", "tenorflpw", target_factory("tensorflow", rank=TWO_TYPO_MAX_RANK + 1)
    )
    assert one_typo("tensorflw", "tensorflow") == ("omission", 8)
    assert anchor_key("lodash") is None or len(anchor_key("lodash") or "") == 5


# --- a popular name with a word added, swapped language words -------------------------------------
def test_language_words_count_against_every_popular_name(target_factory: Factory) -> None:
    far = target_factory("express", rank=15_000)
    assert matches("typosquat.combosquat", "express-node", far)
    assert matches("typosquat.combosquat", "nodeexpress", far)
    assert not matches("typosquat.combosquat", "express-dev", far)  # other affixes: top ranks only
    assert matches(
        "typosquat.combosquat", "express-dev", target_factory("express", rank=WEAK_SIGNAL_MAX_RANK)
    )
    pypi = target_factory("fastdownloader", "pypi", rank=14_000)
    assert matches("typosquat.combosquat", "pyfastdownloader", pypi, "pypi")
    assert not matches("typosquat.combosquat", "node-fastdownloader", pypi, "pypi")  # npm's words


def test_language_word_swapped_on_pypi(target_factory: Factory) -> None:
    target = target_factory("discord.py", "pypi", rank=1_600)
    for squat in ("pydiscord", "discord-python", "python-discord", "discord"):
        assert matches("typosquat.combosquat", squat, target, "pypi"), squat
    det = build_detector([target, target_factory("zzzzzz-zzzz", "pypi", rank=11)], "pypi")
    assert ("discord.py", "combosquat") in flagged(det, "pydiscord", "pypi")
    # npm spells one project node-x, x-js, x.js: no core protection there
    assert not matches("typosquat.combosquat", "discord", target_factory("discord.js", rank=1_600))
    assert not matches("typosquat.combosquat", "discord-bot", target, "pypi")


def test_short_extra_word_on_a_top_name(target_factory: Factory) -> None:
    assert "chokidar" not in families("npm")[0]
    assert matches(
        "typosquat.combosquat", "chokidar-qz", target_factory("chokidar", rank=SHORT_WORD_MAX_RANK)
    )
    assert matches("typosquat.combosquat", "qz-chokidar", target_factory("chokidar", rank=100))
    assert not matches(
        "typosquat.combosquat", "chokidar-qz", target_factory("chokidar", rank=SHORT_WORD_MAX_RANK + 1)
    )
    assert not matches("typosquat.combosquat", "chokidar-q2", target_factory("chokidar", rank=100))
    # a family head: ``eslint-*`` names are plugins
    assert "eslint" in families("npm")[0]
    assert not matches("typosquat.combosquat", "eslint-qz", target_factory("eslint", rank=100))


def test_family_counts() -> None:
    heads, tails = family_counts(["eslint-plugin-x", "eslint-config-y", "babel-loader", "css-loader"])
    assert heads["eslint"] == 2 and heads["eslintplugin"] == 1 and tails["loader"] == 2


# --- end to end on the bundled snapshots -------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "registry", "target", "technique"),
    [
        ("body-parsers", "npm", "body-parser", "plural"),
        ("pztest", "pypi", "pytest", "substitution"),
        ("matpllotllib", "pypi", "matplotlib", "multi_edit"),
        ("pydiscord", "pypi", "discord-py", "combosquat"),
        ("express-node", "npm", "express", "combosquat"),
    ],
)
def test_bundled_index(name: str, registry: str, target: str, technique: str, detector: Detector) -> None:
    assert (target, technique) in flagged(detector, name, registry)
