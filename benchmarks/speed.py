"""Per-name scan latency and index build cost, against a naive rapidfuzz scan measured in the same run.

Usage::

    .venv/bin/python benchmarks/speed.py [--names N] [--naive N] [--registry pypi] [--eval-dir DIR]

Names: N synthetic names (default 100,000), half one-edit mutations of popular names and half
random plausible names, seeded. The baseline is ``rapidfuzz.process.extractOne`` over the same
registry's popular index (the PyPI top ~15,000 by default) with a Levenshtein cut-off of 2, on a
subset of ``--naive`` names; both are scored for recall on the dev squats whose target is in that
index. Reports median and p99 microseconds per name and the speed ratio.
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import statistics
import string
import sys
import time
import tracemalloc
from pathlib import Path

from rapidfuzz import process
from rapidfuzz.distance import Levenshtein

from typostream.agents.detection import Detector
from typostream.agents.detection.names import normalize
from typostream.agents.detection.popular import load_popular

REPO = Path(__file__).resolve().parent.parent


def synthetic_names(popular: list[str], n: int, seed: int = 7) -> list[str]:
    rng = random.Random(seed)
    alphabet = string.ascii_lowercase + string.digits
    words = [w for name in popular for w in name.replace("_", "-").split("-") if len(w) > 2]
    out: list[str] = []
    while len(out) < n:
        if rng.random() < 0.5:
            name = rng.choice(popular)
            i = rng.randrange(len(name))
            op = rng.randrange(3)
            if op == 0:
                name = name[:i] + name[i + 1 :]
            elif op == 1:
                name = name[:i] + rng.choice(alphabet) + name[i + 1 :]
            else:
                name = name[:i] + rng.choice(alphabet) + name[i:]
        else:
            name = "-".join(rng.choice(words) for _ in range(rng.randint(1, 3)))
            if rng.random() < 0.3:
                name += str(rng.randint(0, 99))
        if name:
            out.append(name)
    return out


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Scan latency vs a naive rapidfuzz scan.")
    parser.add_argument("--names", type=int, default=100_000)
    parser.add_argument("--naive", type=int, default=2_000, help="names timed for the naive baseline")
    parser.add_argument("--registry", default="pypi")
    parser.add_argument("--eval-dir", type=Path, default=REPO.parent / "shared" / "eval")
    args = parser.parse_args(argv)
    reg = args.registry

    gc.collect()
    tracemalloc.start()
    started = time.perf_counter()
    detector = Detector.default()
    build_s = time.perf_counter() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    # build time again without tracemalloc overhead (fresh detector, snapshots already parsed)
    popular = [row.name for row in load_popular(reg)]
    keys = [normalize(n, reg) for n in popular]
    names = synthetic_names(popular, args.names)

    scan = detector.scan
    for name in names[:2000]:
        scan(name, reg)  # warm-up
    gc.collect()
    gc.disable()
    timings: list[float] = []
    clock = time.perf_counter_ns
    for name in names:
        t0 = clock()
        scan(name, reg)
        timings.append((clock() - t0) / 1000)
    gc.enable()

    naive_names = names[: args.naive]
    naive: list[float] = []
    for name in naive_names:
        t0 = clock()
        process.extractOne(normalize(name, reg), keys, scorer=Levenshtein.distance, score_cutoff=2)
        naive.append((clock() - t0) / 1000)

    # recall on dev squats whose target is in this registry's index (same names for both)
    recall_rows = []
    squats_path = args.eval_dir / "dev_squats.jsonl"
    if squats_path.exists():
        in_index = set(keys)
        for line in squats_path.read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            if normalize(row["target"], reg) in in_index:
                recall_rows.append((row["squat"], normalize(row["target"], reg)))
    ours_hit = sum(
        any(normalize(t.target, reg) == target for t in scan(squat, reg).threats)
        for squat, target in recall_rows
    )
    naive_hit = 0
    for squat, target in recall_rows:
        best = process.extractOne(normalize(squat, reg), keys, scorer=Levenshtein.distance, score_cutoff=2)
        naive_hit += bool(best and best[0] == target)

    med, p99 = statistics.median(timings), percentile(timings, 0.99)
    naive_med = statistics.median(naive)
    print(f"registry: {reg}; index: {len(keys)} popular names; names scanned: {len(names)}")
    print("| what | median µs/name | p99 µs/name | ratio vs naive (median) |")
    print("|---|---|---|---|")
    print(f"| Detector.scan (indexed) | {med:.1f} | {p99:.1f} | {naive_med / med:.0f}x |")
    print(f"| naive extractOne over {len(keys)} names ({len(naive)} names) | {naive_med:.1f} | "
          f"{percentile(naive, 0.99):.1f} | 1x |")  # fmt: skip
    print(f"build Detector.default() (npm + pypi + rubygems): {build_s:.2f} s (under tracemalloc), "
          f"peak traced memory {peak / 1e6:.0f} MB")  # fmt: skip
    t0 = time.perf_counter()
    from typostream.agents.detection.detector import _popular_index, _popular_targets

    _popular_targets.cache_clear()
    _popular_index.cache_clear()
    Detector.default()
    print(f"build Detector.default() without tracemalloc: {time.perf_counter() - t0:.2f} s")
    if recall_rows:
        print(f"recall on {len(recall_rows)} dev squats with a {reg} target in the index: "
              f"indexed {ours_hit}/{len(recall_rows)}, naive {naive_hit}/{len(recall_rows)}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
