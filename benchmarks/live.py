"""Live end-to-end benchmark: feed completeness after an outage and publish → alert latency.

The harness of ``tests/integration/test_live_e2e.py`` without pytest: the embedded stack, fixture
npm and PyPI registries on 127.0.0.1 publishing a stream with an outage, ``typostream feed`` for
both, a worker, ``typostream alerts run`` and a local webhook/Slack receiver. Prints completeness,
latency p50/p99 (steady, outage-affected, cold start) split by stage, and exits 1 if any of the
test's checks fails.

    .venv/bin/python benchmarks/live.py                  # the CI profile (~40 s)
    .venv/bin/python benchmarks/live.py --full           # TYPOSTREAM_FULL_E2E's profile (~2 min)
    .venv/bin/python benchmarks/live.py --releases 5000 --stream-s 120 --outage-s 20
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import sys
import tempfile
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `tests` is importable from the root

from tests.alert_receiver import threaded_receiver
from tests.integration.test_live_e2e import (
    CI_PROFILE,
    FULL_PROFILE,
    LiveRun,
    Profile,
    check_run,
    run_live,
)
from typostream.streams.config import Settings
from typostream.streams.stack import EmbeddedStack
from typostream.streams.stack.processes import free_port
from typostream.streams.worker_process import WorkerProcess


def start_worker(settings: Settings) -> WorkerProcess:
    worker = WorkerProcess(settings).start()
    try:
        worker.wait_ready(timeout_s=90)
    except Exception:
        worker.kill()
        raise
    return worker


def profile_from_args(args: argparse.Namespace) -> Profile:
    base = FULL_PROFILE if args.full else CI_PROFILE
    changes = {
        "releases": args.releases,
        "stream_s": args.stream_s,
        "outage_s": args.outage_s,
        "rss_size": args.rss_size,
        "sample_squats": args.squats,
        "interval_s": args.interval,
    }
    profile = dataclasses.replace(base, **{k: v for k, v in changes.items() if v is not None})
    if args.stream_s is not None or args.outage_s is not None:  # keep the outage in the middle third
        start = max(1.0, (profile.stream_s - profile.outage_s) / 3)
        profile = dataclasses.replace(profile, name="custom", outage_start_s=start)
    if profile.outage_end_s >= profile.stream_s:
        raise SystemExit("the outage must end before the stream does (--outage-s < --stream-s)")
    return profile


def run(profile: Profile, work: Path) -> LiveRun:
    stack = EmbeddedStack(work / "stack", die_with_parent=True)
    state = stack.up()
    try:
        suffix = uuid.uuid4().hex[:8]
        settings = Settings(
            data_dir=work / "typostream",
            kafka_bootstrap=state.kafka_bootstrap,
            redis_url=state.redis_url,
            clickhouse_dsn=f"chdb://{work / 'clickhouse'}",
            app_id=f"typostream-live-{suffix}",
            web_port=free_port(),
            sink_batch_seconds=0.2,
            **{
                f.name: f"{f.default}-{suffix}"
                for f in dataclasses.fields(Settings)
                if f.name.startswith("topic_")
            },
        )
        with threaded_receiver() as receiver:
            return asyncio.run(run_live(profile, settings, start_worker, receiver, work))
    finally:
        stack.down()


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--full", action="store_true", help="the bigger local profile")
    parser.add_argument("--releases", type=int, help="background releases per registry")
    parser.add_argument("--stream-s", type=float, help="seconds the stream is spread over")
    parser.add_argument("--outage-s", type=float, help="seconds every registry endpoint answers 503")
    parser.add_argument("--rss-size", type=int, help="PyPI RSS window (warehouse: 100)")
    parser.add_argument("--squats", type=int, help="labelled sample squats spread over the stream")
    parser.add_argument("--interval", type=float, help="typostream feed --interval")
    parser.add_argument("--keep", type=Path, help="work in this directory and keep it (logs, data)")
    args = parser.parse_args()
    profile = profile_from_args(args)
    if args.keep is not None:
        args.keep.mkdir(parents=True, exist_ok=True)
        result = run(profile, args.keep.resolve())
    else:
        with tempfile.TemporaryDirectory(prefix="typostream-live-") as tmp:
            result = run(profile, Path(tmp))
    print(result.report())
    try:
        check_run(result)
    except AssertionError as exc:
        print(f"CHECK FAILED: {exc}", file=sys.stderr)
        return 1
    print("all checks passed")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
