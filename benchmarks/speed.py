"""Per-name scan latency and index build cost, against a naive rapidfuzz scan measured in the same run.

Usage::

    .venv/bin/python benchmarks/speed.py [--names N] [--naive N] [--registry pypi] [--eval-dir DIR]
                                         [--packages-dir DIR]

Two name mixes, N names each (default 100,000), timed one ``Detector.scan`` call at a time:

* **realistic**: what a registry feed mostly carries, i.e. names that are not popular. Sampled (seeded)
  from the registry's name list in ``--packages-dir`` (default ``data/names``: ``npm.tsv.gz`` holds
  every npm name, ``pypi.tsv.gz`` 200,000 random unranked PyPI names; a directory of full
  ``npm.tsv``/``pypi.tsv`` lists also works; first column, popular names removed) when that file
  exists; otherwise (``fallback``) word combinations of popular names plus a random 2-4 letter word,
  seeded. The output says which one was used.
* **adversarial**: half one-edit mutations of popular names, half combinations of popular-name words
  (most names have candidates to verify: the pessimistic case).

The baseline is ``rapidfuzz.process.extractOne`` over the same registry's popular index with a
Levenshtein cut-off of 2 (a name already in the index is clean), timed on the first ``--naive`` names
of each mix. Both are also scored on the same dev rows: recall on the dev squats whose target is in
the index, and the alert rate on this registry's dev negatives (npm: ``mid``, PyPI: ``random``), so
that a recall gained by accepting any two edits is shown with its false alarms.
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
from collections.abc import Callable
from pathlib import Path

from rapidfuzz import process
from rapidfuzz.distance import Levenshtein

from typostream.agents.domain.detection import Detector
from typostream.agents.domain.detection.names import normalize
from typostream.agents.domain.detection.popular import load_popular
from typostream.data.names import NAMES_DIR, iter_names

REPO = Path(__file__).resolve().parent.parent
PACKAGE_LISTS = {"npm": ("npm.tsv.gz", "npm.tsv"), "pypi": ("pypi.tsv.gz", "pypi.tsv")}
NEGATIVE_KIND = {"npm": "mid", "pypi": "random"}


def popular_words(popular: list[str]) -> list[str]:
    return [w for name in popular for w in name.replace("_", "-").split("-") if len(w) > 2]


def adversarial_names(popular: list[str], n: int, seed: int = 7) -> list[str]:
    """Half one-edit mutations of popular names, half combinations of popular-name words."""
    rng = random.Random(seed)
    alphabet = string.ascii_lowercase + string.digits
    words = popular_words(popular)
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


def realistic_names(
    registry: str, popular: list[str], n: int, packages_dir: Path, seed: int = 11
) -> tuple[list[str], str]:
    """``n`` non-popular names and where they came from (the registry list, or the fallback)."""
    rng = random.Random(seed)
    popular_keys = {normalize(p, registry) for p in popular}
    found = [packages_dir / f for f in PACKAGE_LISTS.get(registry, ()) if (packages_dir / f).is_file()]
    if found:
        path = found[0]
        pool = sorted({x for x in iter_names(path) if normalize(x, registry) not in popular_keys})
        picked = rng.sample(pool, n) if n <= len(pool) else [rng.choice(pool) for _ in range(n)]
        shown = path.relative_to(REPO) if path.is_relative_to(REPO) else path
        return picked, f"{len(pool):,} non-popular names of {shown}"
    words = popular_words(popular)
    out = []
    while len(out) < n:
        extra = "".join(rng.choice(string.ascii_lowercase) for _ in range(rng.randint(2, 4)))
        parts = [rng.choice(words) for _ in range(rng.randint(1, 2))]
        parts.insert(rng.randrange(len(parts) + 1), extra)
        out.append("-".join(parts))
    return out, "fallback: popular-name words plus a random 2-4 letter word (no package list found)"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def timed(fn: Callable[[str], object], names: list[str]) -> list[float]:
    """Microseconds per call, gc off (one call at a time, as the streaming worker makes them)."""
    gc.collect()
    gc.disable()
    out: list[float] = []
    clock = time.perf_counter_ns
    try:
        for name in names:
            t0 = clock()
            fn(name)
            out.append((clock() - t0) / 1000)
    finally:
        gc.enable()
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Scan latency vs a naive rapidfuzz scan.")
    parser.add_argument("--names", type=int, default=100_000)
    parser.add_argument("--naive", type=int, default=2_000, help="names timed for the naive baseline")
    parser.add_argument("--registry", default="pypi")
    parser.add_argument("--eval-dir", type=Path, default=REPO.parent / "shared" / "eval")
    parser.add_argument(
        "--packages-dir", type=Path, default=NAMES_DIR, help="folder with npm.tsv(.gz) / pypi.tsv(.gz)"
    )
    args = parser.parse_args(argv)
    reg = args.registry

    gc.collect()
    tracemalloc.start()
    started = time.perf_counter()
    detector = Detector.default()
    build_traced = time.perf_counter() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    from typostream.agents.domain.detection.detector import _popular_index, _popular_targets

    _popular_targets.cache_clear()
    _popular_index.cache_clear()
    started = time.perf_counter()
    detector = Detector.default()
    build_s = time.perf_counter() - started

    popular = [row.name for row in load_popular(reg)]
    keys = [normalize(n, reg) for n in popular]
    in_index = set(keys)

    def scan(name: str) -> object:
        return detector.scan(name, reg)

    def naive(name: str, max_edits: int = 2) -> tuple[str, float, int] | None:
        key = normalize(name, reg)
        if key in in_index:
            return None
        return process.extractOne(key, keys, scorer=Levenshtein.distance, score_cutoff=max_edits)

    realistic, source = realistic_names(reg, popular, args.names, args.packages_dir)
    mixes = {"realistic": realistic, "adversarial": adversarial_names(popular, args.names)}
    print(f"registry: {reg}; index: {len(keys):,} popular names; {args.names:,} names per mix")
    print(f"realistic mix: {source}")
    print("\n| mix | Detector.scan median / p99 µs | naive extractOne median / p99 µs | ratio (median) |")
    print("|---|---|---|---|")
    for mix, names in mixes.items():
        for name in names[:2000]:
            scan(name)  # warm-up
        ours = timed(scan, names)
        base = timed(naive, names[: args.naive])
        med, base_med = statistics.median(ours), statistics.median(base)
        print(f"| {mix} | {med:.1f} / {percentile(ours, 0.99):.1f} | {base_med:.1f} / "
              f"{percentile(base, 0.99):.1f} ({len(base):,} names) | {base_med / med:.0f}x |")  # fmt: skip

    print(f"\nbuild Detector.default() (npm + pypi + rubygems): {build_s:.2f} s "
          f"({build_traced:.2f} s under tracemalloc); peak traced memory {peak / 1e6:.0f} MB")  # fmt: skip

    squats_path = args.eval_dir / "dev_squats.jsonl"
    negatives_path = args.eval_dir / "dev_negatives.jsonl"
    if not squats_path.exists():
        return 0
    rows = [json.loads(line) for line in squats_path.read_text(encoding="utf-8").splitlines() if line]
    squats = [
        (r["squat"], normalize(r["target"], reg)) for r in rows if normalize(r["target"], reg) in in_index
    ]
    ours_hit = sum(
        any(normalize(t.target, reg) == want for t in detector.scan(s, reg).threats) for s, want in squats
    )
    naive_hit, naive1_hit = 0, 0
    for squat, want in squats:
        best, best1 = naive(squat), naive(squat, 1)
        naive_hit += bool(best and best[0] == want)
        naive1_hit += bool(best1 and best1[0] == want)
    kind = NEGATIVE_KIND.get(reg)
    negs = []
    if negatives_path.exists() and kind:
        negs = [json.loads(line) for line in negatives_path.read_text(encoding="utf-8").splitlines() if line]
        negs = [n["name"] for n in negs if n["kind"] == kind and n["registry"] == reg]
    ours_fa = sum(any(t.type == "typosquat" for t in detector.scan(n, reg).threats) for n in negs)
    naive_fa = sum(naive(n) is not None for n in negs)
    naive1_fa = sum(naive(n, 1) is not None for n in negs)
    # Recall alone flatters the naive scan: compare it at both cut-offs, next to its alert rate.
    print(f"\n| same dev rows, {reg} index | Detector.scan | naive (<= 2 edits) | naive (<= 1 edit) |")
    print("|---|---|---|---|")
    print(f"| recall, {len(squats)} dev squats with the target in the index | {ours_hit}/{len(squats)} | "
          f"{naive_hit}/{len(squats)} | {naive1_hit}/{len(squats)} |")  # fmt: skip
    if negs:

        def pct(n: int) -> str:
            return f"{n} ({100 * n / len(negs):.1f} %)"

        print(f"| alerts on {len(negs)} `{kind}` dev negatives | {pct(ours_fa)} | {pct(naive_fa)} | "
              f"{pct(naive1_fa)} |")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
