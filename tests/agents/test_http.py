"""agents/http.py: bounded retries of retryable errors only."""

from __future__ import annotations

import pytest

from typostream.agents.adapters.http import with_backoff


class Flaky(Exception):
    pass


async def test_retries_until_success_then_returns() -> None:
    calls = []

    async def attempt() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise Flaky
        return "ok"

    assert await with_backoff(attempt, retries=3, backoff_s=0.001, retryable=Flaky) == "ok"
    assert len(calls) == 3


async def test_gives_up_after_retries_plus_one_attempts() -> None:
    calls = []

    async def attempt() -> str:
        calls.append(1)
        raise Flaky

    with pytest.raises(Flaky):
        await with_backoff(attempt, retries=2, backoff_s=0.001, retryable=Flaky)
    assert len(calls) == 3


async def test_other_errors_are_not_retried() -> None:
    calls = []

    async def attempt() -> str:
        calls.append(1)
        raise KeyError("fatal")

    with pytest.raises(KeyError):
        await with_backoff(attempt, retries=5, backoff_s=0.001, retryable=Flaky)
    assert len(calls) == 1
