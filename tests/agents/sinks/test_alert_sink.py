"""The alert sink against a real local receiver (aiohttp on 127.0.0.1): bodies, Slack shape,
severity routing, retries, Retry-After, rate limits, de-duplication across restarts, outages."""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from jsonschema import Draft202012Validator
from typer.testing import CliRunner

from tests.alert_receiver import Receiver, threaded_receiver
from typostream.agents.adapters.alerts import (
    FileSentStore,
    RedisSentStore,
    TokenBucket,
    parse_retry_after,
    parse_targets,
    sample_threat,
    slack_message,
)
from typostream.agents.adapters.alerts.delivery import MAX_RETRY_AFTER_S
from typostream.agents.adapters.alerts.format import FIELD_MAX, HEADER_MAX, SECTION_MAX
from typostream.agents.adapters.sinks.alerts import AlertSink
from typostream.agents.domain.detection import Threat
from typostream.agents.domain.errors import ConfigError, InvalidRowError, UndeliverableAlertError
from typostream.agents.domain.messages import threat_event
from typostream.schemas import load_json_schema
from typostream.streams.components import SinkResources, build_sinks
from typostream.streams.config import Settings
from typostream.streams.stack import StackState

SECRET = "s3cr3t-T0KEN-9f8e7d"
THREAT_SCHEMA = Draft202012Validator(load_json_schema("threat_event"))


def threat(
    name: str = "expresss",
    severity: str = "high",
    *,
    target: str = "express",
    version: str = "1.0.0",
    evidence: str = "",
) -> dict[str, Any]:
    event = {"event_id": f"ev-{name}-{version}", "name": name, "version": version, "registry": "npm"}
    finding = Threat("typosquat", target, "repetition", 0.91, severity, evidence or f"{name} ~ {target}")
    return threat_event(event, finding, "2026-11-25T10:00:00.000Z")


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    server = await Receiver().start()
    try:
        yield server
    finally:
        await server.stop()


SinkFactory = Callable[..., AlertSink]


@pytest.fixture
async def make_sink(tmp_path: Path) -> AsyncIterator[SinkFactory]:
    """``(webhooks=[...], slack="", min_severity="high", store_dir=..., **options) -> AlertSink``."""
    made: list[AlertSink] = []

    def make(
        webhooks: list[str] | tuple[str, ...] = (),
        slack: str = "",
        min_severity: str = "high",
        store_dir: Path | None = None,
        **options: Any,
    ) -> AlertSink:
        options = {"backoff_s": 0.01, "max_attempts": 4, "rate_per_s": 0, "timeout_s": 5.0, **options}
        targets = parse_targets(",".join(webhooks), slack, min_severity)
        store = options.pop("store", None) or FileSentStore(store_dir or tmp_path / "alerts", 86400.0)
        sink = AlertSink(targets, store, **options)
        made.append(sink)
        return sink

    yield make
    for sink in made:
        await sink.close()


def ids_of(requests: list[Any]) -> list[str]:
    return [r.headers["X-Typostream-Threat-Id"] for r in requests]


# --- targets and settings --------------------------------------------------------------------
def test_targets_take_a_severity_prefix_or_the_default() -> None:
    targets = parse_targets(
        "medium=https://siem.example/hook?k=1, https://pager.example/p/x",
        "critical=https://hooks.slack.com/s/T/B/x",
    )
    assert [(t.label, t.kind, t.min_severity) for t in targets] == [
        ("webhook1", "webhook", "medium"),
        ("webhook2", "webhook", "high"),
        ("slack", "slack", "critical"),
    ]
    assert targets[0].url == "https://siem.example/hook?k=1"  # a '=' in the query is not a prefix
    assert parse_targets("", "") == []
    assert [t.min_severity for t in parse_targets("https://a.example/x", "", "LOW")] == ["low"]


@pytest.mark.parametrize(
    ("webhooks", "slack", "severity", "message"),
    [
        (
            f"ftp://files.example/{SECRET}",
            "",
            "high",
            "ALERT_WEBHOOK_URLS: entry 1 is not an http\\(s\\) URL",
        ),
        (f"https://ok.example/a,/relative/{SECRET}", "", "high", "entry 2 is not an http\\(s\\) URL"),
        ("", f"hooks.slack.com/services/{SECRET}", "high", "ALERT_SLACK_WEBHOOK_URL: entry 1"),
        (f"https://a.example/{SECRET},https://a.example/{SECRET}", "", "high", "webhook2 repeats webhook1"),
        (f"https://a.example:99999/{SECRET}", "", "high", "invalid port"),
        ("https://a.example/x", "", "severe", "ALERT_MIN_SEVERITY: unknown severity 'severe'"),
    ],
)
def test_bad_targets_name_the_setting_never_the_url(
    webhooks: str, slack: str, severity: str, message: str
) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        parse_targets(webhooks, slack, severity)
    assert SECRET not in str(caught.value)


def test_alert_urls_are_secrets_masked_as_a_whole(tmp_path: Path) -> None:
    env = {
        "TYPOSTREAM_ALERT_WEBHOOK_URLS": f"https://siem.example/{SECRET}",
        "TYPOSTREAM_ALERT_SLACK_WEBHOOK_URL": f"https://hooks.slack.com/services/T0/B0/{SECRET}",
        "TYPOSTREAM_ALERT_MIN_SEVERITY": "medium",
        "TYPOSTREAM_ALERT_RATE_PER_S": "0.5",
        "TYPOSTREAM_ALERT_IN_WORKER": "false",
    }
    settings = Settings.from_env(environ=env, data_dir=tmp_path)
    assert settings.alert_min_severity == "medium" and settings.alert_rate_per_s == 0.5
    assert settings.alert_in_worker is False
    view = settings.masked()
    assert SECRET not in str(view)
    assert view["alert_webhook_urls"] == view["alert_slack_webhook_url"] == "***"
    targets = parse_targets(settings.alert_webhook_urls, settings.alert_slack_webhook_url)
    assert SECRET not in repr(targets) and SECRET not in str([t.shown for t in targets])
    assert targets[1].shown == "slack (https://hooks.slack.com/…)"


def test_a_configured_target_turns_the_sink_on_in_the_worker(tmp_path: Path) -> None:
    no_clickhouse = SinkResources(clickhouse=lambda: pytest.fail("ClickHouse is not asked for"))
    url = f"http://127.0.0.1:9/{SECRET}"
    assert build_sinks(Settings(data_dir=tmp_path, sinks=""), no_clickhouse) == []
    [sink] = build_sinks(Settings(data_dir=tmp_path, sinks="", alert_webhook_urls=url), no_clickhouse)
    assert isinstance(sink, AlertSink) and sink.streams == ("threats",) and SECRET not in repr(sink)
    off = Settings(data_dir=tmp_path, sinks="", alert_webhook_urls=url, alert_in_worker=False)
    assert build_sinks(off, no_clickhouse) == []
    listed = Settings(
        data_dir=tmp_path, sinks="alerts", alert_slack_webhook_url=url
    )  # listed once, built once
    assert [s.id for s in build_sinks(listed, no_clickhouse)] == ["alerts"]
    with pytest.raises(ConfigError, match="no alert target"):
        build_sinks(Settings(data_dir=tmp_path, sinks="alerts"), no_clickhouse)
    with pytest.raises(ConfigError, match="TYPOSTREAM_ALERT_DEDUPE='memcached'"):
        build_sinks(
            Settings(data_dir=tmp_path, sinks="", alert_webhook_urls=url, alert_dedupe="memcached"),
            no_clickhouse,
        )


# --- what is sent ----------------------------------------------------------------------------
async def test_webhook_body_is_the_threat_event_exactly(receiver: Receiver, make_sink: SinkFactory) -> None:
    sink = make_sink([receiver.url("/a"), receiver.url("/b")])
    first, second = threat("expresss"), threat("lodahs", "critical", target="lodash")
    raw = b'{"id": "%s", "severity": "high", "as": "on the topic"}' % first["id"].encode()
    outcomes = await sink.deliver([first, second], [raw, None])
    assert [o.delivered for o in outcomes] == [["webhook1", "webhook2"]] * 2
    for path in ("/a", "/b"):
        got = {r.headers["X-Typostream-Threat-Id"]: r for r in receiver.requests(path)}
        assert got[first["id"]].body == raw  # the bytes as on the topic when known
        assert got[second["id"]].body == orjson.dumps(second)  # else the event, re-encoded as detect did
        THREAT_SCHEMA.validate(got[second["id"]].json)
        request = got[second["id"]]
        assert request.headers["Content-Type"] == "application/json"
        assert request.headers["User-Agent"].startswith("typostream/")
        assert request.headers["X-Typostream-Delivery-Attempt"] == "1"


async def test_slack_gets_text_and_blocks_within_block_kit_limits(
    receiver: Receiver, make_sink: SinkFactory
) -> None:
    hostile = threat(
        "x" * 200, "critical", target="<!channel> & <https://evil.example|click>", evidence="e" * 5000
    )
    sink = make_sink(slack=receiver.url(f"/services/T0/B0/{SECRET}"), min_severity="low")
    await sink.deliver([hostile, threat("reqeusts", "high", target="requests")])
    messages = [r.json for r in receiver.requests()]
    assert len(messages) == 2
    for message in messages:
        assert isinstance(message["text"], str) and message["text"]
        kinds = [b["type"] for b in message["blocks"]]
        assert kinds[0] == "header" and kinds[-1] == "context" and "section" in kinds
        header = message["blocks"][0]["text"]
        assert header["type"] == "plain_text" and len(header["text"]) <= HEADER_MAX
        for block in message["blocks"]:
            if block["type"] == "section":
                assert block["text"]["type"] == "mrkdwn" and len(block["text"]["text"]) <= SECTION_MAX
                assert len(block.get("fields", [])) <= 10
                assert all(len(f["text"]) <= FIELD_MAX for f in block.get("fields", []))
    assert "<!channel>" not in messages[0]["text"]  # the top-level text is mrkdwn too (a mention!)
    assert "&lt;!channel&gt;" in messages[0]["text"]
    hostile_text = orjson.dumps(messages[0]["blocks"][1:]).decode()
    assert (
        "<!channel>" not in hostile_text
        and "&lt;!channel&gt; &amp; &lt;https://evil.example|click&gt;" in (hostile_text)
    )
    assert "CRITICAL typosquat: npm package " in messages[0]["text"]
    assert (
        "*<https://www.npmjs.com/package/reqeusts/v/1.0.0|reqeusts@1.0.0>*"
        in orjson.dumps(messages[1]).decode()
    )


def test_slack_message_names_the_package_target_and_ids() -> None:
    event = threat("reqeusts", "critical", target="requests")
    message = slack_message(event)
    assert message["text"] == "CRITICAL typosquat: npm package reqeusts@1.0.0 imitates requests"
    assert message["blocks"][0]["text"]["text"] == ":rotating_light: CRITICAL typosquat: reqeusts"
    assert event["id"] in message["blocks"][-1]["elements"][0]["text"]
    test = slack_message(sample_threat())
    assert test["text"].endswith("[TEST]") and "[TEST]" in test["blocks"][0]["text"]["text"]
    THREAT_SCHEMA.validate(sample_threat())


async def test_each_target_gets_its_minimum_severity_and_above(
    receiver: Receiver, make_sink: SinkFactory
) -> None:
    sink = make_sink(
        [receiver.url("/default"), "medium=" + receiver.url("/medium")],
        slack="critical=" + receiver.url("/slack"),
    )
    batch = [threat(f"pkg-{s}", s) for s in ("low", "medium", "high", "critical")]
    outcomes = await sink.deliver(batch)
    by = {t["severity"]: t["id"] for t in batch}
    assert sorted(ids_of(receiver.requests("/default"))) == sorted([by["high"], by["critical"]])
    assert sorted(ids_of(receiver.requests("/medium"))) == sorted([by["medium"], by["high"], by["critical"]])
    assert ids_of(receiver.requests("/slack")) == [by["critical"]]
    assert outcomes[0].below_severity == ["webhook1", "webhook2", "slack"] and not outcomes[0].delivered


# --- de-duplication --------------------------------------------------------------------------
async def test_a_replayed_threat_is_not_sent_twice(receiver: Receiver, make_sink: SinkFactory) -> None:
    sink = make_sink([receiver.url("/a")], slack=receiver.url("/slack"))
    a, b = threat("expresss"), threat("lodahs", target="lodash")
    await sink.write("threats", [a, b, a])  # a duplicate inside the batch too
    redetected = {**a, "timestamp": "2026-11-25T11:00:00.000Z"}  # a replayed event: same id, new time
    await sink.write("threats", [redetected, b])
    outcomes = await sink.deliver([a])
    assert outcomes[0].duplicate == ["webhook1", "slack"] and outcomes[0].delivered == []
    assert Counter(ids_of(receiver.requests("/a"))) == {a["id"]: 1, b["id"]: 1}
    assert Counter(ids_of(receiver.requests("/slack"))) == {a["id"]: 1, b["id"]: 1}


async def test_sent_ids_survive_a_restart(receiver: Receiver, make_sink: SinkFactory, tmp_path: Path) -> None:
    first = make_sink([receiver.url("/a")])
    batch = [threat(f"pkg{i}") for i in range(5)]
    await first.write("threats", batch[:3])
    await first.close()  # the worker stops (or is killed: every line is fsynced when written)
    restarted = make_sink([receiver.url("/a")])
    await restarted.write("threats", batch)
    assert Counter(ids_of(receiver.requests())) == {t["id"]: 1 for t in batch}
    store_file = tmp_path / "alerts" / "sent.log"
    assert SECRET not in store_file.read_text() and len(store_file.read_text().splitlines()) == 5


async def test_store_keeps_ids_for_the_ttl_tolerates_a_torn_line_and_compacts(tmp_path: Path) -> None:
    now = [1_000_000.0]
    store = FileSentStore(tmp_path, ttl_s=100.0, max_entries=3, clock=lambda: now[0])
    for key in ("t:a", "t:b", "t:c", "t:d"):
        await store.add(key)
        now[0] += 1
    assert [await store.seen(k) for k in ("t:a", "t:b", "t:d")] == [False, True, True]  # size bound: 3
    await store.close()
    with (tmp_path / "sent.log").open("a") as handle:
        handle.write("garbage\n100000")  # a crash mid-write leaves a partial last line
    now[0] += 97.5  # t:b (written at 1000001) is older than the TTL now; t:c, t:d are not
    reopened = FileSentStore(tmp_path, ttl_s=100.0, max_entries=3, clock=lambda: now[0])
    reopened.open()
    assert [await reopened.seen(k) for k in ("t:b", "t:c", "t:d")] == [False, True, True]
    assert len((tmp_path / "sent.log").read_text().splitlines()) == len(reopened) == 2  # compacted at load
    await reopened.close()
    with (tmp_path / "sent.log").open("a") as handle:
        handle.write("1000101.000 t:partial-k")  # torn mid-key: looks like an entry, no newline
    third = FileSentStore(tmp_path, ttl_s=100.0, max_entries=3, clock=lambda: now[0])
    await third.add("t:e")
    await third.close()
    last = FileSentStore(tmp_path, ttl_s=100.0, max_entries=3, clock=lambda: now[0])
    assert await last.seen("t:e") and await last.seen("t:d")  # the next entry was not swallowed
    await last.close()


async def test_one_process_owns_a_file_store(tmp_path: Path) -> None:
    owner = FileSentStore(tmp_path, 60.0)
    owner.open()
    with pytest.raises(ConfigError, match="another process delivers alerts"):
        FileSentStore(tmp_path, 60.0).open()
    await owner.close()
    again = FileSentStore(tmp_path, 60.0)
    again.open()  # released on close (and by the kernel when a process dies)
    await again.close()


@pytest.mark.integration
async def test_redis_store_is_shared_between_deliverers(
    receiver: Receiver, make_sink: SinkFactory, embedded_stack: StackState, tmp_path: Path
) -> None:
    prefix = f"typostream-test:{tmp_path.name}:"
    stores = [RedisSentStore(embedded_stack.redis_url, 60.0, prefix=prefix) for _ in range(2)]
    one, two = (make_sink([receiver.url("/a")], store=s) for s in stores)
    batch = [threat("expresss"), threat("lodahs", target="lodash")]
    await one.write("threats", batch[:1])
    await two.write("threats", batch)  # another worker (no shared disk) after a rebalance
    assert Counter(ids_of(receiver.requests())) == {batch[0]["id"]: 1, batch[1]["id"]: 1}
    assert await stores[0].seen(f"{one.targets[0].key}:{batch[1]['id']}")


# --- failures --------------------------------------------------------------------------------
async def test_transient_errors_are_retried_and_delivered_once(
    receiver: Receiver, make_sink: SinkFactory
) -> None:
    receiver.answer_next(500)
    receiver.answer_next(502)
    sink = make_sink([receiver.url("/a")])
    [outcome] = await sink.deliver([threat()])
    assert outcome.delivered == ["webhook1"] and outcome.error is None
    assert [r.status for r in receiver.requests()] == [500, 502, 200]
    assert [r.headers["X-Typostream-Delivery-Attempt"] for r in receiver.requests()] == ["1", "2", "3"]


async def test_429_waits_for_retry_after_and_holds_the_target(
    receiver: Receiver, make_sink: SinkFactory
) -> None:
    receiver.answer_next(429, body='{"ok":false,"error":"rate_limited"}', headers={"Retry-After": "1"})
    sink = make_sink([receiver.url("/a")], backoff_s=0.01)
    first = asyncio.create_task(sink.deliver([threat("first")]))
    await asyncio.sleep(0.2)  # the 429 is in: the target is held for a second
    [second] = await sink.deliver([threat("second")])
    [first_outcome] = await first
    assert first_outcome.delivered == second.delivered == ["webhook1"]
    limited, *rest = receiver.requests()
    assert limited.status == 429 and [r.status for r in rest] == [200, 200]
    # nothing reached the target within the second it asked for: neither the retry nor the other alert
    assert min(r.at for r in rest) - limited.at >= 0.95
    assert set(ids_of(rest)) == {first_outcome.threat_id, second.threat_id}


def test_retry_after_in_seconds_or_as_an_http_date() -> None:
    now = datetime(2026, 11, 25, 10, 0, 0, tzinfo=UTC)
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after(" 1.5 ") == 1.5
    assert (
        parse_retry_after(format_datetime(now + timedelta(seconds=30), usegmt=True), now.timestamp()) == 30.0
    )
    assert (
        parse_retry_after(format_datetime(now - timedelta(seconds=30), usegmt=True), now.timestamp()) == 0.0
    )
    assert parse_retry_after("86400") == MAX_RETRY_AFTER_S
    assert parse_retry_after("-3") == 0.0
    assert (
        parse_retry_after(None) is None
        and parse_retry_after("soon") is None
        and parse_retry_after("") is None
    )


async def test_a_4xx_is_final_and_the_record_is_dead_lettered_alone(
    receiver: Receiver, make_sink: SinkFactory, caplog: pytest.LogCaptureFixture
) -> None:
    receiver.answer_path(f"/gone/{SECRET}", 404, body="no_service")
    # the refusing target takes critical only: `good` goes to /ok alone, `bad` to both
    sink = make_sink([receiver.url("/ok"), "critical=" + receiver.url(f"/gone/{SECRET}")])
    good, bad = threat("lodahs", "high", target="lodash"), threat("expresss", "critical")
    with caplog.at_level(logging.WARNING, "typostream"), pytest.raises(InvalidRowError) as batch_error:
        await sink.write("threats", [good, bad])  # the batch: the agent then writes one by one
    assert not isinstance(batch_error.value, UndeliverableAlertError)
    await sink.write("threats", [good])  # delivered before: nothing to do
    with pytest.raises(UndeliverableAlertError) as caught:
        await sink.write("threats", [bad])  # remembered: dead-lettered without another attempt
    error = caught.value
    assert error.reason == "undeliverable"
    assert "webhook2 (http://127.0.0.1:" in error.detail and "HTTP 404 no_service (permanent)" in error.detail
    assert len(receiver.requests(f"/gone/{SECRET}")) == 1  # never retried
    assert Counter(ids_of(receiver.delivered("/ok"))) == {good["id"]: 1, bad["id"]: 1}
    logged = " ".join(r.getMessage() for r in caplog.records)
    assert "undeliverable" in logged and SECRET not in logged and SECRET not in str(error)
    with pytest.raises(UndeliverableAlertError):  # a later replay tries the target again
        await sink.write("threats", [bad])
    assert len(receiver.requests(f"/gone/{SECRET}")) == 2


async def test_gives_up_after_max_attempts(
    receiver: Receiver, make_sink: SinkFactory, caplog: pytest.LogCaptureFixture
) -> None:
    receiver.set_default(503)
    sink = make_sink(slack=receiver.url(f"/services/{SECRET}"), max_attempts=3)
    with caplog.at_level(logging.WARNING, "typostream"), pytest.raises(UndeliverableAlertError) as caught:
        await sink.write("threats", [threat()])
    assert "gave up after 3 attempt(s): HTTP 503" in caught.value.detail
    assert len(receiver.requests()) == 3
    assert [
        r.getMessage().split(";")[1].strip()[:9] for r in caplog.records if "retry" in r.getMessage()
    ] == [
        "retry 2/3",
        "retry 3/3",
    ]
    assert SECRET not in caplog.text


async def test_a_connection_error_is_described_without_the_url(make_sink: SinkFactory) -> None:
    from typostream.streams.stack.processes import free_port

    sink = make_sink(
        [f"http://127.0.0.1:{free_port()}/{SECRET}", f"http://127.0.0.1:{free_port()}/x"], max_attempts=2
    )
    [outcome] = await sink.deliver([threat()])
    assert isinstance(outcome.error, UndeliverableAlertError)
    detail = outcome.error.detail
    assert "webhook1 (http://127.0.0.1:" in detail and "webhook2 (http://127.0.0.1:" in detail  # both named
    assert detail.count("gave up after 2 attempt(s): connection failed") == 2
    assert SECRET not in str(outcome.error)


async def test_a_record_that_is_no_threat_is_rejected_as_a_bad_row(
    receiver: Receiver, make_sink: SinkFactory
) -> None:
    sink = make_sink([receiver.url("/a")])
    outcomes = await sink.deliver([{"hello": "world"}, threat()])
    assert isinstance(outcomes[0].error, InvalidRowError)
    assert not isinstance(outcomes[0].error, UndeliverableAlertError)
    assert outcomes[1].delivered == ["webhook1"]
    with pytest.raises(InvalidRowError, match="not a threat event"):
        await sink.write("threats", [{"id": 5}])


# --- outages ---------------------------------------------------------------------------------
async def test_receiver_outage_loses_nothing_and_sends_nothing_twice(
    receiver: Receiver, make_sink: SinkFactory
) -> None:
    batch = [threat(f"outage-{i}") for i in range(6)]
    sink = make_sink([receiver.url("/a")], slack=receiver.url("/slack"), backoff_s=0.05, max_attempts=30)
    await receiver.down()  # connection refused
    delivery = asyncio.create_task(sink.write("threats", batch[:3]))
    await asyncio.sleep(0.4)
    assert not delivery.done()
    await receiver.up()
    receiver.set_default(503)  # back, but failing
    await asyncio.sleep(0.3)
    receiver.set_default(200)
    await asyncio.wait_for(delivery, 30)
    await sink.write("threats", batch)  # the batch again (a redelivery) plus new threats
    for path in ("/a", "/slack"):
        assert Counter(ids_of(receiver.delivered(path))) == {t["id"]: 1 for t in batch}, path
    assert any(r.status == 503 for r in receiver.requests())


async def test_a_deliverer_killed_mid_outage_delivers_everything_once_after_restart(
    receiver: Receiver, make_sink: SinkFactory
) -> None:
    batch = [threat(f"crash-{i}") for i in range(4)]
    receiver.answer_path("/a", 200)  # this target is up all along
    first = make_sink([receiver.url("/a"), receiver.url("/down")], backoff_s=0.05, max_attempts=50)
    receiver.answer_path("/down", 503)
    task = asyncio.create_task(first.write("threats", batch))
    await asyncio.sleep(0.5)
    task.cancel()  # the worker dies; the batch was never acked
    with pytest.raises(asyncio.CancelledError):
        await task
    await first.close()
    del receiver.by_path["/down"]
    restarted = make_sink([receiver.url("/a"), receiver.url("/down")], backoff_s=0.05, max_attempts=50)
    await restarted.write("threats", batch)  # the broker redelivers the unacked batch
    assert Counter(ids_of(receiver.delivered("/a"))) == {t["id"]: 1 for t in batch}
    assert Counter(ids_of(receiver.delivered("/down"))) == {t["id"]: 1 for t in batch}


# --- rate limit ------------------------------------------------------------------------------
async def test_rate_limit_is_per_target(receiver: Receiver, make_sink: SinkFactory) -> None:
    sink = make_sink([receiver.url("/a"), receiver.url("/b")], rate_per_s=10.0, burst=1)
    started = time.monotonic()
    await sink.deliver([threat(f"rate-{i}") for i in range(6)])
    elapsed = time.monotonic() - started
    for path in ("/a", "/b"):
        times = [r.at for r in receiver.requests(path)]
        gaps = [b - a for a, b in itertools.pairwise(times)]
        assert len(times) == 6 and min(gaps) >= 0.08, (path, gaps)
    assert 0.45 <= elapsed < 0.9  # both targets in parallel, each at 10/s (not 12 alerts at 10/s)


async def test_token_bucket_burst_rate_and_hold() -> None:
    now = [0.0]
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(round(seconds, 3))
        now[0] += seconds

    bucket = TokenBucket(2.0, 3, clock=lambda: now[0], sleep=sleep)
    for _ in range(3):
        await bucket.acquire()
    assert slept == []  # the burst
    await bucket.acquire()
    assert slept == [0.5]  # then 2 per second
    bucket.hold(5.0)
    await bucket.acquire()
    assert slept == [0.5, 5.0] and now[0] == 5.5
    unlimited = TokenBucket(0, 1, clock=lambda: now[0], sleep=sleep)
    for _ in range(100):
        await unlimited.acquire()
    assert len(slept) == 2


# --- typostream alerts test ------------------------------------------------------------------
def test_alerts_test_reports_every_target(tmp_path: Path) -> None:
    from typostream.streams.cli import cli

    with threaded_receiver() as receiver:
        receiver.answer_path(f"/gone/{SECRET}", 410, body="channel_is_archived")
        env = {
            "TYPOSTREAM_DATA_DIR": str(tmp_path),
            "TYPOSTREAM_ALERT_WEBHOOK_URLS": receiver.url("/hook")
            + ",critical="
            + receiver.url(f"/gone/{SECRET}"),
            "TYPOSTREAM_ALERT_SLACK_WEBHOOK_URL": receiver.url("/slack"),
        }
        result = CliRunner().invoke(cli, ["alerts", "test"], env=env)
        assert result.exit_code == 1, result.output
        lines = result.output.strip().splitlines()
        assert lines[0].startswith("webhook1\tok\tHTTP 200\t1 attempt(s)")
        assert lines[1].startswith("webhook2\tFAILED\tHTTP 410 channel_is_archived (permanent)")
        assert (
            lines[2].startswith("slack\tok\tHTTP 200") and lines[3] == "2/3 target(s) accepted the test alert"
        )
        assert SECRET not in result.output
        [hook] = receiver.requests("/hook")
        THREAT_SCHEMA.validate(hook.json)
        assert hook.json["metadata"]["test"] is True and hook.json["severity"] == "critical"
        [slack] = receiver.requests("/slack")
        assert slack.json["text"].endswith("[TEST]")
        assert not (tmp_path / "alerts" / "sent.log").exists()  # a test alert is not recorded as sent

        receiver.by_path.clear()
        assert CliRunner().invoke(cli, ["alerts", "test"], env=env).exit_code == 0
    result = CliRunner().invoke(cli, ["alerts", "test"], env={"TYPOSTREAM_DATA_DIR": str(tmp_path)})
    assert result.exit_code == 2 and "no alert target" in result.output
