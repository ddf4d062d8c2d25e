"""Fixtures of the enrichment tests: the local fixture registry and a unique Redis key prefix."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from aiohttp.test_utils import TestServer
from fixture_registry import make_app


@pytest.fixture
async def registry_server() -> AsyncIterator[TestServer]:
    """The fixture registry on a free 127.0.0.1 port (``server.make_url("")`` is its base URL)."""
    server = TestServer(make_app(), host="127.0.0.1")
    await server.start_server()
    try:
        yield server
    finally:
        await server.close()


@pytest.fixture
def key_prefix() -> str:
    """A Redis key prefix no other test uses."""
    return f"typostream-test:{uuid.uuid4().hex[:12]}:"
