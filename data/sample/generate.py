"""Generate the bundled sample feed (deterministic; run from the repository root).

    .venv/bin/python data/sample/generate.py --npm NPM_TSV --pypi PYPI_TSV [--seed N] [--count N]

Writes ``data/sample/feed.jsonl.gz`` (OpenSSF package-feeds publish events, npm and PyPI,
~one hour of increasing ``created_date``) and ``data/sample/labels.jsonl.gz`` (one line per
injected squat: ``{name, registry, target, technique}``). Legit names are sampled from the
registry package lists of the development machine (the same lists ``data/popular/generate.py``
and ``data/names/generate.py`` read; read only here, only the outputs are committed):

* npm.tsv:  name, version, downloads_a_month, summary
* pypi.tsv: name, version, month, rank_among_15000_most_downloaded, summary

Both are required: the output depends on the full lists (the low-popularity pools are sampled by
position, and every squat is checked against all existing names), so the bundled name samples in
``data/names`` cannot reproduce it. Same lists, seed and count give a byte-identical feed.

Mix: ~55 % npm / ~45 % PyPI; ~10 % new versions of popular packages, ~3 % squats of a
top-1000 package made by one technique each, the rest legit low-popularity packages.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import io
import json
import random
import re
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

HERE = Path(__file__).resolve().parent
SEED = 20261102
COUNT = 3000
NPM_SHARE = 0.55
POPULAR_SHARE = 0.10
SQUAT_SHARE = 0.03
TOP_N = 1000
START = datetime(2026, 11, 2, 14, 0, 0, tzinfo=UTC)
DURATION_S = 3600.0

NPM_NAME = re.compile(r"^(@[a-z0-9][a-z0-9._~-]*/)?[a-z0-9][a-z0-9._~-]*$")
PYPI_NAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?$")
SEMVER = re.compile(r"^(\d+)\.(\d+)\.(\d+)$")
PEP440_RELEASE = re.compile(r"^(\d+(?:\.\d+)*)$")

QWERTY_ROWS = ["1234567890", "qwertyuiop", "asdfghjkl", "zxcvbnm"]
HOMOGLYPHS = {"o": "0", "0": "o", "l": "1", "1": "l", "i": "1"}
TECHNIQUES = [
    "omission",
    "transposition",
    "repetition",
    "adjacent_key",
    "homoglyph",
    "separator",
    "affix",
    "scope_confusion",
]


@dataclass(frozen=True)
class Package:
    name: str
    version: str
    registry: str  # "npm" | "pypi"


def _adjacent_keys() -> dict[str, str]:
    out: dict[str, str] = {}
    for r, row in enumerate(QWERTY_ROWS):
        for c, ch in enumerate(row):
            near = [row[c - 1] if c > 0 else "", row[c + 1] if c + 1 < len(row) else ""]
            for other in (r - 1, r + 1):
                if 0 <= other < len(QWERTY_ROWS) and c < len(QWERTY_ROWS[other]):
                    near.append(QWERTY_ROWS[other][c])
            out[ch] = "".join(n for n in near if n)
    return out


ADJACENT = _adjacent_keys()


def pypi_normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _read_tsv(path: Path) -> Iterable[list[str]]:
    with path.open(encoding="utf-8", errors="replace", newline="") as fh:
        reader = csv.reader(fh, delimiter="\t", quoting=csv.QUOTE_NONE)
        next(reader, None)
        yield from reader


def load_npm(path: Path) -> tuple[list[Package], list[Package], set[str]]:
    """Return (top TOP_N by downloads, low-popularity pool, all names)."""
    rows: list[tuple[int, Package]] = []
    names: set[str] = set()
    for cols in _read_tsv(path):
        if len(cols) < 3 or not NPM_NAME.match(cols[0]):
            continue
        names.add(cols[0])
        downloads = int(cols[2]) if cols[2].isdigit() else 0
        rows.append((downloads, Package(cols[0], cols[1], "npm")))
    rows.sort(key=lambda r: (-r[0], r[1].name))
    top = [p for _d, p in rows[:TOP_N]]
    low = [p for d, p in rows if 20 <= d < 5000 and SEMVER.match(p.version)]
    return top, low, names


def load_pypi(path: Path) -> tuple[list[Package], list[Package], set[str]]:
    """Return (top TOP_N by rank, low-popularity (unranked, recent) pool, all normalized names)."""
    ranked: list[tuple[int, Package]] = []
    low: list[Package] = []
    names: set[str] = set()
    for cols in _read_tsv(path):
        if len(cols) < 4 or not PYPI_NAME.match(cols[0]):
            continue
        names.add(pypi_normalize(cols[0]))
        pkg = Package(cols[0], cols[1], "pypi")
        if cols[3].isdigit():
            ranked.append((int(cols[3]), pkg))
        elif cols[2] >= "2024-01" and PEP440_RELEASE.match(cols[1]):
            low.append(pkg)
    ranked.sort(key=lambda r: r[0])
    return [p for _r, p in ranked[:TOP_N]], low, names


def next_version(version: str, registry: str, rng: random.Random) -> str:
    """A plausible next release after ``version`` (semver for npm, PEP 440 for PyPI)."""
    m = SEMVER.match(version)
    if m:
        major, minor, patch = (int(x) for x in m.groups())
        roll = rng.random()
        if roll < 0.7:
            return f"{major}.{minor}.{patch + 1}"
        if roll < 0.95:
            return f"{major}.{minor + 1}.0"
        if registry == "npm":
            return f"{major + 1}.0.0-beta.{rng.randint(0, 3)}"
        return f"{major + 1}.0.0rc{rng.randint(1, 3)}"
    m = PEP440_RELEASE.match(version)
    if m and registry == "pypi":
        parts = [int(x) for x in version.split(".")]
        parts[-1] += 1
        return ".".join(str(x) for x in parts)
    if registry == "npm":
        return f"{rng.randint(0, 4)}.{rng.randint(0, 20)}.{rng.randint(0, 30)}"
    return f"{rng.randint(0, 4)}.{rng.randint(0, 20)}.{rng.randint(0, 30)}"


# -- squat techniques: each returns a candidate or None -------------------------------------


def _split_scope(name: str) -> tuple[str, str]:
    if name.startswith("@") and "/" in name:
        scope, _, bare = name.partition("/")
        return scope + "/", bare
    return "", name


def omission(name: str, registry: str, rng: random.Random) -> str | None:
    scope, bare = _split_scope(name)
    spots = [i for i, ch in enumerate(bare) if ch.isalnum()]
    if len(bare) < 5 or not spots:
        return None
    i = rng.choice(spots)
    return scope + bare[:i] + bare[i + 1 :]


def transposition(name: str, registry: str, rng: random.Random) -> str | None:
    scope, bare = _split_scope(name)
    spots = [i for i in range(len(bare) - 1) if bare[i] != bare[i + 1] and (bare[i] + bare[i + 1]).isalnum()]
    if len(bare) < 4 or not spots:
        return None
    i = rng.choice(spots)
    return scope + bare[:i] + bare[i + 1] + bare[i] + bare[i + 2 :]


def repetition(name: str, registry: str, rng: random.Random) -> str | None:
    scope, bare = _split_scope(name)
    spots = [i for i, ch in enumerate(bare) if ch.isalpha()]
    if not spots:
        return None
    i = rng.choice(spots)
    return scope + bare[: i + 1] + bare[i] + bare[i + 1 :]


def adjacent_key(name: str, registry: str, rng: random.Random) -> str | None:
    scope, bare = _split_scope(name)
    spots = [i for i, ch in enumerate(bare) if ch.lower() in ADJACENT and ch.isalpha()]
    if len(bare) < 4 or not spots:
        return None
    i = rng.choice(spots)
    return scope + bare[:i] + rng.choice(ADJACENT[bare[i].lower()]) + bare[i + 1 :]


def homoglyph(name: str, registry: str, rng: random.Random) -> str | None:
    scope, bare = _split_scope(name)
    spots = [i for i, ch in enumerate(bare) if ch in HOMOGLYPHS]
    if not spots:
        return None
    i = rng.choice(spots)
    return scope + bare[:i] + HOMOGLYPHS[bare[i]] + bare[i + 1 :]


def separator(name: str, registry: str, rng: random.Random) -> str | None:
    scope, bare = _split_scope(name)
    seps = [i for i, ch in enumerate(bare) if ch in "-_."]
    if seps:
        i = rng.choice(seps)
        # PyPI treats - _ . alike (PEP 503), so there only dropping the separator is a new name.
        options = [""] if registry == "pypi" else [s for s in ("", "-", "_", ".") if s != bare[i]]
        return scope + bare[:i] + rng.choice(options) + bare[i + 1 :]
    if len(bare) >= 6:
        i = rng.randint(2, len(bare) - 3)
        return scope + bare[:i] + "-" + bare[i:]
    return None


def affix(name: str, registry: str, rng: random.Random) -> str | None:
    scope, bare = _split_scope(name)
    if registry == "npm":
        if scope:
            return None  # scoped targets are imitated by scope_confusion instead
        return bare + rng.choice(["-js", "js", "-node", "-lib"]) if not bare.endswith("js") else None
    lower = bare.lower()
    if lower.startswith(("python-", "py")):
        return None
    return rng.choice(["python-", "py", "python3-"]) + bare if rng.random() < 0.7 else bare + "-py"


def scope_confusion(name: str, registry: str, rng: random.Random) -> str | None:
    scope, bare = _split_scope(name)
    if registry != "npm" or not scope:
        return None
    inner = scope[1:-1]
    i = rng.randrange(len(inner))
    typo = rng.choice([inner[: i + 1] + inner[i] + inner[i + 1 :], inner[:i] + inner[i + 1 :], inner + "js"])
    return f"@{typo}/{bare}" if typo and typo != inner else None


MAKERS: dict[str, Callable[[str, str, random.Random], str | None]] = {
    "omission": omission,
    "transposition": transposition,
    "repetition": repetition,
    "adjacent_key": adjacent_key,
    "homoglyph": homoglyph,
    "separator": separator,
    "affix": affix,
    "scope_confusion": scope_confusion,
}


def make_squat(
    target: Package, technique: str, existing: set[str], taken: set[str], rng: random.Random
) -> str | None:
    for _ in range(8):
        cand = MAKERS[technique](target.name, target.registry, rng)
        if not cand or cand == target.name:
            return None
        if target.registry == "npm":
            if not NPM_NAME.match(cand) or cand in existing or cand in taken:
                continue
        else:
            key = pypi_normalize(cand)
            if not PYPI_NAME.match(cand) or key == pypi_normalize(target.name) or key in existing | taken:
                continue
        return cand
    return None


def squat_version(target: Package, rng: random.Random) -> str:
    roll = rng.random()
    if roll < 0.4 and (SEMVER.match(target.version) or PEP440_RELEASE.match(target.version)):
        return next_version(target.version, target.registry, rng)  # pose as the next release
    return rng.choice(
        ["0.0.1", "1.0.0", "0.1.0", "1.0.1", "99.0.0"]
        if target.registry == "npm"
        else ["0.0.1", "1.0.0", "0.1", "1.0", "99.0"]
    )


def generate(
    npm_path: Path, pypi_path: Path, seed: int, count: int
) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    rng = random.Random(seed)
    npm_top, npm_low, npm_names = load_npm(npm_path)
    pypi_top, pypi_low, pypi_names = load_pypi(pypi_path)
    n_squat = round(count * SQUAT_SHARE)
    n_popular = round(count * POPULAR_SHARE)
    n_npm = round(count * NPM_SHARE)

    picks: list[tuple[Package, dict[str, str] | None]] = []
    labels: list[dict[str, str]] = []
    taken: set[str] = set()
    # Squats: npm first (scope confusion needs npm), techniques round-robin so every one is present.
    n_squat_npm = round(n_squat * NPM_SHARE)
    attempts = 0
    while len(labels) < n_squat and attempts < 100_000:
        attempts += 1
        registry = "npm" if len(labels) < n_squat_npm else "pypi"
        technique = TECHNIQUES[len(labels) % len(TECHNIQUES)]
        if registry == "pypi" and technique == "scope_confusion":
            technique = "affix"
        top = npm_top if registry == "npm" else pypi_top
        if technique == "scope_confusion":
            pool = [p for p in top if p.name.startswith("@")]
            target = rng.choice(pool)
        else:
            target = top[min(int(rng.expovariate(1 / 200)), len(top) - 1)]  # favour the most popular
        existing = npm_names if registry == "npm" else pypi_names
        name = make_squat(target, technique, existing, taken, rng)
        if name is None:
            continue
        taken.add(name if registry == "npm" else pypi_normalize(name))
        labels.append({"name": name, "registry": registry, "target": target.name, "technique": technique})
        picks.append((Package(name, squat_version(target, rng), registry), None))

    n_squat_npm = sum(1 for lab in labels if lab["registry"] == "npm")
    n_pop_npm = round(n_popular * NPM_SHARE)
    for i in range(n_popular):
        target = rng.choice(npm_top if i < n_pop_npm else pypi_top)
        picks.append(
            (Package(target.name, next_version(target.version, target.registry, rng), target.registry), None)
        )
    n_low_npm = n_npm - n_squat_npm - n_pop_npm
    n_low_pypi = count - len(picks) - n_low_npm
    for pool, k in ((npm_low, n_low_npm), (pypi_low, n_low_pypi)):
        for pkg in rng.sample(pool, k):
            picks.append(
                (Package(pkg.name, next_version(pkg.version, pkg.registry, rng), pkg.registry), None)
            )
    rng.shuffle(picks)

    events: list[dict[str, str]] = []
    gaps = [rng.expovariate(1.0) for _ in picks]
    scale = DURATION_S / sum(gaps)
    t = 0.0
    last_ms = -1
    for (pkg, _), gap in zip(picks, gaps, strict=True):
        t += gap * scale
        ms = max(int(t * 1000), last_ms + 1)  # strictly increasing
        last_ms = ms
        created = START + timedelta(milliseconds=ms)
        events.append(
            {
                "name": pkg.name,
                "version": pkg.version,
                "created_date": created.strftime("%Y-%m-%dT%H:%M:%S.")
                + f"{created.microsecond // 1000:03d}Z",
                "type": pkg.registry,
                "artifact_id": "",
                "schema_ver": "1.1.0",
            }
        )
    return events, labels


def write_jsonl_gz(path: Path, records: list[dict[str, str]]) -> None:
    raw = io.BytesIO()
    # mtime=0 and no file name in the header keep the output byte-for-byte reproducible.
    with gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=9) as gz:
        for rec in records:
            gz.write(json.dumps(rec, ensure_ascii=False, separators=(",", ":")).encode() + b"\n")
    path.write_bytes(raw.getvalue())


SEED_ADVISORIES = HERE.parent / "patterns" / "known_malicious.seed.json"
# Invalid on purpose, so the demo shows the dead-letter topic at work (reasons: schema).
MALFORMED: list[dict[str, object]] = [
    {"name": "missing-version", "created_date": "2026-11-02T14:30:00Z", "type": "npm"},
    {"name": 12345, "version": "1.0.0", "created_date": "2026-11-02T14:31:00Z", "type": "npm"},
    {"name": "gem-thing", "version": "1.0.0", "created_date": "2026-11-02T14:32:00Z", "type": "rubygems"},
    {"name": "no-tz", "version": "1.0.0", "created_date": "2026-11-02 14:33:00", "type": "pypi"},
]


def add_known_malicious(
    events: list[dict[str, str]], labels: list[dict[str, str]], rng: random.Random
) -> None:
    """Replay one affected version of each bundled known-malicious advisory, at seeded positions."""
    advisories = json.loads(SEED_ADVISORIES.read_text())["advisories"]
    for advisory in advisories:
        for affected in advisory["affected"]:
            registry = "npm" if affected["package"]["ecosystem"] == "npm" else "pypi"
            version = (affected.get("versions") or ["1.0.0"])[0]
            at = rng.randrange(len(events))
            name = affected["package"]["name"]
            events.insert(at, {**events[at], "name": name, "version": version, "type": registry})
            labels.append(
                {"name": name, "registry": registry, "target": advisory["id"], "technique": "known_malicious"}
            )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--npm", type=Path, required=True, help="npm.tsv package list (source)")
    parser.add_argument("--pypi", type=Path, required=True, help="pypi.tsv package list (source)")
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--count", type=int, default=COUNT)
    parser.add_argument("--out", type=Path, default=HERE)
    args = parser.parse_args(argv)
    for flag, path in (("--npm", args.npm), ("--pypi", args.pypi)):
        if not path.is_file():
            parser.error(f"{flag} {path}: file not found (the registry package list to sample from)")
    events, labels = generate(args.npm, args.pypi, args.seed, args.count)
    rng = random.Random(args.seed + 1)
    add_known_malicious(events, labels, rng)
    for record in MALFORMED:
        events.insert(rng.randrange(len(events)), record)  # type: ignore[arg-type]
    write_jsonl_gz(args.out / "feed.jsonl.gz", events)
    write_jsonl_gz(args.out / "labels.jsonl.gz", labels)
    by_type: dict[str, int] = {}
    for e in events:
        by_type[e["type"]] = by_type.get(e["type"], 0) + 1
    by_tech: dict[str, int] = {}
    for lab in labels:
        by_tech[lab["technique"]] = by_tech.get(lab["technique"], 0) + 1
    print(f"{len(events)} events {by_type}; {len(labels)} labelled threats {by_tech}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
