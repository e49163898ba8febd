"""Keep-alive connections to one upstream origin, on aiohttp's own client protocol.

The forward leg does not go through :class:`aiohttp.ClientSession`: per request that costs
~470k instructions of Python (header loops in ``ClientRequest``, auto headers, cookie jar,
tracing signals, response objects), two thirds of a plain pass-through. What the gateway
needs from it is the hardened part: aiohttp's :class:`~aiohttp.client_proto.ResponseHandler`
protocol with its C HTTP response parser (llhttp), its read timeout and flow control. This
module keeps exactly that and pools the connections itself: at most ``limit`` open per
origin, callers beyond it wait in line, idle connections are reused newest first and
dropped after :data:`KEEPALIVE_SECONDS` or when the upstream closed them.

``ResponseHandler`` is semi-private, so aiohttp is pinned to one minor version in
pyproject.toml and ``tests/proxy/test_pool.py`` fails loudly when its shape changes.
"""

from __future__ import annotations

import asyncio
import ssl
from collections import deque
from typing import Final
from urllib.parse import urlsplit

from aiohttp.client_proto import ResponseHandler
from yarl import URL

KEEPALIVE_SECONDS: Final = 30.0
"""An idle connection older than this is closed instead of reused (the upstream may have
timed it out meanwhile; aiohttp servers keep 75 s)."""
MAX_LINE_SIZE: Final = 8190
MAX_FIELD_SIZE: Final = 8190
MAX_HEADERS: Final = 128
"""Response header limits: aiohttp's client defaults (an answer beyond them is a 502)."""


class Connection(ResponseHandler):
    """One upstream connection: aiohttp's protocol plus what the pool keeps about it."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(loop)
        self.idle_since = 0.0
        self.parses_bodies: bool | None = None
        """Whether the installed parser expects bodies (False after a HEAD); None: none yet."""

    def prepare(self, *, head: bool, read_timeout: float | None) -> None:
        """Get ready for the next answer. The parser is made once per connection (llhttp
        parses one answer after another) and again only when HEAD changes what it expects."""
        if self.parses_bodies is head or self.parses_bodies is None:
            self.set_response_params(
                skip_payload=head,
                read_until_eof=True,  # an answer with neither length nor chunks ends at close
                auto_decompress=False,
                max_line_size=MAX_LINE_SIZE,
                max_field_size=MAX_FIELD_SIZE,
                max_headers=MAX_HEADERS,
            )
            self.parses_bodies = not head
        self.read_timeout = read_timeout


class OriginPool:
    """At most *limit* connections to one ``scheme://host:port``, reused while alive."""

    def __init__(self, origin: str, limit: int, ssl_context: ssl.SSLContext | None) -> None:
        parts = urlsplit(origin)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.host_header = URL(origin).host_port_subcomponent or self.host
        """What ``Host`` says: host, and the port when it is not the scheme's default."""
        self.ssl = ssl_context if parts.scheme == "https" else None
        self.limit = limit
        self.loop = self._loop = asyncio.get_running_loop()
        self._idle: list[Connection] = []
        self._open = 0
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._closed = False

    def take_idle(self) -> Connection | None:
        """The newest idle connection still open and quiet (others are closed on the way)."""
        idle = self._idle
        now = self._loop.time()
        while idle:
            conn = idle.pop()
            # should_close: also when the upstream sent something unasked while idle.
            fresh = now - conn.idle_since < KEEPALIVE_SECONDS
            if fresh and conn.is_connected() and not conn.should_close:
                return conn
            conn.close()
            self._open -= 1
        return None

    async def acquire(self, *, fresh: bool = False) -> tuple[Connection, bool]:
        """A connection and whether it was reused; waits while *limit* are in use.
        With *fresh* an idle one is not taken (a retry after a stale one broke)."""
        while True:
            if self._closed:
                raise ConnectionError("upstream pool closed")
            if not fresh and (conn := self.take_idle()) is not None:
                return conn, True
            if self._open < self.limit:
                return await self._connect(), False
            if fresh and self._idle:
                # Make room: an idle connection gives its slot to the fresh one.
                self._idle.pop(0).close()
                self._open -= 1
                continue
            waiter = self._loop.create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            except BaseException:
                if waiter.done() and not waiter.cancelled():
                    self._wake()  # woken, then cancelled: pass the turn on
                else:
                    self._waiters.remove(waiter)
                raise

    async def _connect(self) -> Connection:
        self._open += 1
        try:
            _transport, conn = await self._loop.create_connection(
                lambda: Connection(self._loop),
                self.host,
                self.port,
                ssl=self.ssl,
                server_hostname=self.host if self.ssl is not None else None,
            )
        except BaseException:
            self._open -= 1
            self._wake()
            raise
        return conn

    def release(self, conn: Connection, *, reusable: bool) -> None:
        """Give *conn* back: kept for the next request when the answer was read completely
        and neither side asked to close, closed otherwise."""
        if reusable and not self._closed and not conn.should_close and conn.is_connected():
            conn.idle_since = self._loop.time()
            self._idle.append(conn)
        else:
            conn.close()
            self._open -= 1
        if self._waiters:
            self._wake()

    def _wake(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    def close(self) -> None:
        """Close the idle connections; those in use close when released."""
        self._closed = True
        idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()
            self._open -= 1
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_result(None)
        self._waiters.clear()
