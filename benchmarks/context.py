"""Context-aware score on the dev set: which context signals real malicious packages trip, what
the version patterns' weights were measured from, and the metadata detectors' rates on fixtures.

Usage::

    .venv/bin/python benchmarks/context.py [EVAL_DIR] [--lists DIR]

* **Dev malicious** (``EVAL_DIR/dev_malicious.jsonl``, default ``../shared/eval``): each row is
  assessed by name only and with each of its listed versions (``Assessor.assess``, as ``scan
  NAME@VERSION`` does); a row counts once when any of its versions raises a threat / trips a signal.
  The rows carry no metadata, so only the signals that need none can be measured on them.
* **Legitimate reference** (``--lists``, default ``/usr/share/package-lists``, the development
  machine's npm/PyPI package lists: name, latest version, ..., summary; skipped when absent): the
  share of latest versions matching each version pattern and of empty summaries, next to the
  malicious rows' share, as a likelihood ratio (what ``agents/domain/context/tunables.py`` cites),
  and the share of names a version-pattern threat alone would alert on.
* **Fixtures** (``tests/agents/domain/context/fixtures/cases.json``: real-shaped registry documents,
  labelled): per metadata detector, the share of clean and of malicious cases it trips (a positive
  signal), and the share that becomes a threat (context alone, and with the case's name threat).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # the fixture loader lives with the tests

from tests.agents.domain.context.context_cases import load_cases  # noqa: E402
from typostream.agents.domain.assess import Assessor, load_known  # noqa: E402
from typostream.agents.domain.context import (  # noqa: E402
    DETECTORS,
    context_only_threat,
    judge,
    run_detectors,
    version_signals,
)
from typostream.agents.domain.context.version import internal_words, version_pattern  # noqa: E402
from typostream.agents.domain.detection import Detector  # noqa: E402


def pct(n: int, d: int) -> str:
    return f"{100 * n / d:.2f} % ({n}/{d})" if d else "n/a"


def table(title: str, header: list[str], rows: list[list[object]]) -> None:
    print(f"\n### {title}\n")
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join("---" for _ in header) + "|")
    for row in rows:
        print("| " + " | ".join(str(c) for c in row) + " |")


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def list_rows(path: Path, summary_column: int) -> Iterator[tuple[str, str, str]]:
    """(name, version, summary) of a package list; tab-split lines (no csv quoting: summaries hold
    unbalanced quotes)."""
    with path.open(encoding="utf-8", errors="replace") as lines:
        next(lines, None)
        for line in lines:
            cells = line.rstrip("\n").split("\t")
            if len(cells) >= 2:
                yield cells[0], cells[1], cells[summary_column] if len(cells) > summary_column else ""


def dev_malicious(eval_dir: Path) -> dict[str, Counter[str]]:
    """Per registry: rows, rows raising a threat by name / with versions, rows per signal kind."""
    assessor = Assessor(Detector.default(), load_known())
    counts: dict[str, Counter[str]] = {}
    for row in read_jsonl(eval_dir / "dev_malicious.jsonl"):
        reg, name, versions = row["registry"], row["name"], row.get("versions") or []
        c = counts.setdefault(reg, Counter())
        c["rows"] += 1
        c["with versions"] += bool(versions)
        c["threat by name"] += bool(assessor.assess(name, reg).threats)
        results = [assessor.assess(name, reg, v) for v in versions] or [assessor.assess(name, reg)]
        c["threat with versions"] += any(r.threats for r in results)
        c["version threat alone"] += any(t.technique == "version_pattern" for r in results for t in r.threats)
        c["rescored name threat"] += any(getattr(t, "signals", ()) and t.technique != "version_pattern"
                                         for r in results for t in r.threats)  # fmt: skip
        kinds = {s.kind for v in versions for s in version_signals(name, v)}
        for kind in kinds:
            c[kind] += 1
        c["any version signal"] += bool(kinds)
        c["internal-looking name"] += bool(internal_words(name))
    return counts


def reference(lists: Path) -> dict[str, Counter[str]]:
    """Per registry list: rows, latest versions per pattern, empty summaries, version-only alerts."""
    out: dict[str, Counter[str]] = {}
    for reg, file, summary in (("npm", "npm.tsv", 3), ("pypi", "pypi.tsv", 4)):
        path = lists / file
        if not path.exists():
            continue
        c = out.setdefault(reg, Counter())
        for name, version, text in list_rows(path, summary):
            c["rows"] += 1
            pattern = version_pattern(version)
            if pattern is not None:
                c[f"version.{pattern[0]}"] += 1
                c["version-only threat"] += (
                    context_only_threat(name, version_signals(name, version)) is not None
                )
            c["empty summary"] += not text.strip()
            c["internal-looking name"] += bool(internal_words(name))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Context-aware score on the dev set and fixtures.")
    parser.add_argument("eval_dir", nargs="?", type=Path, default=REPO.parent / "shared" / "eval")
    parser.add_argument("--lists", type=Path, default=Path("/usr/share/package-lists"))
    args = parser.parse_args(argv)

    mal = dev_malicious(args.eval_dir)
    keys = ["threat by name", "threat with versions", "version threat alone", "rescored name threat",
            "any version signal", "version.nines", "version.nines_component", "version.high_major",
            "version.internal_name", "internal-looking name"]  # fmt: skip
    table(
        "Dev malicious rows: threats and the signals their versions trip",
        ["", *(f"{r} ({mal[r]['rows']} rows, {mal[r]['with versions']} with versions)" for r in sorted(mal))],
        [[k, *(pct(mal[r][k], mal[r]["rows"]) for r in sorted(mal))] for k in keys],
    )

    ref = reference(args.lists)
    if ref:
        rows = []
        npm_mal = mal.get("npm", Counter())
        for kind in (
            "version.nines",
            "version.nines_component",
            "version.high_major",
            "internal-looking name",
        ):
            bad = npm_mal[kind] / max(npm_mal["rows"], 1)
            good = ref["npm"][kind] / max(ref["npm"]["rows"], 1) if "npm" in ref else 0.0
            ratio = f"{bad / good:,.0f} (ln {math.log(bad / good):.1f})" if bad and good else "n/a"
            rows.append([kind, pct(npm_mal[kind], npm_mal["rows"]),
                         *(pct(ref[r][kind], ref[r]["rows"]) for r in sorted(ref)), ratio])  # fmt: skip
        for kind in ("empty summary", "version-only threat"):
            rows.append([kind, "", *(pct(ref[r][kind], ref[r]["rows"]) for r in sorted(ref)), ""])
        table(
            "Against the legitimate reference (latest version of every listed package)",
            ["", "dev malicious npm", *(f"{r} list" for r in sorted(ref)), "LR npm"],
            rows,
        )
    else:
        print(f"\n(no package lists under {args.lists}: legitimate reference skipped)")

    cases = load_cases()
    labels = Counter(c.label for c in cases)
    trips: dict[str, Counter[str]] = {d: Counter() for d in DETECTORS}
    alerts: Counter[str] = Counter()
    for case in cases:
        run = run_detectors(case.context)
        assert not run.errors, run.errors
        for detector in {s.kind.split(".")[0] for s in run.signals if s.weight > 0}:
            trips[detector][case.label] += 1
        alone = judge(case.context, run.signals, None)
        alerts[f"{case.label} alone"] += alone.threat is not None
        if case.evidence is not None:
            named = judge(case.context, run.signals, case.evidence, case.evidence.severity)
            alerts[f"{case.label} named"] += 1
            alerts[f"{case.label} named raised"] += named.threat is not None
    table(
        f"Context detectors on the fixtures ({labels['clean']} clean, {labels['malicious']} malicious cases)",
        ["detector", "trips on clean", "trips on malicious"],
        [
            [d, pct(c["clean"], labels["clean"]), pct(c["malicious"], labels["malicious"])]
            for d, c in trips.items()
        ],
    )
    table(
        "Threats from context on the fixtures",
        ["", "clean", "malicious"],
        [
            [
                "context alone (no name threat)",
                pct(alerts["clean alone"], labels["clean"]),
                pct(alerts["malicious alone"], labels["malicious"]),
            ],
            [
                "raises the case's name threat",
                pct(alerts["clean named raised"], alerts["clean named"]),
                pct(alerts["malicious named raised"], alerts["malicious named"]),
            ],
        ],
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
