"""A local alert receiver for tests: an aiohttp server on 127.0.0.1 that records every request.

Answers are scripted: a default answer (200 ``ok``, as Slack answers), per-path answers
(``answer_path("/gone", 404)``), and a queue of one-off answers taken by the next requests
(``answer_next(500, times=2)``, ``answer_next(429, headers={"Retry-After": "1"})``). ``down()``
closes the listening socket (clients get "connection refused", a real outage) and ``up()``
listens again on the same port.

``Receiver`` runs in the caller's event loop (async tests); ``ThreadedReceiver`` runs one in a
background thread for sync tests that drive subprocesses (workers, ``alerts run``).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

import orjson
from aiohttp import web

from typostream.streams.stack.processes import free_port

T = TypeVar("T")


@dataclass(frozen=True)
class Answer:
    status: int = 200
    body: str = "ok"
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    status: int
    """What the receiver answered."""
    at: float

    @property
    def json(self) -> Any:
        return orjson.loads(self.body)

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


class Receiver:
    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.default = Answer()
        self.by_path: dict[str, Answer] = {}
        self._next: deque[Answer] = deque()
        self._requests: list[Received] = []
        self._lock = threading.Lock()
        self._runner: web.AppRunner | None = None
        self._site: web.TCPSite | None = None

    # --- control ----------------------------------------------------------------------------
    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def answer_path(
        self, path: str, status: int, body: str = "", headers: dict[str, str] | None = None
    ) -> None:
        self.by_path[path] = Answer(status, body, headers or {})

    def set_default(self, status: int, body: str = "", headers: dict[str, str] | None = None) -> None:
        """What every request gets unless a path or queued answer says otherwise (200 ``ok`` at first)."""
        self.default = Answer(status, body or ("ok" if status == 200 else ""), headers or {})

    def answer_next(
        self, status: int, *, times: int = 1, body: str = "", headers: dict[str, str] | None = None
    ) -> None:
        for _ in range(times):
            self._next.append(Answer(status, body, headers or {}))

    def requests(self, path: str | None = None) -> list[Received]:
        with self._lock:
            return [r for r in self._requests if path is None or r.path == path]

    def delivered(self, path: str | None = None) -> list[Received]:
        """Requests that got a 2xx: what a real receiver would have accepted."""
        return [r for r in self.requests(path) if r.ok]

    # --- server -----------------------------------------------------------------------------
    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        answer = self.by_path.get(request.path) or (self._next.popleft() if self._next else self.default)
        with self._lock:
            self._requests.append(
                Received(request.path, dict(request.headers), body, answer.status, time.monotonic())
            )
        return web.Response(status=answer.status, text=answer.body, headers=answer.headers)

    async def start(self) -> Receiver:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await self.up()
        return self

    async def up(self) -> None:
        assert self._runner is not None
        if self._site is None:
            self._site = web.TCPSite(self._runner, "127.0.0.1", self.port, reuse_address=True)
            await self._site.start()

    async def down(self) -> None:
        """Stop listening: new connections are refused until ``up()``."""
        if self._site is not None:
            await self._site.stop()
            self._site = None

    async def stop(self) -> None:
        await self.down()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None


class ThreadedReceiver:
    """A :class:`Receiver` in its own thread and loop; the control methods are synchronous."""

    def __init__(self) -> None:
        self.receiver = Receiver()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="alert-receiver", daemon=True)

    def _call(self, make: Callable[[], Coroutine[Any, Any, T]]) -> T:
        return asyncio.run_coroutine_threadsafe(make(), self._loop).result(timeout=10)

    def start(self) -> ThreadedReceiver:
        self._thread.start()
        self._call(self.receiver.start)
        return self

    def stop(self) -> None:
        self._call(self.receiver.stop)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    def up(self) -> None:
        self._call(self.receiver.up)

    def down(self) -> None:
        self._call(self.receiver.down)

    def __getattr__(self, name: str) -> Any:  # url, set_default, answer_*, requests, delivered
        return getattr(self.receiver, name)

    def wait_for(self, done: Callable[[Receiver], bool], timeout_s: float = 60.0, what: str = "") -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if done(self.receiver):
                return
            time.sleep(0.1)
        raise AssertionError(f"receiver: timed out waiting for {what}; got {len(self.requests())} request(s)")


@contextmanager
def threaded_receiver() -> Iterator[ThreadedReceiver]:
    receiver = ThreadedReceiver().start()
    try:
        yield receiver
    finally:
        receiver.stop()
