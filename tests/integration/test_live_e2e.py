"""End to end, as deployed: registries publish over time → ``typostream feed`` ×2 → worker → ClickHouse,
and threats → ``typostream alerts run`` → a webhook and a Slack receiver.

The fixture registries (``tests/streams/feeds/fixture_feeds.py``: npm replica + registry and PyPI's
journal + RSS on one 127.0.0.1 server, in this test's event loop) start with npm history (old
versions the feed must not re-send) and then publish a stream: real package names from the bundled
sample feed at a steady rate, metadata-only npm edits, stale CDN answers, PyPI display names,
journal rows that publish nothing, labelled squats from the sample feed spread over the stream, and
four injections — a squat of a popular name on each registry (``reqeusts`` → requests, ``expresss``
→ express) and a known-malicious version from the bundled seed advisories on each
(``ua-parser-js@0.7.29``, TYPOSTREAM-SEED-3; ``ctx@0.2.6``, TYPOSTREAM-SEED-7). In the middle every
registry endpoint answers 503 for several seconds; more PyPI releases appear during it than the
RSS window holds, and ``ctx`` is published early in it, so only PyPI's journal can bring it back.
Later both feed processes are SIGKILLed, stay down a few seconds (``ua-parser-js@0.7.29`` is
published meanwhile) and are started again on their saved cursors.

Processes, as in production: ``typostream feed --registry npm`` and ``--registry pypi``, the worker
(``worker_factory``; alert delivery off inside it, ``TYPOSTREAM_ALERT_IN_WORKER=false``) and
``typostream alerts run``, each with its own data dir; the receiver is ``tests/alert_receiver.py``.

Asserted: each ≥ ``high`` threat of every published release (computed here with the same
:class:`Assessor` the worker builds) reaches the webhook and Slack exactly once, nothing else does,
and the injections carry the right threat id, package, target and severity; every published
release's event id is in ClickHouse (``POST /api/v1/query`` on the worker) exactly once and nothing
else is; the input topic carries each (again only what a killed feed had sent but not yet saved);
completeness after the outage and after the feeds' downtime is 100 %; every process but the killed
feeds stops with exit code 0 on SIGTERM.

Printed (``pytest -s``): completeness, publish → alert latency p50/p99 (fixture publish time vs
receive time at the receiver, same monotonic clock), phase times. ``TYPOSTREAM_FULL_E2E=1`` runs
the bigger local profile; ``benchmarks/live.py`` runs this harness without pytest.
"""

from __future__ import annotations

import asyncio
import os
import random
import re
import signal
import sys
import time
import urllib.request
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp.test_utils import TestServer
from aiokafka import AIOKafkaConsumer, TopicPartition

from tests.alert_receiver import Received, ThreadedReceiver, threaded_receiver
from tests.integration.conftest import WorkerFactory
from tests.streams.feeds.fixture_feeds import Registries, make_app, pep503
from typostream.agents.domain.assess import Assessor
from typostream.agents.domain.errors import InvalidEventError
from typostream.agents.domain.events import event_id_for, parse_publish
from typostream.agents.domain.messages import threat_id_for
from typostream.agents.domain.vocabulary import at_least
from typostream.data.sample import iter_sample_events, iter_sample_labels
from typostream.streams.components import build_assessor
from typostream.streams.config import Settings
from typostream.streams.stack.processes import spawn
from typostream.streams.topics import ensure_topics
from typostream.streams.worker_process import WorkerProcess, settings_env

HOOK = "/hook/e2e"
SLACK = "/services/T0E2E/B0E2E/e2e"


# --- profiles -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Profile:
    name: str
    releases: int
    """Background releases per registry (sample names), spread evenly over ``stream_s``."""
    stream_s: float
    outage_start_s: float
    outage_s: float
    rss_size: int
    """PyPI's RSS window (warehouse: 100); smaller than the PyPI releases of the outage."""
    sample_squats: int
    """Labelled squats of the sample feed, spread over the stream (latency samples)."""
    feed_kill_s: float
    """When both feed processes are SIGKILLed (after the outage) ..."""
    feed_down_s: float
    """... and for how long they stay down before they are started again on their cursors."""
    interval_s: float = 0.5
    drain_s: float = 60.0

    @property
    def outage_end_s(self) -> float:
        return self.outage_start_s + self.outage_s


CI_PROFILE = Profile(
    "ci", releases=300, stream_s=24, outage_start_s=6, outage_s=6, rss_size=40, sample_squats=10,
    feed_kill_s=15, feed_down_s=3,
)  # fmt: skip
FULL_PROFILE = Profile(
    "full", releases=2000, stream_s=90, outage_start_s=25, outage_s=15, rss_size=100, sample_squats=60,
    feed_kill_s=55, feed_down_s=8,
)  # fmt: skip


def profile_from_env() -> Profile:
    return FULL_PROFILE if os.environ.get("TYPOSTREAM_FULL_E2E") == "1" else CI_PROFILE


# --- the stream ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Release:
    at_s: float
    registry: str
    name: str
    """As the registry shows it (a PyPI display name may differ from the normalised one)."""
    version: str
    role: str = "background"
    """background | canary | squat | malicious | sample-squat"""
    stale: bool = False
    """npm: the registry's CDN answers the previous revision once (the feed must re-fetch)."""


@dataclass(frozen=True)
class Touch:
    """An npm metadata-only change (deprecation, dist-tag): a change row that publishes nothing."""

    at_s: float
    name: str


@dataclass(frozen=True)
class JournalNoise:
    """A PyPI journal row that is no release (owner added, project created)."""

    at_s: float
    name: str
    action: str


@dataclass(frozen=True)
class Stream:
    releases: list[Release]
    touches: list[Touch]
    noise: list[JournalNoise]
    history: list[tuple[str, str, str]]
    """npm (name, version, created) published years before the feed starts."""
    canaries: list[Release]


# The injections (name, version, role, registry, when as a fraction of the stream / outage).
CANARIES = [Release(0, "npm", "lodahs", "1.0.0", "canary"), Release(0, "pypi", "djnago", "1.0.0", "canary")]
UA_PARSER_HISTORY = [
    ("ua-parser-js", "0.7.27", "2021-02-20T10:14:40.421Z"),
    ("ua-parser-js", "0.7.28", "2021-04-12T20:21:43.002Z"),
]
INJECTED = {"lodahs", "djnago", "reqeusts", "requests", "expresss", "express", "ua-parser-js", "ctx"}


def _injections(p: Profile) -> list[Release]:
    in_outage = lambda f: p.outage_start_s + f * p.outage_s  # noqa: E731
    return [
        Release(0.3 * p.outage_start_s, "pypi", "reqeusts", "2.31.0", "squat"),  # before the outage
        Release(in_outage(0.1), "pypi", "ctx", "0.2.6", "malicious"),  # falls out of the RSS window
        Release(in_outage(0.4), "npm", "expresss", "4.19.3", "squat"),
        Release(p.feed_kill_s + 0.3 * p.feed_down_s, "npm", "ua-parser-js", "0.7.29", "malicious"),  # no feed
    ]


def _sample() -> tuple[dict[str, list[tuple[str, str]]], list[tuple[str, str, str]]]:
    """Valid sample publishes: clean (registry → [(name, version)]) and the labelled squats."""
    labelled = {(label["registry"], label["name"]) for label in iter_sample_labels()}
    clean: dict[str, list[tuple[str, str]]] = {"npm": [], "pypi": []}
    squats: list[tuple[str, str, str]] = []
    seen: set[tuple[str, str, str]] = set()
    for doc in iter_sample_events():
        try:
            event = parse_publish(orjson.dumps(doc), 1 << 16)
        except InvalidEventError:
            continue
        key = (event.registry, event.name, event.version)
        if event.registry not in clean or key in seen or event.name in INJECTED:
            continue
        seen.add(key)
        if (event.registry, event.name) in labelled:
            squats.append(key)
        else:
            clean[event.registry].append((event.name, event.version))
    return clean, squats


def _display(name: str, rng: random.Random) -> str:
    """A PyPI display name for a normalised one (``flask-login`` → ``Flask_Login``)."""
    return name.replace("-", rng.choice("-_.")).title() if rng.random() < 0.25 else name


def build_stream(p: Profile, assessor: Assessor, seed: int = 20261125) -> Stream:
    rng = random.Random(seed)
    clean, squats = _sample()
    releases: list[Release] = []
    touches: list[Touch] = []
    noise: list[JournalNoise] = []
    history: list[tuple[str, str, str]] = list(UA_PARSER_HISTORY)
    step = p.stream_s / p.releases
    for registry in ("npm", "pypi"):
        pool = clean[registry]
        rng.shuffle(pool)
        for i in range(p.releases):
            name, version = pool[i % len(pool)]
            again = i // len(pool)
            if again:  # the pool is used up: the same packages publish new versions
                version = f"{version}-e2e.{again}" if registry == "npm" else f"{version}.post{again}"
            at = (i + rng.random()) * step
            if registry == "pypi":
                releases.append(Release(at, registry, _display(name, rng), version))
                if rng.random() < 0.05:
                    noise.append(JournalNoise(at + step / 2, name, f"add Owner e2e-{i}"))
                continue
            releases.append(Release(at, registry, name, version, stale=rng.random() < 0.03))
            if i < len(pool) and rng.random() < 0.3:  # an older package: versions from years ago
                for k in range(rng.randint(1, 3)):
                    history.append((name, f"0.0.{k}-old", f"20{19 + k}-0{1 + k}-1{k}T08:00:00.000Z"))
            if rng.random() < 0.05:
                touches.append(Touch(min(p.stream_s, at + 3 * step), name))
    # Sample squats that alert, evenly over the stream
    alerting = [s for s in squats if _threats(assessor, *s, floor="high")]
    chosen = alerting[:: max(1, len(alerting) // max(1, p.sample_squats))][: p.sample_squats]
    for k, (registry, name, version) in enumerate(chosen):
        releases.append(
            Release((k + 0.5) * p.stream_s / len(chosen), registry, name, version, "sample-squat")
        )
    releases.extend(_injections(p))
    releases.sort(key=lambda r: r.at_s)
    return Stream(releases, touches, noise, history, list(CANARIES))


def _threats(assessor: Assessor, registry: str, name: str, version: str, floor: str) -> list[Any]:
    return [t for t in assessor.assess(name, registry, version).threats if at_least(t.severity, floor)]


# --- what was published, what must arrive -------------------------------------------------------
@dataclass(frozen=True)
class Published:
    release: Release
    name: str
    """As the event carries it (PyPI: PEP 503 normalised)."""
    created: str
    """RFC 3339 UTC with milliseconds, as validation normalises ``created_date``."""
    event_id: str
    at: float
    """``time.monotonic()`` when the fixture registry had it."""
    phase: str
    """canary | steady | outage (the registries answered 503) | feeds_down (no feed process ran)"""


@dataclass(frozen=True)
class ExpectedAlert:
    threat_id: str
    published: Published
    type: str
    target: str
    technique: str
    severity: str


def _iso_ms(when: datetime) -> str:
    return when.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def publish(reg: Registries, release: Release, phase: str) -> Published:
    """``npm publish`` / a PyPI upload at this instant (the fixture's state; the server serves it)."""
    if release.registry == "npm":
        created = _iso_ms(datetime.now(UTC))
        reg.npm.publish(release.name, release.version, created, stale_requests=1 if release.stale else 0)
        name = release.name
    else:
        stamp = int(time.time())  # the journal and RSS carry seconds
        reg.pypi.release(release.name, release.version, stamp)
        created = _iso_ms(datetime.fromtimestamp(stamp, UTC))
        name = pep503(release.name)
    event_id = event_id_for(release.registry, name, release.version, created)
    return Published(release, name, created, event_id, time.monotonic(), phase)


def expected_alerts(
    assessor: Assessor, published: list[Published], floor: str
) -> tuple[dict[str, ExpectedAlert], dict[str, ExpectedAlert]]:
    """(threats at or above ``floor``, threats below it) of every publish, by threat id."""
    above: dict[str, ExpectedAlert] = {}
    below: dict[str, ExpectedAlert] = {}
    for pub in published:
        for threat in assessor.assess(pub.name, pub.release.registry, pub.release.version).threats:
            tid = threat_id_for(pub.event_id, threat)
            alert = ExpectedAlert(tid, pub, threat.type, threat.target, threat.technique, threat.severity)
            (above if at_least(threat.severity, floor) else below)[tid] = alert
    return above, below


# --- processes ----------------------------------------------------------------------------------
class Proc:
    """A ``typostream`` CLI subprocess (its own session; dies with this process)."""

    def __init__(self, name: str, args: list[str], settings: Settings, log_path: Path) -> None:
        self.name = name
        self.log_path = log_path
        self.process = spawn(
            [sys.executable, "-m", "typostream.streams.cli", *args],
            log_path,
            die_with_parent=True,
            env=settings_env(settings),
        )

    def alive(self) -> bool:
        return self.process.poll() is None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM, timeout_s: float = 30.0) -> int | None:
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout_s)
            except Exception:
                self.process.kill()
                self.process.wait(10)
        return self.process.returncode


def query(worker: WorkerProcess, sql: str) -> list[list[Any]]:
    """Rows of ``sql`` through the worker's ``POST /api/v1/query`` (chDB is locked by the worker)."""
    request = urllib.request.Request(
        worker.base_url + "/api/v1/query",
        data=orjson.dumps({"sql": sql}),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        rows: list[list[Any]] = orjson.loads(response.read())["rows"]
        return rows


async def records(settings: Settings, topic: str, idle_s: float = 1.5) -> list[tuple[float, bytes]]:
    """Every record of ``topic``: (its timestamp as ``time.monotonic()``, value), read to the end."""
    to_monotonic = time.monotonic() - time.time()
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(settings.partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        out: list[tuple[float, bytes]] = []
        idle_until = time.monotonic() + idle_s + 2.0
        while time.monotonic() < idle_until:
            batch = await consumer.getmany(timeout_ms=300)
            for got in batch.values():
                out.extend((r.timestamp / 1000 + to_monotonic, r.value) for r in got if r.value is not None)
                idle_until = time.monotonic() + idle_s
        return out
    finally:
        await consumer.stop()


def _scrape(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as response:
        return str(response.read().decode())


def metric(text: str, name: str) -> dict[str, float]:
    """``{'<labels>': value}`` of one metric in Prometheus' text format."""
    found: dict[str, float] = {}
    for line in text.splitlines():
        match = re.fullmatch(rf"{name}\{{(.*)\}} (\S+)", line)
        if match:
            found[match.group(1)] = float(match.group(2))
    return found


# --- the run ------------------------------------------------------------------------------------
@dataclass
class LiveRun:
    profile: Profile
    published: list[Published] = field(default_factory=list)
    alerts: dict[str, ExpectedAlert] = field(default_factory=dict)
    below_floor: dict[str, ExpectedAlert] = field(default_factory=dict)
    webhook: list[Received] = field(default_factory=list)
    slack: list[Received] = field(default_factory=list)
    clickhouse: dict[str, tuple[str, str, str]] = field(default_factory=dict)
    """event id → (registry, name, version), read with FINAL."""
    clickhouse_id_counts: Counter[str] = field(default_factory=Counter)
    clickhouse_raw_rows: int = 0
    input_ids: Counter[str] = field(default_factory=Counter)
    input_at: dict[str, float] = field(default_factory=dict)
    """event id → when the feed produced it (record timestamp, as ``time.monotonic()``)."""
    threat_at: dict[str, float] = field(default_factory=dict)
    """threat id → when the worker produced it (record timestamp, as ``time.monotonic()``)."""
    outage: tuple[float, float] = (0.0, 0.0)
    """When the registries answered 503 (``time.monotonic()``)."""
    feeds_down: tuple[float, float] = (0.0, 0.0)
    """When no feed process ran (killed → started again)."""
    outage_503: Counter[str] = field(default_factory=Counter)
    """503s the fixture answered during the outage, by endpoint."""
    pypi_in_outage_after_ctx: int = 0
    feed_metrics: dict[str, str] = field(default_factory=dict)
    """/metrics of each feed process just before it was killed (they cover the outage)."""
    exit_codes: dict[str, int | None] = field(default_factory=dict)
    phases: dict[str, float] = field(default_factory=dict)
    logs: dict[str, str] = field(default_factory=dict)

    # --- measurements -----------------------------------------------------------------------
    def missing(self) -> list[Published]:
        return [p for p in self.published if p.event_id not in self.clickhouse]

    def completeness(self, phase: str | None = None, registry: str | None = None) -> float:
        """Share of the releases (of one phase, one registry) whose event id is in ClickHouse."""
        chosen = [
            p for p in self.published if phase in (None, p.phase) and registry in (None, p.release.registry)
        ]
        return sum(p.event_id in self.clickhouse for p in chosen) / len(chosen) if chosen else 1.0

    def stages(self, kind: str = "steady") -> dict[str, list[float]]:
        """The alerts of one latency kind split: registry → input topic (feed), → threats topic
        (worker), → receiver (alerts run); seconds, ascending."""
        out: dict[str, list[float]] = {"feed": [], "worker": [], "delivery": []}
        for tid, at in self._first_posts().items():
            alert = self.alerts.get(tid)
            if alert is None or self._kind(alert.published) != kind:
                continue
            sent, detected = self.input_at.get(alert.published.event_id), self.threat_at.get(tid)
            if sent is None or detected is None:
                continue
            out["feed"].append(sent - alert.published.at)
            out["worker"].append(detected - sent)
            out["delivery"].append(at - detected)
        return {k: sorted(v) for k, v in out.items()}

    def slowest(self, n: int = 3) -> list[str]:
        posts = self._first_posts()
        worst = sorted(
            (at - a.published.at, tid, a)
            for tid, at in posts.items()
            if (a := self.alerts.get(tid)) is not None and self._kind(a.published) == "steady"
        )[-n:]
        lines = []
        for total, tid, alert in reversed(worst):
            pub = alert.published
            sent, detected = (
                self.input_at.get(pub.event_id, float("nan")),
                self.threat_at.get(tid, float("nan")),
            )
            lines.append(
                f"{pub.release.registry} {pub.name}@{pub.release.version} {alert.severity} {total:.2f}s "
                f"(feed {sent - pub.at:.2f}, worker {detected - sent:.2f}, "
                f"delivery {posts[tid] - detected:.2f}; "
                f"published {pub.at - self.outage[1]:+.1f}s from the outage's end, "
                f"{pub.at - self.feeds_down[1]:+.1f}s from the feeds' restart)"
            )
        return lines

    def _first_posts(self) -> dict[str, float]:
        first: dict[str, float] = {}
        for request in self.webhook:
            first.setdefault(request.headers["X-Typostream-Threat-Id"], request.at)
        return first

    def _kind(self, pub: Published) -> str:
        """The phase, counting a release published within one poll interval before the outage or
        the kill (not fetched yet when it began) to that phase."""
        if pub.phase == "canary":
            return "canary"
        for kind, (start, end) in (("outage", self.outage), ("feeds_down", self.feeds_down)):
            if start - self.profile.interval_s <= pub.at <= end:
                return kind
        return "steady"

    def latencies(self) -> dict[str, list[float]]:
        """publish → first webhook POST, seconds, by :meth:`_kind` (``canary``: the cold start)."""
        out: dict[str, list[float]] = {"steady": [], "outage": [], "feeds_down": [], "canary": []}
        for tid, at in self._first_posts().items():
            alert = self.alerts.get(tid)
            if alert is not None:
                out[self._kind(alert.published)].append(at - alert.published.at)
        return {k: sorted(v) for k, v in out.items()}

    def report(self) -> str:
        lat = self.latencies()
        by_registry = Counter(p.release.registry for p in self.published)
        in_outage = Counter(p.release.registry for p in self.published if p.phase == "outage")
        feeds_down = Counter(p.release.registry for p in self.published if p.phase == "feeds_down")
        pct = lambda **kw: f"{100 * self.completeness(**kw):.1f} %"  # noqa: E731
        lines = [
            f"[live e2e, profile {self.profile.name}] {by_registry['npm']} npm + {by_registry['pypi']} PyPI "
            f"releases over {self.profile.stream_s:.0f}s; registry outage (503) "
            f"{self.outage[1] - self.outage[0]:.1f}s with {in_outage['npm']} npm + {in_outage['pypi']} "
            f"PyPI published (PyPI RSS window {self.profile.rss_size}); feeds SIGKILLed and down "
            f"{self.feeds_down[1] - self.feeds_down[0]:.1f}s with {feeds_down['npm']} npm + "
            f"{feeds_down['pypi']} PyPI published; feed --interval {self.profile.interval_s}s",
            f"  feed completeness after the outage: {pct()} (npm {pct(registry='npm')}, "
            f"PyPI {pct(registry='pypi')}; published during the outage {pct(phase='outage')}, "
            f"while the feeds were down {pct(phase='feeds_down')}); "
            f"ClickHouse rows {self.clickhouse_raw_rows} for {len(self.clickhouse)} ids; input topic "
            f"{sum(self.input_ids.values())} records for {len(self.input_ids)} ids",
            f"  alerts: {len(self.alerts)} expected (>= high), webhook {len(self.webhook)} POSTs, "
            f"Slack {len(self.slack)}; {len(self.below_floor)} threats below the floor",
        ]
        for kind, values in lat.items():
            if values:
                lines.append(
                    f"  publish -> alert latency, {kind} (n={len(values)}): "
                    f"p50 {percentile(values, 50):.2f}s p99 {percentile(values, 99):.2f}s "
                    f"max {values[-1]:.2f}s"
                )
        stages = self.stages()
        if stages["feed"]:
            lines.append(
                "  steady latency by stage, p50/p99: "
                + ", ".join(
                    f"{k} {percentile(v, 50):.2f}/{percentile(v, 99):.2f}s" for k, v in stages.items()
                )
            )
        lines += [f"  slowest steady: {line}" for line in self.slowest()]
        lines.append("  phases: " + ", ".join(f"{k} {v:.1f}s" for k, v in self.phases.items()))
        return "\n".join(lines)


def percentile(sorted_values: list[float], pct: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    rank = max(1, -(-len(sorted_values) * pct // 100))
    return sorted_values[int(rank) - 1]


def _toucher(reg: Registries, touch: Touch) -> Callable[[], None]:
    def act() -> None:
        reg.npm.touch(touch.name, _iso_ms(datetime.now(UTC)))

    return act


def _journaler(reg: Registries, noise: JournalNoise) -> Callable[[], None]:
    def act() -> None:
        reg.pypi.entry(noise.name, None, int(time.time()), noise.action)

    return act


def _metrics_url(proc: Proc) -> str:
    found = re.search(r"metrics on (http://127\.0\.0\.1:\d+/metrics)", proc.log())
    assert found, f"{proc.name} printed no metrics address: {proc.log()[-2000:]}"
    return found.group(1)


async def _until(done: Callable[[], bool], timeout_s: float, what: str, procs: dict[str, Proc]) -> None:
    """Wait in the event loop (the fixture registries run in it too) until ``done()``."""
    deadline = time.monotonic() + timeout_s
    while not done():
        for proc in procs.values():
            assert proc.alive(), f"{proc.name} exited ({proc.process.returncode}): {proc.log()[-3000:]}"
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:.0f}s waiting for {what}")
        await asyncio.sleep(0.1)


def _delivered_ids(receiver: ThreadedReceiver, path: str) -> set[str]:
    return {r.headers.get("X-Typostream-Threat-Id", "") for r in receiver.delivered(path)}


async def run_live(
    profile: Profile,
    settings: Settings,
    start_worker: Callable[[Settings], WorkerProcess],
    receiver: ThreadedReceiver,
    work_dir: Path,
) -> LiveRun:
    """Run the whole deployment against the fixture registries; returns what was seen (asserts little)."""
    began = time.monotonic()
    run = LiveRun(profile)
    settings = settings.replace(
        alert_webhook_urls=receiver.url(HOOK),
        alert_slack_webhook_url=receiver.url(SLACK),
        alert_in_worker=False,  # delivery runs as its own process: `typostream alerts run`
    )
    assessor = build_assessor(settings)
    stream = build_stream(profile, assessor)

    reg = Registries()
    reg.pypi.rss_size = profile.rss_size
    reg.retry_after = "1"  # the outage's 503s say when to come back, as a CDN does
    for name, version, created in stream.history:  # before the feed starts: never to be sent
        reg.npm.publish(name, version, created)
    await ensure_topics(settings)
    server = TestServer(make_app(reg), host="127.0.0.1")
    await server.start_server()
    base = str(server.make_url("")).rstrip("/")

    procs: dict[str, Proc] = {}
    feeds_down: list[Proc] = []
    worker: WorkerProcess | None = None
    feed_settings = {r: settings.replace(data_dir=work_dir / f"feed-{r}") for r in ("npm", "pypi")}
    feed_urls = {
        "npm": ["--npm-replicate-url", base, "--npm-registry-url", base],
        "pypi": ["--pypi-url", base],
    }

    def start_feed(registry: str, generation: int = 1) -> None:
        args = ["feed", "--registry", registry, "--interval", str(profile.interval_s), "--metrics-port", "0"]
        log = work_dir / "logs" / f"feed-{registry}-{generation}.log"
        procs[f"feed {registry}"] = Proc(
            f"feed {registry}", [*args, *feed_urls[registry]], feed_settings[registry], log
        )

    try:
        start_feed("npm")
        start_feed("pypi")
        alerts_settings = settings.replace(data_dir=work_dir / "alerts")
        procs["alerts run"] = Proc(
            "alerts run", ["alerts", "run"], alerts_settings, work_dir / "logs" / "alerts.log"
        )
        worker = await asyncio.to_thread(start_worker, settings)
        cursors = [s.data_dir / "feeds" / f"{r}.json" for r, s in feed_settings.items()]
        await _until(lambda: all(c.exists() for c in cursors), 60, "both feeds' first poll", procs)
        run.phases["start"] = time.monotonic() - began

        # Canaries: the whole chain is live (feeds, worker, alerts run's consumer group) before timing
        started = time.monotonic()
        run.published += [publish(reg, c, "canary") for c in stream.canaries]
        canary_alerts, _ = expected_alerts(assessor, run.published, settings.alert_min_severity)
        await _until(
            lambda: set(canary_alerts) <= _delivered_ids(receiver, HOOK), 90, "the canaries' alerts", procs
        )
        run.phases["canary"] = time.monotonic() - started

        # The stream: a registry outage, then both feed processes killed and restarted later
        started = time.monotonic()
        phase = "steady"

        async def registries_down() -> None:
            nonlocal phase
            reg.down.add("/")
            run.outage = (time.monotonic(), 0.0)
            phase = "outage"

        async def registries_up() -> None:
            nonlocal phase
            reg.down.discard("/")
            run.outage = (run.outage[0], time.monotonic())
            phase = "steady"

        async def kill_feeds() -> None:
            nonlocal phase
            for registry in ("npm", "pypi"):  # the counters of the registry outage, before they are lost
                run.feed_metrics[registry] = await asyncio.to_thread(
                    _scrape, _metrics_url(procs[f"feed {registry}"])
                )
            for registry in ("npm", "pypi"):
                proc = procs.pop(f"feed {registry}")
                proc.process.kill()  # SIGKILL: no cursor saved on the way out
                feeds_down.append(proc)
            await asyncio.to_thread(lambda: [p.process.wait(10) for p in feeds_down])
            run.feeds_down = (time.monotonic(), 0.0)
            phase = "feeds_down"

        async def restart_feeds() -> None:
            nonlocal phase
            start_feed("npm", 2)
            start_feed("pypi", 2)
            run.feeds_down = (run.feeds_down[0], time.monotonic())
            phase = "steady"

        def release(r: Release) -> Callable[[], Awaitable[None] | None]:
            return lambda: run.published.append(publish(reg, r, phase))

        actions: list[tuple[float, Callable[[], Awaitable[None] | None]]] = [
            (profile.outage_start_s, registries_down),
            (profile.outage_end_s, registries_up),
            (profile.feed_kill_s, kill_feeds),
            (profile.feed_kill_s + profile.feed_down_s, restart_feeds),
        ]
        actions += [(r.at_s, release(r)) for r in stream.releases]
        actions += [(t.at_s, _toucher(reg, t)) for t in stream.touches]
        actions += [(n.at_s, _journaler(reg, n)) for n in stream.noise]
        for at_s, action in sorted(actions, key=lambda a: a[0]):
            delay = started + at_s - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            pending = action()
            if pending is not None:
                await pending
        run.phases["stream"] = time.monotonic() - started
        start, end = run.outage
        run.outage_503 = Counter(
            "pypi" if q.path.startswith(("/pypi", "/rss")) else "npm"
            for q in reg.requests
            if q.status == 503 and start <= q.at <= end
        )
        ctx = next(p for p in run.published if p.release.name == "ctx")
        run.pypi_in_outage_after_ctx = sum(
            p.release.registry == "pypi" and ctx.at < p.at <= end for p in run.published
        )

        # Drain: everything in ClickHouse, every alert at both targets
        started = time.monotonic()
        run.alerts, run.below_floor = expected_alerts(assessor, run.published, settings.alert_min_severity)
        want_ids = {p.event_id for p in run.published}
        deadline = time.monotonic() + profile.drain_s
        while time.monotonic() < deadline:
            rows = await asyncio.to_thread(query, worker, "SELECT DISTINCT event_id FROM events")
            stored = {row[0] for row in rows}
            alerted = _delivered_ids(receiver, HOOK) & _delivered_ids(receiver, SLACK)
            if want_ids <= stored and set(run.alerts) <= alerted:
                break
            await asyncio.sleep(1.0)
        await asyncio.sleep(2.0)  # anything sent twice or late would arrive now
        run.phases["drain"] = time.monotonic() - started

        # Collect
        rows = await asyncio.to_thread(
            query, worker, "SELECT event_id, registry, name, version FROM events FINAL ORDER BY event_id"
        )
        run.clickhouse = {r[0]: (r[1], r[2], r[3]) for r in rows}
        run.clickhouse_id_counts = Counter(r[0] for r in rows)
        raw = await asyncio.to_thread(query, worker, "SELECT count() FROM events")
        run.clickhouse_raw_rows = int(raw[0][0])
        for at, value in await records(settings, settings.topic_input):
            eid = parse_publish(value, settings.max_event_bytes).event_id
            run.input_ids[eid] += 1
            run.input_at.setdefault(eid, at)
        for at, value in await records(settings, settings.topic_threats):
            run.threat_at.setdefault(orjson.loads(value)["id"], at)
        run.webhook = receiver.delivered(HOOK)
        run.slack = receiver.delivered(SLACK)
    finally:
        for proc in feeds_down:
            run.logs[f"{proc.name} (killed)"] = proc.log()
        for name, proc in procs.items():  # SIGTERM: feeds save their cursor, alerts run commits; exit 0
            run.exit_codes[name] = await asyncio.to_thread(proc.stop)
            run.logs[name] = proc.log()
        if worker is not None:
            run.exit_codes["worker"] = await asyncio.to_thread(worker.stop)
            run.logs["worker"] = worker.log_path.read_text(errors="replace")
        await server.close()
    run.phases["total"] = time.monotonic() - began
    return run


# --- what must hold ----------------------------------------------------------------------------
INJECTED_ALERTS = {  # name: (registry, version, type, target, severity)
    "reqeusts": ("pypi", "2.31.0", "typosquat", "requests", "critical"),
    "expresss": ("npm", "4.19.3", "typosquat", "express", "high"),
    "ctx": ("pypi", "0.2.6", "malicious_package", "TYPOSTREAM-SEED-7", "critical"),
    "ua-parser-js": ("npm", "0.7.29", "malicious_package", "TYPOSTREAM-SEED-3", "critical"),
}


def _alerts_for(run: LiveRun, name: str) -> list[ExpectedAlert]:
    return [a for a in run.alerts.values() if a.published.release.name == name]


def check_run(run: LiveRun) -> None:
    """What the end-to-end run must show (raises AssertionError); the test and the benchmark call it."""
    # Every process stopped cleanly on SIGTERM
    assert run.exit_codes == {"feed npm": 0, "feed pypi": 0, "alerts run": 0, "worker": 0}, run.exit_codes
    assert run.feeds_down[1] > run.feeds_down[0] > run.outage[1] > run.outage[0] > 0

    # The outage hit both feeds, and outlasted PyPI's RSS window from ctx on
    assert run.outage_503["npm"] > 0 and run.outage_503["pypi"] > 0, run.outage_503
    assert run.pypi_in_outage_after_ctx > run.profile.rss_size
    pypi_errors = metric(run.feed_metrics["pypi"], "typostream_feed_errors_total")
    assert pypi_errors.get('kind="rss_gap",registry="pypi"', 0) >= 1, pypi_errors  # the journal replayed it
    npm_polls = metric(run.feed_metrics["npm"], "typostream_feed_polls_total")
    assert npm_polls.get('outcome="unavailable",registry="npm"', 0) >= 1, npm_polls

    # Nothing missing from ClickHouse: every published release exactly once, nothing else
    published = {p.event_id: p for p in run.published}
    assert len(published) == len(run.published)  # the stream has no repeated publish
    missing = run.missing()
    assert not missing, f"{len(missing)} release(s) not in ClickHouse, e.g. {missing[:5]}"
    assert set(run.clickhouse) == set(published), set(run.clickhouse) - set(published)
    assert set(run.clickhouse_id_counts.values()) == {1}
    for eid, (registry, name, version) in run.clickhouse.items():
        pub = published[eid]
        assert (registry, name, version) == (pub.release.registry, pub.name, pub.release.version)
    assert run.completeness() == run.completeness("outage") == run.completeness("feeds_down") == 1.0
    # ... and the feeds sent each of them (the npm history and metadata-only edits not at all), once
    # except for what a feed killed between the broker's ack and its cursor save sends again
    assert set(run.input_ids) == set(published), set(run.input_ids) - set(published)
    again = [published[eid] for eid, n in run.input_ids.items() if n > 1]
    assert all(p.at < run.feeds_down[0] for p in again), again
    assert len(again) <= 50, f"{len(again)} events sent twice"

    # Alerts: each threat at or above the floor exactly once at each target, nothing else
    want = Counter(set(run.alerts))
    webhook_ids = Counter(r.headers["X-Typostream-Threat-Id"] for r in run.webhook)
    slack_ids = Counter(r.headers["X-Typostream-Threat-Id"] for r in run.slack)
    assert webhook_ids == want, (webhook_ids - want, want - webhook_ids)
    assert slack_ids == want, (slack_ids - want, want - slack_ids)
    assert not set(run.below_floor) & set(webhook_ids)

    bodies = {r.headers["X-Typostream-Threat-Id"]: r.json for r in run.webhook}
    slack = {r.headers["X-Typostream-Threat-Id"]: r.json for r in run.slack}
    for tid, body in bodies.items():  # every webhook body is the threat event of its publish
        alert = run.alerts[tid]
        pub = alert.published
        assert body["id"] == tid and body["metadata"]["correlation_id"] == pub.event_id
        assert body["package"] == {
            "name": pub.name,
            "version": pub.release.version,
            "registry": pub.release.registry,
        }
        assert (body["type"], body["threat"]["target"], body["severity"]) == (
            alert.type,
            alert.target,
            alert.severity,
        )
    for name, (registry, version, kind, target, severity) in INJECTED_ALERTS.items():
        alerts = _alerts_for(run, name)
        assert [(a.type, a.target, a.severity) for a in alerts] == [(kind, target, severity)], alerts
        alert = alerts[0]
        body = bodies[alert.threat_id]
        assert body["id"] == alert.threat_id
        assert body["package"] == {"name": name, "version": version, "registry": registry}
        assert (body["type"], body["severity"], body["threat"]["target"]) == (kind, severity, target)
        assert body["metadata"]["correlation_id"] == alert.published.event_id
        assert f"{name}@{version}" in slack[alert.threat_id]["text"]
        assert target in slack[alert.threat_id]["text"]
        assert severity.upper() in slack[alert.threat_id]["text"]
    assert any(a.target == "express-ws" for a in run.below_floor.values())  # expresss' medium one: not sent


# --- the test -----------------------------------------------------------------------------------
pytestmark = pytest.mark.integration


@pytest.fixture
def receiver() -> Iterator[ThreadedReceiver]:
    with threaded_receiver() as server:
        yield server


@pytest.mark.timeout(600)
async def test_live_stream_with_an_outage_alerts_once_and_stores_every_release(
    pipeline_settings: Settings, worker_factory: WorkerFactory, receiver: ThreadedReceiver, tmp_path: Path
) -> None:
    run = await run_live(profile_from_env(), pipeline_settings, worker_factory, receiver, tmp_path)
    print("\n" + run.report())
    check_run(run)
