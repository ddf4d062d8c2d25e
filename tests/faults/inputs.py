"""What the fault suite feeds the worker: valid publishes and every malformed kind, each with its fate.

A :class:`Replay` is a list of raw messages, each one either valid (its event id is known from the
pure validator) or invalid with the DLQ reason it must get. Every invalid message is distinct
bytes where it can be (a tag in it), so a DLQ record is matched to its input by sha256.
"""

from __future__ import annotations

import hashlib
import random
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, timedelta

import orjson

from typostream.agents.domain.errors import InvalidEventError
from typostream.agents.domain.events import EARLIEST_CREATED, LATEST_CREATED, parse_publish

MAX_EVENT_BYTES = 64 * 1024  # Settings.max_event_bytes' default, which the suite's workers use
ONE_MB = 1_000_000
ONE_MIB = 1 << 20
# Popular-name look-alikes and a known-malicious version: the detector flags them (threats).
SQUATS = (("expresss", "npm"), ("lodahs", "npm"), ("reqeusts", "pypi"), ("djnago", "pypi"))
KNOWN_MALICIOUS = ("crossenv", "6.1.1", "npm")


def publish_doc(name: str, version: str, registry: str, created: str, **extra: object) -> dict[str, object]:
    return {
        "name": name,
        "version": version,
        "created_date": created,
        "type": registry,
        "artifact_id": "",
        "schema_ver": "1.1.0",
        **extra,
    }


def sha(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()


@dataclass(frozen=True)
class Message:
    raw: bytes
    kind: str
    """``valid``, or the malformed kind (``bidi_name``, ``one_mb``...)."""
    reason: str | None = None
    """The DLQ reason it must get; None for a valid one."""
    event_id: str | None = None


@dataclass
class Replay:
    messages: list[Message] = field(default_factory=list)

    @property
    def valid(self) -> list[Message]:
        return [m for m in self.messages if m.reason is None]

    @property
    def invalid(self) -> list[Message]:
        return [m for m in self.messages if m.reason is not None]

    @property
    def event_ids(self) -> set[str]:
        return {m.event_id for m in self.valid if m.event_id is not None}

    def dead_letters(self) -> Counter[tuple[str, str]]:
        """(sha256 of the original, reason) of every invalid message: what the DLQ must hold."""
        return Counter((sha(m.raw), m.reason) for m in self.invalid if m.reason is not None)

    def reasons(self) -> Counter[str]:
        return Counter(m.reason for m in self.invalid if m.reason is not None)

    def raw(self) -> list[bytes]:
        return [m.raw for m in self.messages]

    def __len__(self) -> int:
        return len(self.messages)

    def __iter__(self) -> Iterator[Message]:
        return iter(self.messages)


def valid_message(name: str, version: str, registry: str, created: str) -> Message:
    raw = orjson.dumps(publish_doc(name, version, registry, created))
    return Message(raw, "valid", None, parse_publish(raw, MAX_EVENT_BYTES).event_id)


def random_created(rng: random.Random) -> str:
    """An RFC 3339 instant anywhere in the accepted range (1970..2299), with a random offset."""
    span = (LATEST_CREATED - EARLIEST_CREATED).total_seconds()
    instant = EARLIEST_CREATED + timedelta(seconds=rng.uniform(0, span))
    offset_min = rng.choice((0, 0, 0, 60, -300, 330, 765, -720))
    local = instant.astimezone(UTC) + timedelta(minutes=offset_min)
    local = min(max(local, EARLIEST_CREATED + timedelta(days=1)), LATEST_CREATED - timedelta(days=1))
    sign = "+" if offset_min >= 0 else "-"
    hh, mm = divmod(abs(offset_min), 60)
    suffix = "Z" if offset_min == 0 else f"{sign}{hh:02d}:{mm:02d}"
    return local.replace(tzinfo=None).isoformat(timespec="milliseconds") + suffix


def valid_messages(n: int, prefix: str, rng: random.Random) -> list[Message]:
    """``n`` distinct valid publishes: mostly unknown internal names, every 25th a look-alike of a
    popular package, every 100th the known-malicious version; dates spread over three centuries."""
    out: list[Message] = []
    for i in range(n):
        created = random_created(rng)
        if i % 100 == 50:
            name, version, registry = KNOWN_MALICIOUS
        elif i % 25 == 0:
            name, registry = SQUATS[(i // 25) % len(SQUATS)]
            version = f"1.{i}.0"
        else:
            registry = "npm" if i % 2 else "pypi"
            name, version = f"{prefix}-internal-svc-{i}", f"0.{i % 7}.{i}"
        out.append(valid_message(name, version, registry, created))
    # Edges of the accepted date range are valid too.
    if n >= 2:
        out[0] = valid_message(f"{prefix}-edge-first", "1.0.0", "npm", "1970-01-01T00:00:00Z")
        out[1] = valid_message(f"{prefix}-edge-last", "1.0.0", "pypi", "2299-12-31T23:59:59.999Z")
    return out


def _doc(tag: str, **fields: object) -> dict[str, object]:
    base = publish_doc(f"{tag}-pkg", "1.0.0", "npm", "2026-11-25T10:00:00Z", fault_tag=tag)
    for key, value in fields.items():
        if value is _DROP:
            base.pop(key, None)
        else:
            base[key] = value
    return base


_DROP = object()


def _json(tag: str, **fields: object) -> bytes:
    return orjson.dumps(_doc(tag, **fields))


def _padded(size: int, tag: str) -> bytes:
    """A publish that is valid in every way except its size (exactly ``size`` bytes)."""
    head = orjson.dumps(_doc(tag))[:-1] + b',"pad":"'
    tail = b'"}'
    return head + b"x" * (size - len(head) - len(tail)) + tail


def malformed(tag: str, *, untaggable: bool = True, big: bool = False) -> list[Message]:
    """One message of every malformed kind, tagged with ``tag`` so repeats stay distinct bytes.

    ``untaggable``: also the kinds that cannot carry a tag (empty, ``null``, ``true``): include
    them once per replay. ``big``: also 1 MB and 1 MiB messages.
    """
    t = tag.encode()
    cases: list[tuple[str, str, bytes]] = [
        # not JSON at all
        ("not_json", "not_json", b"this is not json " + t),
        ("truncated_json", "not_json", _json(tag)[:-7]),
        ("python_repr", "not_json", b"{'name': '" + t + b"', 'type': 'npm'}"),
        ("two_documents", "not_json", _json(tag) + b"\n" + _json(tag)),
        ("nan_literal", "not_json", b'{"name": NaN, "tag": "' + t + b'"}'),
        ("nul_bytes", "not_json", b"\x00\x00" + t),
        # JSON, but not an object
        ("array", "not_object", b'["' + t + b'", 1, 2]'),
        ("array_of_events", "not_object", b"[" + _json(tag) + b"]"),
        ("string", "not_object", b'"' + t + b'"'),
        ("number", "not_object", str(len(t) * 1_000_003 + sum(t)).encode()),
        # bad encoding
        ("latin1_name", "bad_encoding", _json(tag).replace(b"-pkg", b"-caf\xe9", 1)),
        ("lone_surrogate", "bad_encoding", _json(tag).replace(b"-pkg", b"-\xed\xa0\x80", 1)),
        ("utf8_bom", "bad_encoding", b"\xef\xbb\xbf" + _json(tag)),
        ("utf16", "bad_encoding", _json(tag).decode().encode("utf-16")),
        # schema violations
        ("missing_name", "schema", _json(tag, name=_DROP)),
        ("missing_version", "schema", _json(tag, version=_DROP)),
        ("missing_created", "schema", _json(tag, created_date=_DROP)),
        ("missing_type", "schema", _json(tag, type=_DROP)),
        ("name_not_string", "schema", _json(tag, name=12345)),
        ("version_not_string", "schema", _json(tag, version=1.0)),
        ("empty_name", "schema", _json(tag, name="")),
        ("unknown_registry", "schema", _json(tag, type="cargo")),
        ("name_too_long", "schema", _json(tag, name=f"{tag}-" + "a" * 300)),
        ("name_with_space", "schema", _json(tag, name=f"{tag} pkg")),
        ("npm_uppercase_scope_bad", "schema", _json(tag, name=f"@{tag}/.hidden")),
        ("pypi_bad_grammar", "schema", _json(tag, name=f"-{tag}-", type="pypi")),
        ("npm_reserved", "schema", _json(tag, name="node_modules", version=f"1.0.0-{tag}")),
        # names with invisible or reordering characters
        ("bidi_override", "schema", _json(tag, name=f"{tag}-\u202egnp")),
        ("bidi_isolate", "schema", _json(tag, name=f"{tag}-\u2067x\u2069", type="pypi")),
        ("zero_width_space", "schema", _json(tag, name=f"lo\u200bdash-{tag}")),
        ("zero_width_joiner", "schema", _json(tag, name=f"re\u200dquests-{tag}", type="pypi")),
        ("bom_in_name", "schema", _json(tag, name=f"\ufeff{tag}")),
        ("c1_control", "schema", _json(tag, name=f"{tag}-\u0085x")),
        ("c0_control", "schema", _json(tag, name=f"{tag}-\u0007x")),
        ("emoji", "schema", _json(tag, name=f"{tag}-\U0001f600")),
        ("cyrillic_lookalike", "schema", _json(tag, name=f"\u0435xpress-{tag}")),
        ("fullwidth", "schema", _json(tag, name=f"\uff45xpress-{tag}")),
        # dates out of range or not dates
        ("date_year_9999_offset", "schema", _json(tag, created_date="9999-12-31T23:59:59-01:00")),
        ("date_year_1", "schema", _json(tag, created_date="0001-01-01T00:00:00Z")),
        ("date_after_2299", "schema", _json(tag, created_date="2300-01-01T00:00:00Z")),
        ("date_before_epoch", "schema", _json(tag, created_date="1969-12-31T23:59:59Z")),
        ("date_no_timezone", "schema", _json(tag, created_date="2026-11-25T10:00:00")),
        ("date_month_13", "schema", _json(tag, created_date="2026-13-01T00:00:00Z")),
        ("date_feb_30", "schema", _json(tag, created_date="2026-02-30T00:00:00Z")),
        ("date_words", "schema", _json(tag, created_date="yesterday")),
        ("date_epoch_number", "schema", _json(tag, created_date=1764064800000)),
        # too big
        ("over_limit", "oversized", _padded(MAX_EVENT_BYTES + 1, tag)),
    ]
    if big:
        cases += [
            ("one_mb", "oversized", _padded(ONE_MB, tag)),
            ("one_mib", "oversized", _padded(ONE_MIB, tag)),
        ]
    if untaggable:
        cases += [
            ("empty", "not_json", b""),
            ("null", "not_object", b"null"),
            ("bool", "not_object", b"true"),
        ]
    return [Message(raw, kind, reason) for kind, reason, raw in cases]


def check_catalogue(messages: list[Message]) -> None:
    """The pure validator agrees with each message's expected fate (else the suite's premise is wrong)."""
    for message in messages:
        try:
            event = parse_publish(message.raw, MAX_EVENT_BYTES)
        except InvalidEventError as error:
            assert error.reason == message.reason, (message.kind, error.reason, error.detail)
            continue
        assert message.reason is None, f"{message.kind} was accepted: {event}"


def replay(seed: int, n_valid: int, prefix: str, *, rounds: int = 1, big: bool = False) -> Replay:
    """``n_valid`` valid publishes with ``rounds`` copies of the malformed catalogue, shuffled (seeded)."""
    rng = random.Random(seed)
    messages = valid_messages(n_valid, prefix, rng)
    for r in range(rounds):
        messages += malformed(f"{prefix}-r{r}", untaggable=r == 0, big=big)
    rng.shuffle(messages)
    return Replay(messages)
