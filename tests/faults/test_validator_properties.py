"""Property-based malformed input into the validator (hypothesis), and accepted events round-tripping.

- ``parse_publish`` raises nothing but :class:`InvalidEventError`, with an input reason (never
  ``internal_error``), for arbitrary bytes, arbitrary JSON, near-valid publishes with any field
  replaced, and valid publishes with bytes flipped, cut or inserted;
- every dead letter it leads to fits the producer's message limit;
- every accepted event round-trips: published again from its own fields it parses to the same
  event (same id), its ``typostream.events`` message survives JSON, the sink's converters take it,
  and through a real chDB ``events`` table it comes back with the same name, version and instant.
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from tests.faults.harness import LedgerRow, Profile, profile, record_row
from tests.faults.inputs import publish_doc
from typostream.agents.adapters.sinks.clickhouse import _to_datetime
from typostream.agents.domain.errors import InvalidEventError
from typostream.agents.domain.events import (
    EARLIEST_CREATED,
    LATEST_CREATED,
    PublishEvent,
    event_id_for,
    parse_publish,
)
from typostream.agents.domain.messages import analysed_message, dead_letter, event_message
from typostream.agents.domain.vocabulary import DEAD_LETTER_REASONS

pytestmark = pytest.mark.faults

MAX_BYTES = 64 * 1024
PRODUCER_LIMIT = 1_000_000
INPUT_REASONS = frozenset(DEAD_LETTER_REASONS) - {"internal_error", "undeliverable"}
PROFILE: Profile = profile()
EXAMPLES = PROFILE.hypothesis_examples

# Characters that matter to names: the registries' grammar, separators, and the invisible ones.
TRICKY = (
    "\u202e\u202d\u2066\u2069\u200b\u200c\u200d\u2060\ufeff"  # bidi controls, zero-width, BOM
    "\u0085\u009b\u00a0\u3164\u115f\ufe0f\U000e0041"  # C1, no-break space, fillers, selectors, tags
    "\U0001f600\u0435\uff45\u0000\u0007\u007f\t\n "  # emoji, look-alikes, C0, DEL, whitespace
)
NAME_CHARS = st.sampled_from("abcxyz019-._~!*'()@/ABC" + TRICKY) | st.characters()
names = st.one_of(
    st.text(NAME_CHARS, min_size=0, max_size=40),
    st.from_regex(r"\A[a-z0-9][a-z0-9._-]{0,30}[a-z0-9]\Z"),
    st.from_regex(r"\A@[a-z0-9-]{1,10}/[a-z0-9][a-z0-9._-]{0,20}\Z"),
    st.text(min_size=200, max_size=230),
)
versions = st.one_of(
    st.from_regex(r"\A\d{1,4}\.\d{1,4}\.\d{1,4}([-+][0-9A-Za-z.]{1,10})?\Z"), st.text(max_size=20)
)
offsets = st.integers(min_value=-23 * 60 - 59, max_value=23 * 60 + 59).map(lambda m: timedelta(minutes=m))


@st.composite
def timestamps(draw: st.DrawFn) -> str:
    """RFC 3339-shaped strings over years 1-9999 and any offset, some with odd fractions or case."""
    moment = draw(st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)))
    offset = draw(offsets)
    fraction = draw(st.sampled_from(["", ".5", ".123", ".123456", ".1234567", ".000"]))
    sep = draw(st.sampled_from(["T", "t", " "]))
    text = moment.replace(microsecond=0).isoformat(sep=sep) + fraction
    if offset == timedelta(0) and draw(st.booleans()):
        return text + draw(st.sampled_from(["Z", "z"]))
    sign = "-" if offset < timedelta(0) else "+"
    hh, mm = divmod(abs(int(offset.total_seconds())) // 60, 60)
    return text + draw(st.sampled_from([f"{sign}{hh:02d}:{mm:02d}", ""]))


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
field_values = st.one_of(st.text(max_size=30), json_values)


@st.composite
def near_valid_docs(draw: st.DrawFn) -> dict[str, Any]:
    """A publish whose fields are each valid-leaning or replaced by anything, some dropped, extras added."""
    doc: dict[str, Any] = {
        "name": draw(st.one_of(names, names, field_values)),
        "version": draw(st.one_of(versions, versions, field_values)),
        "created_date": draw(st.one_of(timestamps(), timestamps(), field_values)),
        "type": draw(
            st.one_of(st.sampled_from(["npm", "pypi"]), st.sampled_from(["cargo", "NPM", ""]), field_values)
        ),
    }
    if draw(st.booleans()):
        doc["artifact_id"] = draw(st.one_of(st.text(max_size=40), field_values))
    if draw(st.booleans()):
        doc["schema_ver"] = draw(st.one_of(st.just("1.1.0"), st.text(max_size=40), field_values))
    for key in draw(st.lists(st.sampled_from(sorted(doc)), max_size=2)):
        doc.pop(key, None)
    doc.update(draw(st.dictionaries(st.text(max_size=10), json_values, max_size=2)))
    return doc


@st.composite
def corrupted(draw: st.DrawFn) -> bytes:
    """A valid publish with bytes flipped, cut or inserted."""
    raw = bytearray(orjson.dumps(publish_doc("left-pad", "1.3.0", "npm", "2026-11-25T10:00:00Z")))
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["flip", "cut", "insert"]))
        at = draw(st.integers(0, max(0, len(raw) - 1)))
        if op == "flip" and raw:
            raw[at] = draw(st.integers(0, 255))
        elif op == "cut":
            del raw[at : at + draw(st.integers(1, 8))]
        else:
            raw[at:at] = draw(st.binary(min_size=1, max_size=6))
    return bytes(raw)


def encodings(doc: Any) -> st.SearchStrategy[bytes]:
    """``doc`` as JSON bytes several ways: escaped or raw UTF-8 (lone surrogates kept as bytes),
    indented, padded; big integers and infinities included (stdlib ``json`` writes them)."""
    escaped = json.dumps(doc).encode()
    raw = json.dumps(doc, ensure_ascii=False).encode("utf-8", "surrogatepass")
    indented = json.dumps(doc, ensure_ascii=False, indent=2).encode("utf-8", "surrogatepass")
    return st.sampled_from([escaped, raw, indented, b" " + raw + b"\n"])


@st.composite
def valid_publishes(draw: st.DrawFn) -> tuple[bytes, datetime]:
    """A publish inside both registries' grammar and the date range: (its bytes, its instant)."""
    name = draw(st.from_regex(r"\A[a-z0-9][a-z0-9._-]{0,40}[a-z0-9]\Z"))
    assume(name not in ("node_modules", "favicon.ico"))
    version = draw(st.from_regex(r"\A\d{1,3}\.\d{1,3}\.\d{1,3}\Z"))
    moment = draw(
        st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(2299, 12, 30), timezones=st.just(UTC))
    )
    created = moment.astimezone(timezone(draw(offsets))).isoformat(timespec="milliseconds")
    registry = draw(st.sampled_from(["npm", "pypi"]))
    return orjson.dumps(publish_doc(name, version, registry, created)), moment


raw_messages = st.one_of(
    st.binary(max_size=300),
    json_values.flatmap(encodings),
    near_valid_docs().flatmap(encodings),
    near_valid_docs().flatmap(encodings),
    corrupted(),
    valid_publishes().map(lambda publish: publish[0]),
)

SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
    database=None,
    derandomize=PROFILE.name == "short",  # CI: the same examples every run
)


def check_one(raw: bytes, accepted: list[PublishEvent], stats: dict[str, int]) -> None:
    try:
        event = parse_publish(raw, MAX_BYTES)
    except InvalidEventError as error:
        assert error.reason in INPUT_REASONS, (error.reason, error.detail)
        assert isinstance(error.detail, str) and error.detail
        record = dead_letter(error, raw, b"k", "registry.publish", 0, 0)
        assert len(orjson.dumps(record)) < PRODUCER_LIMIT
        stats[error.reason] = stats.get(error.reason, 0) + 1
        return
    except Exception as exc:  # anything else escapes the validate agent's contract
        raise AssertionError(f"parse_publish raised {type(exc).__name__}: {exc} for {raw[:200]!r}") from exc
    stats["accepted"] = stats.get("accepted", 0) + 1
    assert_round_trips(event)
    accepted.append(event)


def assert_round_trips(event: PublishEvent) -> None:
    assert event.registry in ("npm", "pypi")
    assert event.name.isascii() and event.name.isprintable() and " " not in event.name
    assert event.event_id == event_id_for(event.registry, event.name, event.version, event.created_date)
    instant = datetime.fromisoformat(event.created_date.replace("Z", "+00:00"))
    assert EARLIEST_CREATED <= instant <= LATEST_CREATED
    again = parse_publish(
        orjson.dumps(
            {"name": event.name, "version": event.version, "created_date": event.created_date,
             "type": event.registry, "artifact_id": event.artifact_id, "schema_ver": event.schema_ver}
        ),
        MAX_BYTES,
    )  # fmt: skip
    assert again == event
    message = event_message(event, 1, 7, "2026-11-25T10:00:00.000Z")
    assert orjson.loads(orjson.dumps(message)) == message
    assert _to_datetime(message["created_date"]) == instant


def test_the_validator_raises_only_invalid_event_errors_and_accepted_events_round_trip(
    tmp_path: Path,
) -> None:
    accepted: list[PublishEvent] = []
    stats: dict[str, int] = {}

    @SETTINGS
    @given(raw_messages)
    def property_(raw: bytes) -> None:
        check_one(raw, accepted, stats)

    property_()
    examples = sum(stats.values())
    rejected = examples - stats.get("accepted", 0)
    reasons = ", ".join(f"{k} {v}" for k, v in sorted(stats.items()) if k != "accepted")
    record_row(
        LedgerRow("validator property test (hypothesis: bytes, JSON, near-valid, corrupted, valid)", 1,
                  examples, stats.get("accepted", 0), rejected, 0, 0,
                  f"sent = examples, processed = accepted and round-tripped (chDB too), DLQ = rejected "
                  f"with an input reason ({reasons}), lost = any other exception")
    )  # fmt: skip
    assert stats.get("accepted", 0) > 0, "no example was valid: the round-trip property was never tested"
    assert_store_round_trip(tmp_path, accepted)


@SETTINGS
@given(near_valid_docs())
def test_a_publish_with_any_field_replaced_is_accepted_or_rejected_with_an_input_reason(doc: dict) -> None:
    check_one(json.dumps(doc).encode(), [], {})


@SETTINGS
@given(valid_publishes())
def test_every_publish_within_the_grammar_and_range_is_accepted(publish: tuple[bytes, datetime]) -> None:
    raw, moment = publish
    event = parse_publish(raw, MAX_BYTES)
    assert_round_trips(event)
    instant = datetime.fromisoformat(event.created_date.replace("Z", "+00:00"))
    assert instant == moment.replace(microsecond=moment.microsecond // 1000 * 1000)


ROUND_TRIP = """
import sys, orjson
from pathlib import Path
from typostream.agents.adapters.clickhouse import ClickHouseConnection
from typostream.agents.adapters.sinks.clickhouse import ClickHouseSink
rows = orjson.loads(Path(sys.argv[2]).read_bytes())
sink = ClickHouseSink(ClickHouseConnection.open("chdb://" + sys.argv[1], Path(sys.argv[1])))
sink.ensure_schema()
sink.insert_events(rows)
sink.insert_events(rows)  # a replay: no duplicates
result = sink.connection.client.query(
    "SELECT event_id, registry, name, version, toString(created_date), count() OVER (PARTITION BY event_id)"
    " FROM events"
)
print(orjson.dumps([list(r) for r in result.result_rows]).decode())
sink.connection.close()
"""


def assert_store_round_trip(tmp_path: Path, events: list[PublishEvent]) -> None:
    """Accepted events through a real chDB ``events`` table (another process: chDB locks one path
    per process) come back as they went in, once each."""
    unique = {e.event_id: e for e in events}
    rows = [
        analysed_message(event_message(e, 0, i, "2026-11-25T10:00:00.000Z"), "clean", [])
        for i, e in enumerate(unique.values())
    ]
    (tmp_path / "rows.json").write_bytes(orjson.dumps(rows))
    done = subprocess.run(
        [sys.executable, "-c", ROUND_TRIP, str(tmp_path / "ch"), str(tmp_path / "rows.json")],
        capture_output=True, text=True, timeout=180, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    back = {r[0]: r for r in orjson.loads(done.stdout.strip().splitlines()[-1])}
    assert set(back) == set(unique)
    for event_id, (_, registry, name, version, created, copies) in back.items():
        event = unique[event_id]
        assert (registry, name, version, copies) == (event.registry, event.name, event.version, 1)
        stored = datetime.fromisoformat(created).replace(tzinfo=UTC)
        assert stored == datetime.fromisoformat(event.created_date.replace("Z", "+00:00"))
