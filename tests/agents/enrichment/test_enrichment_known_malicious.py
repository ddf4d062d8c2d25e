"""KnownMalicious: OSV files and directories, OSV version-range semantics, normalization, the bundled seed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from typostream.agents.domain.advisories import KnownMalicious
from typostream.agents.domain.errors import AdvisoryFileError


def _osv(advisory_id: str, ecosystem: str, name: str, **affected: Any) -> dict[str, Any]:
    return {
        "schema_version": "1.5.0",
        "id": advisory_id,
        "summary": f"Malicious code in {name} ({ecosystem})",
        "affected": [{"package": {"ecosystem": ecosystem, "name": name}, **affected}],
    }


ALL = {"ranges": [{"type": "SEMVER", "events": [{"introduced": "0"}]}]}


@pytest.fixture
def osv_tree(tmp_path: Path) -> Path:
    """A small ossf/malicious-packages-like tree: osv/malicious/<ecosystem>/<name>/MAL-*.json."""
    root = tmp_path / "osv" / "malicious"
    files = {
        "npm/evil-all/MAL-0001.json": _osv("MAL-0001", "npm", "evil-all", **ALL),
        "npm/@scope/Pkg/MAL-0002.json": _osv("MAL-0002", "npm", "@Scope/Pkg", versions=["1.0.1", "1.0.2"]),
        "pypi/Foo_Bar/MAL-0003.json": _osv("MAL-0003", "PyPI", "Foo_Bar.Baz", versions=["0.1"]),
        "rubygems/x/MAL-0004.json": _osv("MAL-0004", "RubyGems", "x", **ALL),
        "npm/bounded/MAL-0005.json": _osv(
            "MAL-0005",
            "npm",
            "bounded",
            versions=["2.0.0"],
            ranges=[{"type": "SEMVER", "events": [{"introduced": "0"}, {"fixed": "1.0.0"}]}],
        ),
        "npm/gone/MAL-0006.json": {
            **_osv("MAL-0006", "npm", "gone", **ALL),
            "withdrawn": "2024-01-01T00:00:00Z",
        },
        "npm/evil-all/MAL-0007.json": _osv("MAL-0007", "npm", "evil-all", versions=["3.0.0"]),
    }
    for rel, doc in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(doc))
    (root / "README.md").write_text("not json, ignored")
    return root


@pytest.fixture
def known(osv_tree: Path) -> KnownMalicious:
    return KnownMalicious.from_paths([osv_tree])


def test_all_versions_range(known: KnownMalicious) -> None:
    matches = known.lookup("npm", "evil-all", "9.9.9")
    assert [(m.advisory_id, m.all_versions) for m in matches] == [("MAL-0001", True)]
    assert known.lookup("npm", "evil-all", None)[0].advisory_id == "MAL-0001"


def test_all_versions_and_exact_version_advisories_combine(known: KnownMalicious) -> None:
    assert [m.advisory_id for m in known.lookup("npm", "evil-all", "3.0.0")] == ["MAL-0001", "MAL-0007"]


def test_exact_versions_only(known: KnownMalicious) -> None:
    assert [m.advisory_id for m in known.lookup("npm", "@scope/pkg", "1.0.2")] == ["MAL-0002"]
    assert known.lookup("npm", "@scope/pkg", "1.0.3") == []
    assert known.lookup("npm", "@scope/pkg", None) == []


@pytest.mark.parametrize("name", ["@scope/pkg", "@SCOPE/PKG", " @Scope/Pkg "])
def test_npm_names_are_lowercased_scope_kept(known: KnownMalicious, name: str) -> None:
    assert known.lookup("npm", name, "1.0.1")
    assert known.lookup("npm", "pkg", "1.0.1") == []


@pytest.mark.parametrize("name", ["foo-bar-baz", "Foo_Bar.Baz", "foo__bar--baz", "FOO.BAR_BAZ"])
def test_pypi_names_are_pep503_normalized(known: KnownMalicious, name: str) -> None:
    assert [m.advisory_id for m in known.lookup("pypi", name, "0.1")] == ["MAL-0003"]
    assert known.lookup("npm", name, "0.1") == []


def test_unknown_ecosystems_withdrawn_and_bounded_ranges(known: KnownMalicious) -> None:
    assert known.lookup("rubygems", "x", "1.0") == []
    assert known.skipped == 2  # RubyGems entry + withdrawn advisory
    assert known.lookup("npm", "gone", "1.0.0") == []
    # a bounded range covers the versions below its fix; listed versions match too
    assert [m.detail for m in known.lookup("npm", "bounded", "0.5.0")] == [
        "version 0.5.0 in range >=0, <1.0.0"
    ]
    assert known.lookup("npm", "bounded", "1.0.0") == []
    assert [m.all_versions for m in known.lookup("npm", "bounded", "2.0.0")] == [False]
    assert known.lookup("npm", "bounded", None) == []  # no version: only all-versions advisories
    assert known.advisories == 5 and len(known) == 4
    assert ("npm", "EVIL-ALL") in known and ("pypi", "evil-all") not in known


def test_files_lists_and_wrappers(tmp_path: Path) -> None:
    single = tmp_path / "one.json"
    single.write_text(json.dumps(_osv("A-1", "npm", "a", **ALL)))
    many = tmp_path / "many.json"
    many.write_text(json.dumps({"advisories": [_osv("B-1", "PyPI", "b", versions=["1"])]}))
    known = KnownMalicious.from_paths([single, str(many)])
    assert known.lookup("npm", "a", "1")[0].advisory_id == "A-1"
    assert known.lookup("pypi", "B", "1")[0].advisory_id == "B-1"


def test_bad_files(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    with pytest.raises(AdvisoryFileError, match=r"bad\.json"):
        KnownMalicious.from_paths([bad])
    with pytest.raises(AdvisoryFileError, match="no such"):
        KnownMalicious.from_paths([tmp_path / "missing"])


SEED_CASES = [
    ("npm", "flatmap-stream", "0.1.1", True),
    ("npm", "flatmap-stream", "0.1.0", False),
    ("npm", "crossenv", "6.1.1", True),
    ("npm", "cross-env", "7.0.3", False),
    ("npm", "ua-parser-js", "0.7.29", True),
    ("npm", "ua-parser-js", "0.7.30", False),
    ("npm", "coa", "2.0.3", True),
    ("npm", "rc", "1.2.9", True),
    ("npm", "rc", "1.2.8", False),
    ("npm", "node-ipc", "10.1.2", True),
    ("npm", "node-ipc", "9.2.1", False),
    ("pypi", "ctx", "0.2.6", True),
    ("pypi", "jeIlyfish", "0.7.2", True),
    ("pypi", "jellyfish", "0.7.2", False),
    ("pypi", "Python3_Dateutil", "2.8.1", True),
    ("pypi", "python-dateutil", "2.8.1", False),
    ("pypi", "colourama", "0.1.6", True),
    ("pypi", "colorama", "0.4.6", False),
]


@pytest.mark.parametrize(("registry", "name", "version", "flagged"), SEED_CASES)
def test_bundled_seed(registry: str, name: str, version: str, flagged: bool) -> None:
    matches = KnownMalicious.default().lookup(registry, name, version)
    assert bool(matches) is flagged
    assert all(m.advisory_id.startswith("TYPOSTREAM-SEED-") and m.summary for m in matches)


def test_seed_ids_are_local_and_documented() -> None:
    doc = json.loads(KnownMalicious.seed_path().read_text())
    ids = [a["id"] for a in doc["advisories"]]
    assert len(ids) == len(set(ids)) == 10
    assert all(i.startswith("TYPOSTREAM-SEED-") for i in ids)
    assert all(a["summary"] and "references" in a for a in doc["advisories"])


# --- OSV range semantics (https://ossf.github.io/osv-schema/#evaluation) -------------------------
def _ranged(
    ecosystem: str, kind: str, *events: dict[str, str], versions: list[str] | None = None
) -> KnownMalicious:
    affected: dict[str, Any] = {"ranges": [{"type": kind, "events": list(events)}]}
    if versions is not None:
        affected["versions"] = versions
    return KnownMalicious.from_advisories([_osv("MAL-R", ecosystem, "pkg", **affected)])


def _covered(known: KnownMalicious, registry: str, version: str) -> bool:
    return bool(known.lookup(registry, "pkg", version))


@pytest.mark.parametrize(
    ("events", "inside", "outside"),
    [
        # introduced / fixed: [1.0.0, 1.0.2)
        (
            [{"introduced": "1.0.0"}, {"fixed": "1.0.2"}],
            ["1.0.0", "1.0.1", "1.0.2-rc.1"],
            ["0.9.9", "1.0.2", "2.0.0"],
        ),
        # last_affected is inclusive
        ([{"introduced": "0"}, {"last_affected": "2.1.214"}], ["0.0.1", "2.1.214"], ["2.1.215", "3.0.0"]),
        # two intervals in one range, events given out of order
        (
            [{"fixed": "3.2.5"}, {"introduced": "3.0.0"}, {"introduced": "1.0.0"}, {"fixed": "1.0.2"}],
            ["1.0.0", "1.0.1", "3.0.0", "3.2.4"],
            ["0.5.0", "1.0.2", "2.9.9", "3.2.5"],
        ),
        # limit bounds from above; "*" is infinity
        ([{"introduced": "1.0.0"}, {"limit": "2.0.0"}], ["1.0.0", "1.9.9"], ["0.9.0", "2.0.0"]),
        ([{"introduced": "1.0.0"}, {"limit": "*"}], ["1.0.0", "99.0.0"], ["0.9.0"]),
        # build metadata does not change precedence; prereleases sort before their release
        (
            [{"introduced": "1.0.0"}, {"fixed": "1.0.1"}],
            ["1.0.0+build.5", "1.0.1-alpha"],
            ["1.0.0-rc.1", "1.0.1"],
        ),
    ],
)
def test_semver_ranges(events: list[dict[str, str]], inside: list[str], outside: list[str]) -> None:
    known = _ranged("npm", "SEMVER", *events)
    assert [v for v in inside if _covered(known, "npm", v)] == inside
    assert [v for v in outside if _covered(known, "npm", v)] == []


def test_pypi_ecosystem_ranges_use_pep_440() -> None:
    known = _ranged("PyPI", "ECOSYSTEM", {"introduced": "1.0"}, {"fixed": "1.10"})
    inside = ["1.0", "1.0.0", "1.2", "1.9.post1", "1.10rc1", "1.10.dev0"]
    outside = ["0.9", "1.0rc1", "1.10", "1.10.0", "2.0", "10.0"]
    assert [v for v in inside if _covered(known, "pypi", v)] == inside
    assert [v for v in outside if _covered(known, "pypi", v)] == []


def test_npm_ecosystem_ranges_use_semver() -> None:
    known = _ranged("npm", "ECOSYSTEM", {"introduced": "1.2.0"}, {"fixed": "1.10.0"})
    assert _covered(known, "npm", "1.9.0") and not _covered(known, "npm", "1.10.0")  # 9 < 10, not as strings


def test_unorderable_versions_and_bounds_are_taken_to_be_covered() -> None:
    """No silent "clean": what cannot be compared is reported, with the reason in the evidence."""
    known = _ranged("npm", "SEMVER", {"introduced": "1.0.0"}, {"fixed": "2.0.0"})
    [match] = known.lookup("npm", "pkg", "latest")
    assert match.detail == "version latest cannot be ordered; range >=1.0.0, <2.0.0 taken to cover it"
    odd = _ranged("PyPI", "ECOSYSTEM", {"introduced": "0"}, {"fixed": "not-a-version"})
    [match] = odd.lookup("pypi", "pkg", "1.0")
    assert "cannot be ordered" in match.detail and not match.all_versions


def test_git_ranges_are_not_evaluated_but_listed_versions_match() -> None:
    known = _ranged("npm", "GIT", {"introduced": "a" * 40}, {"fixed": "b" * 40}, versions=["1.0.0"])
    assert known.lookup("npm", "pkg", "0.5.0") == []
    assert [m.detail for m in known.lookup("npm", "pkg", "1.0.0")] == ["version 1.0.0 listed"]


@pytest.mark.parametrize(
    ("ecosystem", "registry", "listed", "looked_up"),
    [
        ("PyPI", "pypi", "2.31.0", "2.31"),
        ("PyPI", "pypi", "1.0rc1", "1.0.0-rc1"),
        ("npm", "npm", "1.0.0", "v1.0.0"),
    ],
)
def test_listed_versions_compare_canonically(
    ecosystem: str, registry: str, listed: str, looked_up: str
) -> None:
    known = KnownMalicious.from_advisories([_osv("MAL-V", ecosystem, "pkg", versions=[listed])])
    assert _covered(known, registry, looked_up)


# --- malformed advisories: skipped or evaluated, never a crash -----------------------------------
@pytest.mark.parametrize(
    "affected",
    [
        {"package": {"ecosystem": ["npm"], "name": "pkg"}},  # a list where a string belongs
        {"package": {"ecosystem": {"name": "npm"}, "name": "pkg"}},
        {"package": {"ecosystem": "npm", "name": ["pkg"]}},
        {"package": "npm/pkg"},
    ],
)
def test_malformed_packages_are_skipped(affected: dict[str, Any]) -> None:
    """Regression: an ``ecosystem`` that is not a string raised TypeError (unhashable) while loading."""
    known = KnownMalicious.from_advisories([{"id": "MAL-X", "affected": [affected]}])
    assert known.skipped == 1 and known.advisories == 0 and len(known) == 0


@pytest.mark.parametrize("events", [5, "introduced", {"introduced": "0"}, None, [5, None, ["introduced"]]])
def test_malformed_range_events_do_not_crash(events: Any) -> None:
    """Regression: ``events`` that is not a list (an int) raised TypeError while loading."""
    known = _ranged_raw({"type": "SEMVER", "events": events}, versions=["1.0.0"])
    assert [m.detail for m in known.lookup("npm", "pkg", "1.0.0")] == ["version 1.0.0 listed"]
    assert known.lookup("npm", "pkg", "2.0.0") == []  # no introduced event: the range covers nothing


def _ranged_raw(rng: Any, **affected: Any) -> KnownMalicious:
    return KnownMalicious.from_advisories([_osv("MAL-R", "npm", "pkg", ranges=[rng], **affected)])


# --- records: the form the on-disk index stores, evaluated by the same function -------------------
REAL_SHAPES = [
    _osv("MAL-A", "npm", "all", **ALL),
    _osv("MAL-L", "npm", "@Scope/Listed", versions=["1.0.0", "v2.0.0"]),
    _osv(
        "MAL-T",  # the shape of MAL-2025-47141 (@ctrl/tinycolor): all versions plus a bounded range
        "npm",
        "tiny",
        ranges=[
            {"type": "SEMVER", "events": [{"introduced": "0"}]},
            {"type": "SEMVER", "events": [{"introduced": "4.1.1"}, {"last_affected": "4.1.2"}]},
        ],
    ),
    _osv(
        "MAL-B",
        "PyPI",
        "Bounded_Pkg",
        versions=["0.1"],
        ranges=[
            {"type": "ECOSYSTEM", "events": [{"introduced": "1.0"}, {"fixed": "1.10"}]},
            {"type": "SEMVER", "events": [{"introduced": "0"}, {"fixed": "not-a-version"}]},
            {"type": "GIT", "events": [{"introduced": "a" * 40}]},
        ],
    ),
]


def test_records_round_trip_through_json() -> None:
    """What the index stores (``to_json``, as JSON text) matches exactly like the in-memory records."""
    from typostream.agents.domain.advisories import PackageAdvisory, affected_packages, match_advisories

    for advisory in REAL_SHAPES:
        records, skipped = affected_packages(advisory)
        assert skipped == 0 and len(records) == 1
        registry, name, record = records[0]
        stored = PackageAdvisory.from_json(json.loads(json.dumps(record.to_json())))
        assert stored == record
        for version in (None, "0.1", "1.0.0", "2.0.0", "1.5", "1.10", "4.1.2", "4.1.3", "latest"):
            assert match_advisories(registry, [stored], version) == match_advisories(
                registry, [record], version
            )
    [(registry, name, record)] = affected_packages(REAL_SHAPES[3])[0]
    assert (registry, name, record.all_versions, record.versions) == ("pypi", "bounded-pkg", False, {"0.1"})
    assert [r.ordering for r in record.ranges] == ["pep440", "semver"]  # GIT is not evaluated


def test_sources_are_consulted_and_deduplicated_by_id() -> None:
    """A source (the on-disk index) answers next to the in-memory records; one match per advisory id."""
    from typostream.agents.domain.advisories import PackageAdvisory, affected_packages

    class Source:
        def __init__(self, advisories: list[dict[str, Any]]) -> None:
            self.by_key: dict[tuple[str, str], list[PackageAdvisory]] = {}
            for advisory in advisories:
                for registry, name, record in affected_packages(advisory)[0]:
                    self.by_key.setdefault((registry, name), []).append(record)
            self.asked: list[tuple[str, str]] = []

        def records(self, registry: str, name: str) -> list[PackageAdvisory]:
            self.asked.append((registry, name))
            return self.by_key.get((registry, name), [])

    source = Source([REAL_SHAPES[1], _osv("MAL-S", "npm", "all", versions=["3.0.0"]), REAL_SHAPES[0]])
    known = KnownMalicious.from_paths([KnownMalicious.seed_path()], sources=[source])
    assert [m.advisory_id for m in known.lookup("npm", "ALL", "3.0.0")] == ["MAL-A", "MAL-S"]
    assert source.asked[-1] == ("npm", "all")  # normalized before asking
    assert [m.advisory_id for m in known.lookup("npm", "@scope/listed", "2.0.0")] == ["MAL-L"]
    assert known.lookup("npm", "crossenv", "1.0.0")[0].advisory_id.startswith("TYPOSTREAM-SEED-")
    assert ("npm", "@SCOPE/listed") in known and ("pypi", "all") not in known
    assert known.lookup("rubygems", "all", "1.0.0") == []


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=20,
)


def _either(*plausible: Any) -> st.SearchStrategy[Any]:
    """A plausible value for an OSV field, or any JSON value in its place."""
    return st.sampled_from(plausible) | json_values


events = st.lists(
    st.dictionaries(st.sampled_from(["introduced", "fixed", "last_affected", "limit"]),
                    _either("0", "1.0.0", "1.10", "*", "v2", "not-a-version"), max_size=2) | json_values,
    max_size=4,
)  # fmt: skip
ranges = st.fixed_dictionaries({"type": _either("SEMVER", "ECOSYSTEM", "GIT"), "events": events})
package = st.fixed_dictionaries({"ecosystem": _either("npm", "PyPI", "Go"), "name": _either("x")})
affected = st.fixed_dictionaries(
    {"package": package | json_values},
    optional={
        "versions": st.lists(_either("1.0.0", "x", "1.0"), max_size=3) | json_values,
        "ranges": st.lists(ranges | json_values, max_size=3) | json_values,
    },
)
osv_like = st.fixed_dictionaries(
    {"id": _either("MAL-1"), "summary": _either("s")},
    optional={
        "withdrawn": _either("2024-01-01T00:00:00Z"),
        "affected": st.lists(affected | json_values, max_size=3) | json_values,
    },
)


@settings(max_examples=300, deadline=None)
@given(osv_like | st.lists(osv_like, max_size=2) | json_values)
def test_any_json_is_indexed_or_skipped_without_raising(raw: Any) -> None:
    """Every advisory file shape loads (the sync must not stop on one odd file): no exception escapes."""
    from typostream.agents.domain.advisories import advisories_in

    known = KnownMalicious.from_advisories(advisories_in(raw))
    for version in (None, "1.0.0", "x"):
        known.lookup("npm", "x", version)
        known.lookup("pypi", "x", version)
