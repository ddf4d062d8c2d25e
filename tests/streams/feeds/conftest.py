"""Fixtures of the poller tests: the local registries on 127.0.0.1 and their mutable state."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp.test_utils import TestServer
from fixture_feeds import Registries, make_app, seeded


@pytest.fixture
def registries() -> Registries:
    """The fixture registries' state (seeded with the module's default content); tests mutate it."""
    return seeded()


@pytest.fixture
async def feed_server(registries: Registries) -> AsyncIterator[TestServer]:
    """npm replica, npm registry and PyPI on one free port (``str(server.make_url(""))``)."""
    server = TestServer(make_app(registries), host="127.0.0.1")
    await server.start_server()
    try:
        yield server
    finally:
        await server.close()


@pytest.fixture
def base_url(feed_server: TestServer) -> str:
    return str(feed_server.make_url("")).rstrip("/")
