"""Fixtures of the poller tests: the local registries on 127.0.0.1."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp.test_utils import TestServer
from fixture_feeds import make_app


@pytest.fixture
async def feed_server() -> AsyncIterator[TestServer]:
    """npm replica, npm registry and PyPI on one free port (``str(server.make_url(""))``)."""
    server = TestServer(make_app(), host="127.0.0.1")
    await server.start_server()
    try:
        yield server
    finally:
        await server.close()
