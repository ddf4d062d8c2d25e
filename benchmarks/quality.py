"""Detection quality on the dev set: recall, alert rates on negatives, 0-alert check on the top 10,000.

Usage::

    .venv/bin/python benchmarks/quality.py [EVAL_DIR] [--check] [--misses]

EVAL_DIR defaults to ``../shared/eval`` relative to the repository root (format in its README).
With ``--check`` the exit status is 1 when a target is missed: npm recall >= 75 % with the bundled
index alone, >= 99 % with every target on the watchlist, <= 1 % alerts on ``mid`` and on
``random``, 0 alerts on the top 10,000 of each registry (by the snapshots, which hold their
sources' ranked names in rank order). The dev malicious packages are scanned by name only (no
metadata): the share raising a threat is printed, not checked. Alert rates on whole populations
that no list inside the product was derived from are ``benchmarks/false_alarms.py``'s.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

from typostream.agents.domain.detection import Detector, ScanResult
from typostream.agents.domain.detection.names import normalize
from typostream.agents.domain.detection.popular import top_names

REPO = Path(__file__).resolve().parent.parent
TARGETS = {"recall_default_npm": 0.75, "recall_watchlist": 0.99, "mid": 0.01, "random": 0.01}
TOP = 10_000


def read_jsonl(path: Path) -> list[dict[str, str]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def detected(result: ScanResult, target: str, registry: str) -> tuple[bool, str | None]:
    want = normalize(target, registry)
    for threat in result.threats:
        if normalize(threat.target, registry) == want:
            return True, threat.technique
    return False, None


def alerts(result: ScanResult) -> bool:
    return any(t.type == "typosquat" for t in result.threats)


def _by_registry(rows: list[dict[str, str]]) -> dict[str, list[dict[str, str]]]:
    out: dict[str, list[dict[str, str]]] = defaultdict(list)
    for row in rows:
        out[row["registry"]].append(row)
    return out


def table(title: str, header: list[str], rows: list[list[object]]) -> None:
    print(f"\n### {title}\n")
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join("---" for _ in header) + "|")
    for row in rows:
        print("| " + " | ".join(str(c) for c in row) + " |")


def pct(n: int, d: int) -> str:
    return f"{100 * n / d:.1f} % ({n}/{d})" if d else "n/a"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Detection quality on the dev set.")
    parser.add_argument("eval_dir", nargs="?", type=Path, default=REPO.parent / "shared" / "eval")
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument("--misses", action="store_true", help="list missed squats and false alarms")
    args = parser.parse_args(argv)
    squats = read_jsonl(args.eval_dir / "dev_squats.jsonl")
    negatives = read_jsonl(args.eval_dir / "dev_negatives.jsonl")

    started = time.perf_counter()
    default = Detector.default()
    watchlist = Detector.default(watchlist=sorted({s["target"] for s in squats}))
    print(f"detectors built in {time.perf_counter() - started:.2f} s")

    recall: dict[str, Counter[str]] = {"default": Counter(), "watchlist": Counter()}
    by_tech: dict[str, Counter[str]] = defaultdict(Counter)
    misses: list[str] = []
    for row in squats:
        reg = row["registry"]
        for mode, det in (("default", default), ("watchlist", watchlist)):
            ok, tech = detected(det.scan(row["squat"], reg), row["target"], reg)
            recall[mode][f"{reg}:total"] += 1
            recall[mode][f"{reg}:hit"] += ok
            if mode == "watchlist":
                by_tech[tech or "(missed)"][reg] += 1
                if not ok:
                    misses.append(f"{reg} {row['squat']} <- {row['target']}")
    rows = []
    for reg in [*sorted({s["registry"] for s in squats}), "all"]:
        cells: list[object] = [reg]
        for mode in ("default", "watchlist"):
            c = recall[mode]
            if reg == "all":
                hit = sum(v for k, v in c.items() if k.endswith(":hit"))
                tot = sum(v for k, v in c.items() if k.endswith(":total"))
            else:
                hit, tot = c[f"{reg}:hit"], c[f"{reg}:total"]
            cells.append(pct(hit, tot))
        rows.append(cells)
    table("Recall on dev squats", ["registry", "default index", "all targets as watchlist"], rows)
    regs = sorted({s["registry"] for s in squats})
    table(
        "Detected by technique (watchlist run)",
        ["technique", *regs, "total"],
        [
            [t, *(c[r] for r in regs), sum(c.values())]
            for t, c in sorted(by_tech.items(), key=lambda i: -sum(i[1].values()))
        ],
    )

    rates: dict[str, float] = {}
    false_alarms: list[str] = []
    rows = []
    for kind in sorted({n["kind"] for n in negatives}):
        items = [n for n in negatives if n["kind"] == kind]
        cells = [kind, len(items)]
        for mode, det in (("default", default), ("watchlist", watchlist)):
            flagged = [n for n in items if alerts(det.scan(n["name"], n["registry"]))]
            if mode == "default":
                rates[kind] = len(flagged) / len(items)
                for n in flagged:
                    r = det.scan(n["name"], n["registry"])
                    false_alarms.append(
                        f"{kind} {n['name']} -> {r.threats[0].target} ({r.threats[0].technique})"
                    )
            cells.append(pct(len(flagged), len(items)))
        rows.append(cells)
    table("Alert rate on negatives", ["kind", "names", "default index", "with watchlist"], rows)

    top_alerts: dict[str, int] = {}
    for reg in ("npm", "pypi"):
        names = top_names(reg, TOP)
        top_alerts[reg] = sum(alerts(watchlist.scan(n, reg)) or alerts(default.scan(n, reg)) for n in names)
    table(
        f"Alerts on the top {TOP:,}",
        ["registry", "names", "alerts"],
        [[r, len(top_names(r, TOP)), a] for r, a in top_alerts.items()],
    )

    malicious_path = args.eval_dir / "dev_malicious.jsonl"
    if malicious_path.exists():
        rows = []  # (the squats' rows are printed above)
        for reg, items in sorted(_by_registry(read_jsonl(malicious_path)).items()):
            results = [default.scan(m["name"], reg) for m in items]
            raising = sum(alerts(r) for r in results)
            rows.append(
                [
                    reg,
                    len(items),
                    pct(raising, len(items)),
                    pct(sum(bool(r.threats) for r in results), len(items)),
                ]
            )
        table(
            "Dev malicious packages, scanned by name only (no versions, no metadata)",
            ["registry", "packages", "typosquat threat", "any threat"],
            rows,
        )

    hit = sum(v for k, v in recall["watchlist"].items() if k.endswith(":hit"))
    tot = sum(v for k, v in recall["watchlist"].items() if k.endswith(":total"))
    npm_default = recall["default"]["npm:hit"] / max(recall["default"]["npm:total"], 1)
    checks = {
        "npm recall with the bundled index >= 75 %": npm_default >= TARGETS["recall_default_npm"],
        "recall with watchlist >= 99 %": hit / tot >= TARGETS["recall_watchlist"],
        "mid alerts <= 1 %": rates.get("mid", 0) <= TARGETS["mid"],
        "random alerts <= 1 %": rates.get("random", 0) <= TARGETS["random"],
        f"0 alerts on top {TOP:,}": not any(top_alerts.values()),
    }
    table("Targets", ["target", "met"], [[k, "yes" if v else "NO"] for k, v in checks.items()])
    if args.misses:
        print("\nmissed:", *misses, sep="\n  ")
        print("\nfalse alarms (default index):", *false_alarms, sep="\n  ")
    return 1 if args.check and not all(checks.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
