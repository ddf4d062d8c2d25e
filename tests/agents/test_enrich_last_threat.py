"""``enrich.last_threat``: the riskiest name threat detect hands on in an analysed record's header."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import orjson
import pytest

from typostream.agents.domain.context import NameEvidence
from typostream.agents.stream.detect import LAST_THREAT_HEADER
from typostream.agents.stream.enrich import last_threat

THREAT = {"id": "0" * 32, "type": "typosquat", "target": "lodash", "severity": "high", "timestamp": "t"}


def event(headers: Any) -> Any:
    return SimpleNamespace(message=SimpleNamespace(headers=headers, offset=7))


@pytest.mark.parametrize(
    "headers",
    [
        [(LAST_THREAT_HEADER, orjson.dumps(THREAT))],  # aiokafka: a list of pairs
        {LAST_THREAT_HEADER: orjson.dumps(THREAT)},  # a mapping
        [("other", b"x"), (LAST_THREAT_HEADER, orjson.dumps(THREAT))],
    ],
)
def test_the_header_is_found(headers: Any) -> None:
    assert last_threat(event(headers)) == THREAT
    assert NameEvidence.from_last_threat(last_threat(event(headers))) == NameEvidence(
        "typosquat", "lodash", "high"
    )


@pytest.mark.parametrize("headers", [None, [], [("other", b"x")], [(LAST_THREAT_HEADER, b"{not json")],
                                     [(LAST_THREAT_HEADER, b"[1, 2]")]])  # fmt: skip
def test_no_or_a_damaged_header_is_no_evidence(headers: Any) -> None:
    assert last_threat(event(headers)) is None
