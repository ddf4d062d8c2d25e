"""False-alarm rates on whole populations of real names, beyond the 2,000 dev negatives.

The dev negatives are a sample; tuning against them alone overfits. This scans whole populations
and prints the alert rate of each, with a breakdown by technique and by the target's popularity
rank (what the rank gates in ``agents/domain/detection/tunables.py`` were chosen from):

* **top 10,000** of each registry, by the snapshot's own source (npm: downloads in
  ``data/names/npm.tsv.gz``; PyPI: the ranks of ``--pypi`` when it is the full source list, else
  the rank order of ``data/popular/pypi.tsv.gz``, which holds every ranked row of that source,
  ``tests/agents/detection/test_popular_snapshot.py``): the goal is 0 alerts;
* **npm mid**: every npm name with 10k-100k downloads a month (the population the dev/held-out
  ``mid`` negatives were drawn from);
* **npm random**: a seeded sample of npm names outside the top-20,000 popular snapshot, at any
  download count. No list inside the product is derived from them;
* **PyPI random**: a seeded sample of unranked PyPI names (outside the 15,000 most downloaded),
  likewise outside every list the product ships.

    .venv/bin/python benchmarks/false_alarms.py [--npm PATH] [--pypi PATH] [--eval ../shared/eval]
        [--sample N] [--list] [--check]

Names in the dev negatives are excluded from the mid/random populations so the figures are
additive. ``--list`` prints every alerted name; ``--check`` exits 1 when a goal is missed
(0 alerts on either top 10,000, more than 1 % on a mid/random population). Per technique, the
tables count the names whose best threat is that technique, and (``any``) the names where the
technique produced a threat at all: its own false-alarm figure, whichever technique won.
"""

from __future__ import annotations

import argparse
import random
import re
import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from typostream.agents.domain.detection import Detector, Threat
from typostream.agents.domain.detection.names import normalize
from typostream.agents.domain.detection.popular import load_popular
from typostream.data.names import NPM_FILE, PYPI_FILE, iter_npm_downloads, iter_pypi_unranked, iter_rows
from typostream.data.names import RANK as RANK_COLUMN

RANK = re.compile(r"package #(\d+)")
BANDS = ((1_000, "rank <= 1k"), (5_000, "rank <= 5k"), (10**9, "rank > 5k"))
TOP = 10_000
MAX_RATE = 0.01
SEED = 7


def band(evidence: str) -> str:
    match = RANK.search(evidence)
    if match is None:
        return "watchlist"
    rank = int(match.group(1))
    return next(label for bound, label in BANDS if rank <= bound)


@dataclass(frozen=True)
class Population:
    id: str
    registry: str
    title: str
    names: Sequence[str]
    max_alerts: float | None  # goal: an alert share (0 = no alert at all)


@dataclass
class Result:
    population: Population
    best: Counter[str] = field(default_factory=Counter)
    any: Counter[str] = field(default_factory=Counter)
    bands: Counter[str] = field(default_factory=Counter)
    alerted: list[tuple[str, Threat]] = field(default_factory=list)

    @property
    def alerts(self) -> int:
        return len(self.alerted)

    @property
    def rate(self) -> float:
        return self.alerts / len(self.population.names) if self.population.names else 0.0

    @property
    def met(self) -> bool:
        goal = self.population.max_alerts
        return goal is None or (self.alerts == 0 if goal == 0 else self.rate <= goal)


def npm_downloads(path: Path) -> dict[str, int]:
    best: dict[str, int] = {}
    for name, downloads in iter_npm_downloads(path):
        best[name] = max(best.get(name, 0), downloads)
    return best


def pypi_top(path: Path) -> list[str]:
    """The ``TOP`` best-ranked PyPI names: from ``path`` when it is a full source list with ranks,
    else from the snapshot (which holds every ranked row of its source)."""
    ranked: dict[str, tuple[int, str]] = {}
    for row in iter_rows(path):
        rank = row.get(RANK_COLUMN, "")
        if rank.isdigit():
            key = normalize(row["name"], "pypi")
            ranked[key] = min(ranked.get(key, (int(rank), row["name"])), (int(rank), row["name"]))
    if not ranked:
        return [row.name for row in load_popular("pypi")][:TOP]
    return [name for _, name in sorted(ranked.values())][:TOP]


def populations(npm_path: Path, pypi_path: Path, exclude: set[str], sample: int) -> list[Population]:
    downloads = npm_downloads(npm_path)
    by_downloads = sorted(downloads, key=lambda name: (-downloads[name], name))
    snapshot = {normalize(row.name, "npm") for row in load_popular("npm")}
    outside = sorted(n for n in downloads if normalize(n, "npm") not in snapshot and n not in exclude)
    ranked = {normalize(row.name, "pypi") for row in load_popular("pypi")}
    unranked = sorted(
        {n for n in iter_pypi_unranked(pypi_path) if n not in exclude and normalize(n, "pypi") not in ranked}
    )
    return [
        Population("npm-top", "npm", f"npm, top {TOP:,} by downloads", by_downloads[:TOP], 0),
        Population("pypi-top", "pypi", f"PyPI, top {TOP:,} by rank", pypi_top(pypi_path), 0),
        Population(
            "npm-mid",
            "npm",
            "npm, 10k-100k downloads/month (mid)",
            [n for n in by_downloads if 10_000 <= downloads[n] <= 100_000 and n not in exclude],
            MAX_RATE,
        ),
        Population(
            "npm-random",
            "npm",
            "npm, random outside the top-20,000 snapshot",
            random.Random(SEED).sample(outside, min(sample, len(outside))),
            MAX_RATE,
        ),
        Population(
            "pypi-random",
            "pypi",
            "PyPI, random unranked",
            random.Random(SEED).sample(unranked, min(sample, len(unranked))),
            MAX_RATE,
        ),
    ]


def scan(detector: Detector, population: Population) -> Result:
    result = Result(population)
    for name in population.names:
        threats = [t for t in detector.scan(name, population.registry).threats if t.type == "typosquat"]
        if threats:
            result.best[threats[0].technique] += 1
            result.any.update({t.technique for t in threats})
            result.bands[band(threats[0].evidence)] += 1
            result.alerted.append((name, threats[0]))
    return result


def _table(header: list[str], rows: list[list[object]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines.extend("| " + " | ".join(str(c) for c in row) + " |" for row in rows)
    return "\n".join(lines)


def render(results: list[Result], listing: bool = False) -> str:
    out = ["### Alert rates on whole populations (default index)", ""]
    rows: list[list[object]] = []
    for r in results:
        goal = r.population.max_alerts
        rows.append(
            [
                r.population.title,
                f"{len(r.population.names):,}",
                r.alerts,
                f"{100 * r.rate:.2f} %",
                "-" if goal is None else ("0 alerts" if goal == 0 else f"<= {100 * goal:.0f} %"),
                "yes" if r.met else "NO",
            ]
        )
    out.append(_table(["population", "names", "alerts", "rate", "goal", "met"], rows))
    shown = [r for r in results if r.population.max_alerts != 0 or r.alerts]
    techniques = sorted({t for r in shown for t in r.any}, key=lambda t: -sum(r.any[t] for r in shown))
    out += [
        "",
        "### Alerts per technique (best threat / any threat), per 10,000 names of each population",
        "",
    ]
    header = ["technique", *(r.population.id for r in shown)]
    rows = []
    for technique in techniques:
        cells: list[object] = [technique]
        for r in shown:
            n = len(r.population.names) or 1
            cells.append(f"{r.best[technique]} / {r.any[technique]} ({10_000 * r.any[technique] / n:.1f})")
        rows.append(cells)
    out.append(_table(header, rows))
    out += ["", "### Alerts by the target's popularity (best threat)", ""]
    out.append(
        _table(
            ["target popularity", *(r.population.id for r in shown)],
            [[label, *(r.bands[label] for r in shown)] for _, label in BANDS],
        )
    )
    if listing:
        for r in results:
            out += ["", f"alerted in {r.population.id}:"]
            out += [f"  {name} -> {t.target} ({t.technique}, {t.score})" for name, t in r.alerted]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--npm", type=Path, default=NPM_FILE, help="npm names with downloads_a_month")
    parser.add_argument("--pypi", type=Path, default=PYPI_FILE, help="PyPI names (unranked rows are used)")
    parser.add_argument(
        "--eval", type=Path, default=Path(__file__).resolve().parents[1].parent / "shared" / "eval"
    )
    parser.add_argument("--sample", type=int, default=20_000, help="names per random population")
    parser.add_argument("--list", action="store_true", help="print every alerted name")
    parser.add_argument("--check", action="store_true", help="exit 1 when a goal is missed")
    args = parser.parse_args(argv)
    for path in (args.npm, args.pypi):
        if not path.exists():
            parser.error(f"{path} not found (a package-name list, see data/names; pass --npm/--pypi)")
    negatives = args.eval / "dev_negatives.jsonl"
    exclude = {orjson.loads(line)["name"] for line in negatives.open("rb")} if negatives.exists() else set()
    detector = Detector.default()
    results = [scan(detector, p) for p in populations(args.npm, args.pypi, exclude, args.sample)]
    print(render(results, args.list))
    return 1 if args.check and not all(r.met for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
