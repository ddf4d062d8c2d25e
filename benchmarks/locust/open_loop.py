"""An open-loop load generator for ``POST /api/v1/scan`` (aiohttp, its own process).

Usage (``benchmarks/scan_load.py`` runs it; the address must be on this machine)::

    .venv/bin/python benchmarks/locust/open_loop.py --host http://127.0.0.1:6066 --rate 1000 \\
        --duration 20 --ramp 2 --connections 200 --samples samples.json [--queries queries.json]

Request *i* is due at ``start + i / rate`` whether or not earlier ones were answered (open loop:
a slow server gets more requests waiting, not fewer, so queueing shows in the latencies), sent on
a pool of at most ``--connections`` keep-alive connections. Each latency is taken from the time the
request was due (so time spent waiting for a free connection, or for this process to get the CPU,
counts), and also from the moment it was sent. Bodies: the same mix as the Locust users
(``scan_bodies.py``). The first ``--ramp`` seconds open the connections and are not recorded.
Writes ``{"spawned_at", "stopping_at", "samples": [[due, ms, ok, sent_ms], ...]}`` to ``--samples``.

Why: Locust (gevent, one process) offers 1,000 requests/s on this 2-core machine, but with
hundreds of users its own scheduling adds tens of milliseconds to what it measures, against a
bare aiohttp endpoint too; with few users it is a closed loop that stops offering while it waits.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp
from scan_bodies import BodyMix

LOOPBACK = ("127.", "localhost", "[::1]")


async def run(args: argparse.Namespace) -> dict[str, object]:
    host = urlsplit(args.host).hostname or ""
    if not host.startswith(LOOPBACK) and host != "::1":
        raise SystemExit(f"--host {args.host}: only addresses on this machine (127.0.0.0/8, ::1)")
    mix = BodyMix(queries=args.queries)
    url = args.host.rstrip("/") + "/api/v1/scan"
    samples: list[tuple[float, float, bool, float]] = []
    ramp_end = time.time() + args.ramp
    connector = aiohttp.TCPConnector(limit=args.connections)
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def one(due: float, body: bytes, content_type: str) -> None:
            sent = time.perf_counter()
            ok = False
            try:
                async with session.post(url, data=body, headers={"Content-Type": content_type}) as answer:
                    await answer.read()
                    ok = answer.status == 200
            except (aiohttp.ClientError, TimeoutError):
                ok = False
            done = time.perf_counter()
            wall = time.time()
            if wall - (done - due) >= ramp_end:
                samples.append((wall - (done - due), (done - due) * 1000, ok, (done - sent) * 1000))

        total = int(args.rate * (args.ramp + args.duration))
        tasks: set[asyncio.Task[None]] = set()
        start = time.perf_counter()
        for i in range(total):
            due = start + i / args.rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            body, content_type = mix.next()
            task = asyncio.create_task(one(due, body, content_type))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        stopping = time.time()
        if tasks:
            await asyncio.wait(tasks, timeout=35)
    return {"spawned_at": ramp_end, "stopping_at": stopping, "samples": samples}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--host", required=True)
    parser.add_argument("--rate", type=float, default=1000.0)
    parser.add_argument("--duration", type=float, default=20.0)
    parser.add_argument("--ramp", type=float, default=2.0)
    parser.add_argument("--connections", type=int, default=200)
    parser.add_argument("--samples", type=Path, required=True)
    parser.add_argument("--queries", type=Path, default=None)
    args = parser.parse_args()
    result = asyncio.run(run(args))
    args.samples.write_text(json.dumps(result))


if __name__ == "__main__":
    main()
