"""False-alarm rates on whole populations of real names, beyond the 2,000 dev negatives.

The dev negatives are a sample; tuning against them alone overfits. This scans every npm name with
10k-100k downloads a month (the population the dev/held-out ``mid`` negatives come from) and a
seeded sample of unranked PyPI names (``random``), and prints the alert rate with a breakdown by
technique and by the target's popularity rank, which is what the rank gates in
``agents/domain/detection/tunables.py`` were chosen from.

    .venv/bin/python benchmarks/false_alarms.py [--npm PATH] [--pypi PATH] [--eval ../shared/eval]

The names come from the bundled samples in ``data/names/`` (every npm name with its downloads, and
200,000 random unranked PyPI names, drawn from the registry lists the popularity snapshots are
generated from); ``--npm``/``--pypi`` take another file in the same format or a full source list.
Names in the dev negatives are excluded so the figure is additive.
"""

from __future__ import annotations

import argparse
import random
import re
from collections import Counter
from pathlib import Path

import orjson
from rich.console import Console
from rich.table import Table

from typostream.agents.domain.detection import Detector
from typostream.data.names import NPM_FILE, PYPI_FILE, iter_npm_downloads, iter_pypi_unranked

RANK = re.compile(r"package #(\d+)")
BANDS = ((1_000, "rank <= 1k"), (5_000, "rank <= 5k"), (10**9, "rank > 5k"))


def band(evidence: str) -> str:
    match = RANK.search(evidence)
    if match is None:
        return "watchlist"
    rank = int(match.group(1))
    return next(label for bound, label in BANDS if rank <= bound)


def npm_mid(path: Path, exclude: set[str]) -> list[str]:
    return [
        name
        for name, downloads in iter_npm_downloads(path)
        if 10_000 <= downloads <= 100_000 and name not in exclude
    ]


def pypi_random(path: Path, exclude: set[str], n: int, seed: int) -> list[str]:
    names = [name for name in iter_pypi_unranked(path) if name not in exclude]
    return random.Random(seed).sample(names, min(n, len(names)))


def report(console: Console, detector: Detector, registry: str, title: str, names: list[str]) -> None:
    by_technique: Counter[str] = Counter()
    by_band: Counter[str] = Counter()
    for name in names:
        threats = [t for t in detector.scan(name, registry).threats if t.type == "typosquat"]
        if threats:
            by_technique[threats[0].technique] += 1
            by_band[band(threats[0].evidence)] += 1
    alerts = sum(by_technique.values())
    console.print(f"[bold]{title}[/]: {alerts:,}/{len(names):,} alerted = {100 * alerts / len(names):.2f} %")
    table = Table("technique (best threat)", "alerts", "per 10k names")
    for technique, count in by_technique.most_common():
        table.add_row(technique, str(count), f"{10_000 * count / len(names):.1f}")
    console.print(table)
    bands = Table("target popularity", "alerts", "per 10k names")
    for label in [label for _, label in BANDS]:
        bands.add_row(label, str(by_band[label]), f"{10_000 * by_band[label] / len(names):.1f}")
    console.print(bands)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--npm", type=Path, default=NPM_FILE, help="npm names with downloads_a_month")
    parser.add_argument("--pypi", type=Path, default=PYPI_FILE, help="PyPI names (unranked rows are used)")
    parser.add_argument(
        "--eval", type=Path, default=Path(__file__).resolve().parents[1].parent / "shared" / "eval"
    )
    parser.add_argument("--pypi-sample", type=int, default=20_000)
    args = parser.parse_args()
    for path in (args.npm, args.pypi):
        if not path.exists():
            parser.error(f"{path} not found (a package-name list, see data/names; pass --npm/--pypi)")
    negatives = args.eval / "dev_negatives.jsonl"
    exclude = {orjson.loads(line)["name"] for line in negatives.open("rb")} if negatives.exists() else set()
    console = Console()
    detector = Detector.default()
    report(console, detector, "npm", "npm, 10k-100k downloads/month (mid)", npm_mid(args.npm, exclude))
    report(
        console,
        detector,
        "pypi",
        "PyPI, unranked names (random)",
        pypi_random(args.pypi, exclude, args.pypi_sample, 7),
    )


if __name__ == "__main__":
    main()
