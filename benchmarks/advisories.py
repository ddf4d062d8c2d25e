"""Known-malicious advisories at full scale: the on-disk index against loading every file into memory.

Usage::

    .venv/bin/python benchmarks/advisories.py [--advisories 250000] [--queries 20000]
                                              [--work-dir DIR] [--keep]

Generates ``--advisories`` synthetic but realistic OSV advisories in the ossf/malicious-packages
layout (``osv/malicious/<ecosystem>/<name>/MAL-*.json``, seeded): package names sampled from the
bundled real-name lists ``data/names/{npm,pypi}.tsv.gz``; 80 % npm (some scoped) / 18 % PyPI / 2 %
other ecosystems (skipped by typostream); the shapes the real repository has: a listed version or
three (60 %), every version (``SEMVER`` ``introduced: "0"``, 34 %), bounded ranges (introduced /
fixed / last_affected, 5 %), withdrawn (1 %); one package in six with a second or third report of
another origin; real-looking ``details``, ``credits`` and ``database_specific`` origins (~1.5 KB a
file, like upstream).

Each measurement runs in a fresh Python process (so peak RSS is its own):

* **baseline**: ``KnownMalicious.from_paths(tree)``, the in-memory loader every ``scan`` and worker
  start ran before the index: load time, start-up (load + first lookup), peak RSS, lookup µs.
* **build**: ``advisories sync`` of the tree into an empty index (time, peak RSS, size), then a
  re-sync with nothing changed, and one after 1 % of the files changed and 0.1 % were removed.
* **start-up**: what ``build_assessor`` does with an index: open it (+ the bundled seed) and answer
  the first lookup; then lookup µs.

Lookups are timed one by one (``perf_counter_ns``, gc off) on the same queries for both: half names
that have advisories (with a listed, in-range or random version), half real names that have none.
The answers of both are compared (they must be identical).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
SEED = 20261201


# --- the synthetic tree --------------------------------------------------------------------------
SOURCES = ["ossf-package-analysis", "ghsa-malware", "amazon-inspector", "kam193", "reversing-labs",
           "google-open-source-security"]  # fmt: skip
REASONS = [
    "The package communicates with a domain associated with malicious activity.",
    "The package executes one or more commands associated with malicious behavior.",
    "The package reads credentials and environment variables and sends them to a remote host.",
    "During installation, a script downloads and runs a second-stage payload.",
]
GHSA_TEXT = (
    "Any computer that has this package installed or running should be considered fully compromised. "
    "All secrets and keys stored on that computer should be rotated immediately from a different computer. "
    "The package should be removed, but as full control of the computer may have been given to an outside "
    "entity, there is no guarantee that removing the package will remove all malicious software resulting "
    "from installing it."
)


def _version(rng: random.Random, registry: str) -> str:
    major, minor, patch = rng.choice([0, 0, 1, 1, 2, 3, 99, 999]), rng.randint(0, 12), rng.randint(0, 20)
    if registry == "pypi" and rng.random() < 0.3:
        return f"{major}.{minor}"
    return f"{major}.{minor}.{patch}"


def _affected(rng: random.Random, ecosystem: str, name: str, registry: str) -> tuple[dict[str, Any], str]:
    roll = rng.random()
    entry: dict[str, Any] = {"package": {"ecosystem": ecosystem, "name": name}}
    if roll < 0.60:
        entry["versions"] = sorted({_version(rng, registry) for _ in range(rng.choice([1, 1, 1, 2, 3]))})
        shape = "versions"
    elif roll < 0.94:
        entry["ranges"] = [{"type": "SEMVER", "events": [{"introduced": "0"}]}]
        shape = "all"
    else:
        low = _version(rng, registry)
        end = {"fixed": _version(rng, registry)} if rng.random() < 0.5 else {"last_affected": low}
        kind = "ECOSYSTEM" if registry == "pypi" else rng.choice(["SEMVER", "ECOSYSTEM"])
        entry["ranges"] = [{"type": kind, "events": [{"introduced": low}, end]}]
        shape = "range"
    entry["database_specific"] = {"cwes": [{"cweId": "CWE-506", "name": "Embedded Malicious Code",
        "description": "The product contains code that appears to be malicious in nature."}]}  # fmt: skip
    return entry, shape


def _advisory(rng: random.Random, number: int, ecosystem: str, name: str, registry: str) -> dict[str, Any]:
    source = rng.choice(SOURCES)
    digest = rng.getrandbits(256).to_bytes(32, "big").hex()
    entry, _shape = _affected(rng, ecosystem, name, registry)
    first = entry.get("versions", ["*"])[0]
    reason = (
        GHSA_TEXT
        if source == "ghsa-malware"
        else f"The OpenSSF Package Analysis project identified '{name}' @ {first} ({ecosystem.lower()}) as "
        f"malicious.\n\nIt is considered malicious because:\n\n- {rng.choice(REASONS)}"
    )
    day = f"202{rng.randint(2, 6)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
    when = f"{day}T{rng.randint(0, 23):02d}:14:54Z"
    advisory: dict[str, Any] = {
        "modified": when,
        "published": when,
        "schema_version": "1.7.4",
        "id": f"MAL-{when[:4]}-{number}",
        "summary": f"Malicious code in {name} ({ecosystem})",
        "details": f"\n---\n_-= Per source details. Do not edit below this line.=-_\n\n## Source: {source} "
        f"({digest})\n{reason}\n",
        "affected": [entry],
        "credits": [{"name": source, "type": "FINDER", "contact": [f"https://example.org/{source}"]}],
        "database_specific": {"malicious-packages-origins": [{
            "import_time": when, "modified_time": when, "sha256": digest, "source": source,
            **({"versions": entry["versions"]} if "versions" in entry else {"ranges": entry["ranges"]})}]},
    }  # fmt: skip
    if rng.random() < 0.01:
        advisory["withdrawn"] = when
    return advisory


def generate(root: Path, count: int, queries_count: int) -> dict[str, Any]:
    """Write ``count`` advisories under ``root/osv/malicious``; the queries file next to it."""
    from typostream.data.names import NPM_FILE, PYPI_FILE, iter_names

    rng = random.Random(SEED)
    npm_names = list(iter_names(NPM_FILE))
    pypi_names = list(iter_names(PYPI_FILE))
    rng.shuffle(npm_names)
    rng.shuffle(pypi_names)
    plan: list[tuple[str, str, str]] = []  # (ecosystem dir, ecosystem, name)
    npm_i = pypi_i = 0
    while len(plan) < count:
        roll = rng.random()
        if roll < 0.80:
            name, npm_i = npm_names[npm_i % len(npm_names)], npm_i + 1
            ecosystem, folder = "npm", "npm"
        elif roll < 0.98:
            name, pypi_i = pypi_names[pypi_i % len(pypi_names)], pypi_i + 1
            ecosystem, folder = "PyPI", "pypi"
        else:
            name, ecosystem, folder = f"gem-{rng.getrandbits(32):08x}", "RubyGems", "rubygems"
        reports = 1 if rng.random() < 5 / 6 else rng.choice([2, 3])
        plan.extend((folder, ecosystem, name) for _ in range(reports))
    plan = plan[:count]
    started = time.perf_counter()
    base = root / "osv" / "malicious"
    size = 0
    for number, (folder, ecosystem, name) in enumerate(plan, start=1):
        registry = "pypi" if ecosystem == "PyPI" else "npm"
        advisory = _advisory(rng, number, ecosystem, name, registry)
        path = base / folder / name / f"{advisory['id']}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        data = json.dumps(advisory, indent=2).encode()
        path.write_bytes(data)
        size += len(data)
    known = sorted({(f, n) for f, e, n in plan if e != "RubyGems"})
    queries: list[list[Any]] = []
    missing_npm = iter(npm_names[npm_i:])
    missing_pypi = iter(pypi_names[pypi_i:])
    for n in range(queries_count):
        if n % 2 == 0:
            folder, name = rng.choice(known)
            version = rng.choice([None, _version(rng, folder), "0.0.1", "1.0.0"])
        else:
            folder = "npm" if rng.random() < 0.8 else "pypi"
            name = next(missing_npm if folder == "npm" else missing_pypi)
            version = _version(rng, folder)
        queries.append([folder, name, version, n % 2 == 0])
    (root / "queries.json").write_text(json.dumps(queries))
    return {"files": len(plan), "bytes": size, "seconds": time.perf_counter() - started}


# --- phases (each in its own process) -----------------------------------------------------------
def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def _rss_kib() -> int:
    return _status_kib("VmRSS")


def _peak_kib() -> int:
    """This process's peak RSS (VmHWM; getrusage's ru_maxrss would carry the parent's over exec)."""
    return _status_kib("VmHWM")


def _time_lookups(known: Any, queries: list[list[Any]]) -> dict[str, Any]:
    hits: list[int] = []
    misses: list[int] = []
    answers: list[Any] = []
    gc.disable()
    for registry, name, version, is_hit in queries:
        started = time.perf_counter_ns()
        found = known.lookup(registry, name, version)
        elapsed = time.perf_counter_ns() - started
        (hits if is_hit else misses).append(elapsed)
        answers.append([[m.advisory_id, m.detail] for m in found])
    gc.enable()

    def stats(values: list[int]) -> dict[str, float]:
        values.sort()
        return {
            "median_us": statistics.median(values) / 1000,
            "p99_us": values[int(len(values) * 0.99)] / 1000,
        }

    return {"hit": stats(hits), "miss": stats(misses), "answers": answers}


def phase_baseline(work: Path) -> dict[str, Any]:
    from typostream.agents.domain.advisories import KnownMalicious

    queries = json.loads((work / "tree" / "queries.json").read_text())
    rss0 = _rss_kib()
    started = time.perf_counter()
    known = KnownMalicious.from_paths([KnownMalicious.seed_path(), work / "tree" / "osv" / "malicious"])
    loaded = time.perf_counter() - started
    known.lookup(*queries[0][:3])
    first = time.perf_counter() - started
    gc.collect()
    return {"load_s": loaded, "startup_s": first, "rss_before_kib": rss0, "peak_kib": _peak_kib(),
            "rss_after_kib": _rss_kib(),
            "advisories": known.advisories, **_time_lookups(known, queries)}  # fmt: skip


def phase_build(work: Path) -> dict[str, Any]:
    from typostream.agents.adapters.advisory_index import sync

    tree, idx = work / "tree", work / "index"
    shutil.rmtree(idx, ignore_errors=True)
    rss0 = _rss_kib()
    full = sync(tree, idx)
    peak = _peak_kib()
    same = sync(tree, idx)
    rng = random.Random(SEED + 1)
    files = sorted((tree / "osv" / "malicious").rglob("*.json"))
    for path in rng.sample(files, len(files) // 100):
        doc = json.loads(path.read_text())
        doc["modified"] = "2026-12-01T00:00:00Z"
        doc["affected"][0]["versions"] = ["7.7.7"]
        doc["affected"][0].pop("ranges", None)
        path.write_text(json.dumps(doc, indent=2))
    removed = rng.sample(files, len(files) // 1000)
    for path in removed:
        path.unlink(missing_ok=True)
    changed = sync(tree, idx)
    return {
        "build_s": full.seconds,
        "build_peak_kib": peak,
        "rss_before_kib": rss0,
        "size_bytes": full.size_bytes,
        "advisories": full.advisories,
        "packages": full.packages,
        "files": full.files,
        "resync_same_s": same.seconds,
        "resync_same_changes": same.changes,
        "resync_changed_s": changed.seconds,
        "resync_changed": [changed.changed, changed.removed],
    }


def phase_startup(work: Path) -> dict[str, Any]:
    started = time.perf_counter()
    from typostream.agents.adapters.advisory_index import LiveAdvisoryIndex, index_path
    from typostream.agents.domain.assess import load_known

    imported = time.perf_counter()
    queries = json.loads((work / "tree" / "queries.json").read_text())
    rss0 = _rss_kib()
    opened = time.perf_counter()
    known = load_known("", sources=[LiveAdvisoryIndex(index_path(work / "index"))])
    known.lookup(*queries[0][:3])
    first = time.perf_counter() - opened
    gc.collect()
    return {
        "startup_s": first,
        "imports_s": imported - started,
        "rss_before_kib": rss0,
        "rss_after_kib": _rss_kib(),
        "peak_kib": _peak_kib(),
        **_time_lookups(known, queries),
    }


PHASES = {"baseline": phase_baseline, "build": phase_build, "startup": phase_startup}


def run_phase(name: str, work: Path) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, __file__, "--phase", name, "--work-dir", str(work)],
        capture_output=True, text=True, check=False, cwd=REPO,
    )  # fmt: skip
    if proc.returncode != 0:
        raise SystemExit(f"phase {name} failed:\n{proc.stderr}")
    return json.loads(proc.stdout.splitlines()[-1])


# --- report --------------------------------------------------------------------------------------
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--advisories", type=int, default=250_000)
    parser.add_argument("--queries", type=int, default=20_000)
    parser.add_argument("--work-dir", type=Path, default=None, help="keep the tree here (reused if present)")
    parser.add_argument("--keep", action="store_true", help="do not delete the generated tree")
    parser.add_argument("--phase", choices=sorted(PHASES), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase:
        result = PHASES[args.phase](args.work_dir)
        print(json.dumps(result))
        return

    from rich.console import Console
    from rich.table import Table

    console = Console(width=120)
    work = args.work_dir or Path(tempfile.mkdtemp(prefix="typostream-advisories-"))
    try:
        if not (work / "tree" / "queries.json").exists():
            console.print(f"generating {args.advisories:,} advisories in {work / 'tree'} ...")
            made = generate(work / "tree", args.advisories, args.queries)
            console.print(
                f"  {made['files']:,} files, {made['bytes'] / 2**20:,.0f} MiB in {made['seconds']:.1f} s"
            )
        os.sync()
        console.print("baseline: KnownMalicious.from_paths (in memory) ...")
        base = run_phase("baseline", work)
        console.print("index: full build, re-syncs ...")
        build = run_phase("build", work)
        console.print("index: start-up and lookups ...")
        start = run_phase("startup", work)
        base.pop("answers")
        index_answers = start.pop("answers")
        # the build phase changed 1 % of the files after the baseline read them: compare on a fresh load
        console.print("baseline again on the changed tree (answers must equal the index's) ...")
        again = run_phase("baseline", work)
        identical = again.pop("answers") == index_answers
    finally:
        if args.work_dir is None and not args.keep:
            shutil.rmtree(work, ignore_errors=True)

    def mib(kib: float) -> str:
        return f"{kib / 1024:,.1f} MiB"

    def ratio(a: float, b: float) -> str:
        return f"{a / b:,.0f}x" if b > 0 else "-"

    table = Table(
        title=f"{build['advisories']:,} advisories ({build['packages']:,} packages, {build['files']:,} files)"
    )
    for column in ("measure", "in memory (KnownMalicious)", "on-disk index", "ratio"):
        table.add_column(column, justify="left" if column == "measure" else "right")
    table.add_row(
        "load (every start) / build (once)", f"{base['load_s']:.1f} s", f"{build['build_s']:.1f} s", ""
    )
    table.add_row("re-sync: nothing changed", "-", f"{build['resync_same_s']:.1f} s", "")
    table.add_row(
        f"re-sync: {build['resync_changed'][0]:,} changed, {build['resync_changed'][1]:,} removed",
        "-", f"{build['resync_changed_s']:.1f} s", "",
    )  # fmt: skip
    table.add_row(
        "start-up to first lookup",
        f"{base['startup_s']:.2f} s",
        f"{start['startup_s'] * 1000:.1f} ms",
        ratio(base["startup_s"], start["startup_s"]),
    )
    table.add_row(
        "peak RSS serving (process)",
        mib(base["peak_kib"]),
        mib(start["peak_kib"]),
        ratio(base["peak_kib"], start["peak_kib"]),
    )
    base_own = base["rss_after_kib"] - base["rss_before_kib"]
    index_own = start["rss_after_kib"] - start["rss_before_kib"]
    table.add_row("RSS held after start-up (- after imports)", mib(base_own), mib(index_own),
                  ratio(base_own, index_own))  # fmt: skip
    table.add_row("peak RSS building (process)", "-", mib(build["build_peak_kib"]), "")
    table.add_row("index size on disk", "-", f"{build['size_bytes'] / 2**20:,.1f} MiB", "")
    for kind in ("hit", "miss"):
        for stat in ("median_us", "p99_us"):
            b, i = base[kind][stat], start[kind][stat]
            table.add_row(
                f"lookup, {kind} ({stat.split('_')[0]})", f"{b:.1f} µs", f"{i:.1f} µs", f"{b / i:.2f}x"
            )
    console.print(table)
    console.print(
        f"answers identical on {len(index_answers):,} queries: {'yes' if identical else 'NO'}; "
        f"baseline indexed {base['advisories']:,} advisories; index imports took {start['imports_s']:.2f} s"
    )
    if not identical:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
