"""``typostream scan`` start-up: first-answer latency and per-name cost, CLI against the library.

Usage::

    .venv/bin/python benchmarks/scan_start.py [--registry pypi --registry npm] [--names 20000] [--runs 7]

All in one run, each figure the median (and best) of ``--runs`` subprocesses of the installed
``typostream`` entry point, in an empty working directory with its own data dir:

* **first answer**: from spawning ``typostream scan --registry R <squat>`` to its first line on
  stdout, with the index cache switched off (``TYPOSTREAM_DETECTOR_CACHE=false``: every index
  built in memory, as before the cache), cold (an empty data dir: the scanned registry's index is
  built and written) and warm (the cache present);
* **imports**: ``python -X importtime -m typostream.streams.cli scan ...`` (warm): the sum of the
  top-level imports, and whether any worker library (Faust, aiokafka, ClickHouse, aiohttp...)
  was imported;
* **per name**: the CLI's marginal cost, ``(t(N names) - t(1 name)) / (N - 1)`` with the names as
  arguments (``scan -r R --format json NAME...``), against the library in this process on the
  same names: ``Detector.scan`` and ``Assessor.assess`` (mean of a timed loop, best of 3, and the
  median of single timed calls with gc off, as ``speed.py`` reports).

Names: ``--names`` names sampled (seeded) from ``data/names/<registry>.tsv.gz``, popular ones removed.

Bytecode: an installed package has its ``.pyc`` files, and the warm-up run is there to write them.
With ``PYTHONDONTWRITEBYTECODE`` set (as in some sandboxes) nothing is written and every start
compiles every module of the scan path again (~40 ms here). ``--pycache temp`` (the default) drops
that variable for the subprocesses and points ``PYTHONPYCACHEPREFIX`` at the run's temporary
directory, so bytecode is cached there and the source tree is left alone; ``--pycache inherit``
runs them in the environment as it is (how the figures before this option were measured).
"""

from __future__ import annotations

import argparse
import gc
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

from rich.console import Console
from rich.table import Table

import typostream.agents.adapters.index_cache  # noqa: F401  (fingerprints the detection code now)
from typostream.agents.domain.detection.popular import load_popular
from typostream.data.names import iter_names, names_file
from typostream.streams.components import build_assessor, build_detector
from typostream.streams.config import Settings

EXE = Path(sys.executable).with_name("typostream")
SQUATS = {"pypi": "reqeusts", "npm": "lodahs"}
WORKER_LIBRARIES = ("faust", "mode", "aiokafka", "clickhouse_connect", "chdb", "aiohttp", "yarl", "redis")
SCAN_ENV = ("TYPOSTREAM_WATCHLIST_FILE", "TYPOSTREAM_ALLOWLIST_FILE", "TYPOSTREAM_KNOWN_MALICIOUS_PATHS")


PYCACHE: dict[str, str] = {}
"""Set by ``main`` for ``--pycache temp``: ``{"PYTHONPYCACHEPREFIX": <temporary directory>}``."""


def environ(data_dir: Path, cache: bool = True) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in SCAN_ENV and not k.startswith("TYPOSTREAM_DATA")}
    env["TYPOSTREAM_DATA_DIR"] = str(data_dir)
    env["TYPOSTREAM_DETECTOR_CACHE"] = "true" if cache else "false"
    if PYCACHE:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env.update(PYCACHE)
    return env


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def first_answer(args: list[str], env: dict[str, str], cwd: Path) -> tuple[float, float]:
    """Seconds from spawning ``typostream scan ARGS`` to its first line on stdout, and the CPU
    seconds the process used in all (a figure other work on the machine hardly changes)."""
    cpu = children_cpu()
    start = time.perf_counter()
    with subprocess.Popen(
        [str(EXE), "scan", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=cwd
    ) as proc:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        elapsed = time.perf_counter() - start
        _, err = proc.communicate()
    if not line or proc.returncode not in (0, 1):
        raise SystemExit(f"scan {args[:4]} failed ({proc.returncode}): {err.decode()[:500]}")
    return elapsed, children_cpu() - cpu


def run_time(args: list[str], env: dict[str, str], cwd: Path) -> tuple[float, float]:
    """Wall and CPU seconds of ``typostream scan ARGS``."""
    cpu = children_cpu()
    start = time.perf_counter()
    proc = subprocess.run([str(EXE), "scan", *args], capture_output=True, env=env, cwd=cwd)
    elapsed = time.perf_counter() - start
    if proc.returncode not in (0, 1):
        raise SystemExit(f"scan failed ({proc.returncode}): {proc.stderr.decode()[:500]}")
    return elapsed, children_cpu() - cpu


def import_profile(registry: str, env: dict[str, str], cwd: Path) -> tuple[float, list[str]]:
    """Total top-level import time (s) of ``-m typostream.streams.cli scan``, worker libraries seen."""
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "typostream.streams.cli", "scan", "-r", registry, "x"],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
    )
    total, seen = 0, set()
    for line in proc.stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        _, cumulative, name = line[len("import time:") :].split("|")
        if not name.startswith("  "):  # a top-level import (nested ones are indented)
            total += int(cumulative)
        top = name.strip().split(".")[0]
        if top in WORKER_LIBRARIES:
            seen.add(top)
    return total / 1e6, sorted(seen)


def sample_names(registry: str, n: int) -> list[str]:
    popular = {row.name for row in load_popular(registry)}
    names = [name for name in iter_names(names_file(registry)) if name not in popular and name[:1] != "-"]
    random.Random(11).shuffle(names)
    return names[:n]


def library_cost(registry: str, names: list[str], data_dir: Path) -> dict[str, float]:
    """Seconds per name of ``Detector.scan`` and ``Assessor.assess`` in this process, each name
    scanned once by a detector fresh from the cache (as the CLI does: a detector fills per-target
    technique plans on first use), gc frozen after loading as the CLI does: best of 3 runs of the
    mean wall and CPU time; and the median of single timed calls (gc off) on a warm detector."""
    settings = Settings.from_env({"TYPOSTREAM_DATA_DIR": str(data_dir)})
    out: dict[str, float] = {}
    for label in ("scan", "assess"):
        walls, cpus = [], []
        for _ in range(3):
            assessor = build_assessor(settings, build_detector(settings))
            detector = assessor.detector
            call = partial(detector.scan if label == "scan" else assessor.assess, registry=registry)
            gc.freeze()
            wall, cpu = time.perf_counter(), time.process_time()
            results = [call(name) for name in names]  # kept, as the CLI keeps its findings
            walls.append((time.perf_counter() - wall) / len(names))
            cpus.append((time.process_time() - cpu) / len(names))
            del results
            gc.unfreeze()
        out[f"{label} wall"], out[f"{label} cpu"] = min(walls), min(cpus)
        single = []
        gc.disable()
        try:
            for name in names:
                start = time.perf_counter()
                call(name)
                single.append(time.perf_counter() - start)
        finally:
            gc.enable()
        out[f"{label} median"] = statistics.median(single)
    return out


def ms(values: list[float]) -> str:
    return f"{statistics.median(values) * 1000:.0f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--registry", action="append", choices=sorted(SQUATS))
    parser.add_argument("--names", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument(
        "--pycache",
        choices=("temp", "inherit"),
        default="temp",
        help="temp: bytecode cached in the run's temporary directory (default); inherit: the "
        "environment as it is (PYTHONDONTWRITEBYTECODE, if set, compiles every module at every start)",
    )
    args = parser.parse_args()
    registries = args.registry or ["pypi", "npm"]
    console = Console()
    if not EXE.exists():
        raise SystemExit(f"{EXE} not found: pip install -e . first")
    load_before = os.getloadavg()[0]

    first = Table(title="first answer of `typostream scan --registry R <squat>` (ms)")
    for column in ("registry", "index cache", "wall median", "wall best", "CPU median", "wall < 300 ms"):
        first.add_column(column, justify="left" if column in ("registry", "index cache") else "right")
    imports = Table(title="`python -X importtime -m typostream.streams.cli scan` (warm cache)")
    for column in ("registry", "top-level imports (ms)", "worker libraries imported"):
        imports.add_column(column)
    cost = Table(title=f"per name (µs), {args.names:,} non-popular names: CLI marginal cost vs the library")
    for column in (
        "registry",
        "measure",
        "CLI",
        "Detector.scan",
        "Assessor.assess",
        "CLI/scan",
        "CLI/assess",
    ):
        cost.add_column(column, justify="left" if column in ("registry", "measure") else "right")

    with tempfile.TemporaryDirectory(prefix="scan-start-") as tmp:
        root = Path(tmp)
        if args.pycache == "temp":
            PYCACHE["PYTHONPYCACHEPREFIX"] = str(root / "pycache")
        cwd = root / "cwd"  # empty: no argument is taken for a path
        cwd.mkdir()
        warm_dir = root / "warm"
        for registry in registries:
            squat = ["--registry", registry, SQUATS[registry]]
            run_time(squat, environ(warm_dir), cwd)  # warm-up: bytecode, page cache, the warm cache
            timings: dict[str, list[tuple[float, float]]] = {
                "off (built in memory)": [],
                "cold": [],
                "warm": [],
            }
            for run in range(args.runs):
                off, cold = environ(root / "off", cache=False), environ(root / f"cold-{registry}-{run}")
                timings["off (built in memory)"].append(first_answer(squat, off, cwd))
                timings["cold"].append(first_answer(squat, cold, cwd))
                timings["warm"].append(first_answer(squat, environ(warm_dir), cwd))
            for label, values in timings.items():
                walls, cpus = [w for w, _ in values], [c for _, c in values]
                best = f"{min(walls) * 1000:.0f}"
                ok = "yes" if statistics.median(walls) < 0.3 else "no"
                first.add_row(registry, label, ms(walls), best, ms(cpus), ok)
            total, seen = import_profile(registry, environ(warm_dir), cwd)
            imports.add_row(registry, f"{total * 1000:.0f}", ", ".join(seen) or "none")

            names = sample_names(registry, args.names)
            one, many = [], []
            for _ in range(max(3, args.runs // 2)):
                one.append(run_time(["-r", registry, "--format", "json", names[0]], environ(warm_dir), cwd))
                many.append(run_time(["-r", registry, "--format", "json", *names], environ(warm_dir), cwd))
            lib = library_cost(registry, names, warm_dir)
            for measure, column in (("CPU", 1), ("wall", 0)):
                cli = (min(m[column] for m in many) - min(o[column] for o in one)) / (len(names) - 1)
                scan, assess = lib[f"scan {measure.lower()}"], lib[f"assess {measure.lower()}"]
                cost.add_row(
                    registry,
                    f"{measure} mean",
                    f"{cli * 1e6:.1f}",
                    f"{scan * 1e6:.1f}",
                    f"{assess * 1e6:.1f}",
                    f"{cli / scan:.2f}x",
                    f"{cli / assess:.2f}x",
                )
            cost.add_row(
                registry,
                "median call",
                "",
                f"{lib['scan median'] * 1e6:.1f}",
                f"{lib['assess median'] * 1e6:.1f}",
            )

    console.print(first)
    console.print(imports)
    console.print(cost)
    load = f"{load_before:.2f} before, {os.getloadavg()[0]:.2f} after"
    if args.pycache == "temp":
        bytecode = "cached in the run's directory"
    elif os.environ.get("PYTHONDONTWRITEBYTECODE"):
        bytecode = "not written (PYTHONDONTWRITEBYTECODE): compiled at every start"
    else:
        bytecode = "as the environment has it"
    console.print(f"load average (1 min): {load}; {os.cpu_count()} cores; bytecode {bytecode}")


if __name__ == "__main__":
    main()
