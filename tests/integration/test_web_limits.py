"""The worker's HTTP server against slow and oversized clients: raw sockets, a real worker.

Every check runs at once on one worker with the default limits, so a slow client that is never
timed out shows up as a check still waiting when the deadline passes.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import pytest

from tests.integration.conftest import WorkerFactory
from typostream.streams.config import Settings

HOST = "127.0.0.1"
MARGIN_S = 3.0  # scheduling slack on a shared 2-core machine, plus aiohttp's lingering time


@dataclass
class Outcome:
    closed_after_s: float | None  # None: still open when the check gave up
    received: bytes


async def _watch(reader: asyncio.StreamReader, started: float, until: float) -> Outcome:
    received = b""
    while time.monotonic() < until:
        try:
            chunk = await asyncio.wait_for(reader.read(65536), timeout=0.2)
        except TimeoutError:
            continue
        except ConnectionError:
            return Outcome(time.monotonic() - started, received)
        if not chunk:
            return Outcome(time.monotonic() - started, received)
        received += chunk
    return Outcome(None, received)


async def _trickle(port: int, head: bytes, body: bytes, give_up_s: float, every_s: float = 1.0) -> Outcome:
    """Send ``head`` at once, then ``body`` one byte every ``every_s``; see when the server closes."""
    reader, writer = await asyncio.open_connection(HOST, port)
    started = time.monotonic()
    until = started + give_up_s
    watcher = asyncio.ensure_future(_watch(reader, started, until))
    try:
        writer.write(head)
        await writer.drain()
        for byte in body:
            if watcher.done() or time.monotonic() > until:
                break
            await asyncio.sleep(every_s)
            writer.write(bytes([byte]))
            try:
                await writer.drain()
            except ConnectionError:
                break
        return await watcher
    finally:
        writer.close()


@pytest.mark.integration
async def test_slow_and_idle_clients_are_closed_within_the_limit(
    pipeline_settings: Settings, worker_factory: WorkerFactory
) -> None:
    settings = pipeline_settings
    worker_factory(settings)
    port, limit = settings.web_port, Settings().web_client_timeout_s
    give_up = limit + MARGIN_S + 2
    head_only = b"GET /metrics HTTP/1.1\r\nHost: x\r\n"
    slow_headers, silent, slow_body, idle, too_big = await asyncio.gather(
        # slowloris: the request head one byte a second, never finished
        _trickle(port, b"", head_only + b"X-Padding: " + b"a" * 200, give_up),
        # connects and sends nothing
        _trickle(port, b"", b"", give_up),
        # a complete head announcing 1000 body bytes, then one byte a second
        _trickle(
            port,
            b"POST /api/v1/scan HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 1000\r\n\r\n",
            b'{"registry": "npm", "names": ["' + b"a" * 900,
            give_up,
        ),
        # a finished request answered, then the keep-alive connection left idle
        _trickle(port, head_only + b"\r\n", b"", give_up),
        # a body over client_max_size
        _trickle(
            port,
            b"POST /api/v1/scan HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 2000000\r\n\r\n" + b" " * 2_000_000,
            b"",
            give_up,
        ),
    )
    for what, outcome in {"slow headers": slow_headers, "silent": silent, "idle keep-alive": idle}.items():
        assert outcome.closed_after_s is not None, f"{what}: still open after {give_up:.0f}s"
        assert outcome.closed_after_s <= limit + MARGIN_S, (
            f"{what}: closed after {outcome.closed_after_s:.1f}s"
        )
    assert idle.received.startswith(b"HTTP/1.1 200"), idle.received[:100]
    assert idle.closed_after_s is not None and idle.closed_after_s >= limit - 1  # idle, not cut short
    assert slow_body.closed_after_s is not None, f"slow body: still open after {give_up:.0f}s"
    assert slow_body.closed_after_s <= limit + MARGIN_S
    assert slow_body.received.startswith(b"HTTP/1.1 408"), slow_body.received[:100]
    assert too_big.received.startswith(b"HTTP/1.1 413"), too_big.received[:100]


@pytest.mark.integration
async def test_the_limit_is_a_setting(pipeline_settings: Settings, worker_factory: WorkerFactory) -> None:
    settings = pipeline_settings.replace(web_client_timeout_s=2.0)
    worker_factory(settings)
    outcome = await _trickle(settings.web_port, b"", b"GET /metrics HTTP/1.1\r\n" + b"a" * 100, 10)
    assert outcome.closed_after_s is not None and 1.5 <= outcome.closed_after_s <= 2.0 + MARGIN_S
    reader, writer = await asyncio.open_connection(HOST, settings.web_port)  # a normal client is served
    writer.write(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    response = await asyncio.wait_for(reader.read(), timeout=10)
    writer.close()
    assert response.startswith(b"HTTP/1.1 200") and b"typostream_" in response
