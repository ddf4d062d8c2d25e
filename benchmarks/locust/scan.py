"""Locust users for ``POST /api/v1/scan`` (run by ``benchmarks/scan_load.py``, or by hand)::

    .venv/bin/locust -f benchmarks/locust/scan.py --headless -u 100 -r 50 -t 20s --host http://127.0.0.1:6066

Each request is one of the API's three body shapes, from the seeded mix of ``scan_bodies.py``
(the seed's ``{package_name, version}`` as a form and as JSON, ``{"registry", "names"}`` as JSON
and as a form; real names from ``data/names/``, typos of popular names, packages with advisories).

Environment:

* ``TYPOSTREAM_LOAD_WAIT``: ``think`` (default: 0.5-1.0 s between a user's requests, ~1.3 requests
  a second per user, so the seed's 100 users can reach its >= 100 requests/s) or ``rate:X``
  (``constant_throughput(X)``: X requests a second per user, for a fixed total rate);
* ``TYPOSTREAM_LOAD_QUERIES``: the ``queries.json`` of ``benchmarks/advisories.py``'s tree (the
  packages with advisories to ask about);
* ``TYPOSTREAM_LOAD_SAMPLES``: a file to write every request's ``[start, ms, ok]`` to at the end
  (JSON, with the times spawning completed and stopping began), for exact percentiles; Locust's
  own table rounds them.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

from locust import FastHttpUser, between, constant_throughput, events, task
from locust.env import Environment
from scan_bodies import BodyMix  # beside this file (Locust puts the locustfile's folder on sys.path)

QUERIES = os.environ.get("TYPOSTREAM_LOAD_QUERIES")
MIX = BodyMix(queries=QUERIES)  # the name pools, read once per process


def _wait() -> Any:
    spec = os.environ.get("TYPOSTREAM_LOAD_WAIT", "think")
    if spec.startswith("rate:"):
        return constant_throughput(float(spec.removeprefix("rate:")))
    if spec != "think":
        raise SystemExit(f"TYPOSTREAM_LOAD_WAIT={spec!r}: use 'think' or 'rate:X'")
    return between(0.5, 1.0)


class ScanUser(FastHttpUser):
    wait_time = _wait()

    @task
    def scan(self) -> None:
        body, content_type = MIX.next()
        self.client.post("/api/v1/scan", data=body, headers={"Content-Type": content_type})


SAMPLES: list[tuple[float, float, bool]] = []
MARKS: dict[str, float] = {}


@events.request.add_listener
def _record(response_time: float, exception: BaseException | None, start_time: float = 0.0, **_: Any) -> None:
    SAMPLES.append((start_time or time.time(), response_time, exception is None))


@events.spawning_complete.add_listener
def _spawned(user_count: int, **_: Any) -> None:
    MARKS["spawned"] = time.time()


@events.test_stopping.add_listener
def _stopping(**_: Any) -> None:
    MARKS.setdefault("stopping", time.time())


@events.quitting.add_listener
def _dump(environment: Environment, **_: Any) -> None:
    path = os.environ.get("TYPOSTREAM_LOAD_SAMPLES")
    if path:
        with open(path, "w") as handle:
            marks = {"spawned_at": MARKS.get("spawned"), "stopping_at": MARKS.get("stopping", time.time())}
            json.dump({**marks, "samples": SAMPLES}, handle)
