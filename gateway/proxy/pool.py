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

from aiohttp import ServerTimeoutError
from aiohttp.client_proto import ResponseHandler
from aiohttp.streams import StreamReader
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
        self.deadline: float | None = None
        """Loop time by which the answer in progress must be complete; None while idle."""
        self.answer: StreamReader | None = None
        """The body of the answer in progress, once its head was read."""
        self._deadline_timer: asyncio.TimerHandle | None = None
        self._deadline_at = 0.0

    # -- the total timeout: one lazy timer per connection ---------------------------------
    # A timer per request (``call_at`` then ``cancel``) costs a handle, a heap push and a
    # cancelled entry the loop pops later, on every request, for a deadline that nearly
    # never passes. Here a request only notes its deadline; the connection's one timer
    # fires at the earliest deadline it was armed for, and when the request then in
    # progress has a later one, is set again for that one (with the default 30 s, once
    # per 30 s of a busy connection instead of once per request).

    def set_deadline(self, deadline: float) -> None:
        """The answer now awaited must be complete by *deadline* (loop time)."""
        self.deadline = deadline
        self.answer = None
        timer = self._deadline_timer
        if timer is None:
            self._deadline_timer = self._loop.call_at(deadline, self._deadline_reached)
            self._deadline_at = deadline
        elif deadline < self._deadline_at:  # a route with a shorter total on this origin
            timer.cancel()
            self._deadline_timer = self._loop.call_at(deadline, self._deadline_reached)
            self._deadline_at = deadline

    def _deadline_reached(self) -> None:
        self._deadline_timer = None
        deadline = self.deadline
        if deadline is None:  # idle: the timer stays off until the next request
            return
        if self._loop.time() < deadline:  # a later request's deadline: wait for that
            self._deadline_timer = self._loop.call_at(deadline, self._deadline_reached)
            self._deadline_at = deadline
            return
        self.deadline = None
        exc = ServerTimeoutError("Upstream total timeout")
        self.set_exception(exc)  # a pending read of the answer's head fails
        if self.answer is not None:
            self.answer.set_exception(exc)  # and so does one of its body

    def resume_reading(self, resume_parser: bool = True) -> None:
        """Resume only what flow control paused. aiohttp's stream reader calls this after
        every chunk it hands out and at every answer's end, and the protocol then parses
        an empty chunk and asks the transport to resume, for nothing when it never paused."""
        if self._reading_paused:
            super().resume_reading(resume_parser)

    def connection_lost(self, exc: BaseException | None) -> None:
        """As aiohttp's, and the deadline timer goes with the connection."""
        if self._deadline_timer is not None:
            self._deadline_timer.cancel()
            self._deadline_timer = None
        super().connection_lost(exc)

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

    def take_idle(self, now: float) -> Connection | None:
        """The newest idle connection still open and quiet at loop time *now* (others are
        closed on the way)."""
        idle = self._idle
        while idle:
            conn = idle.pop()
            # should_close: also when the upstream closed it or sent something unasked
            # while idle; is_connected: a close seen but not yet reported to the protocol.
            if (
                now - conn.idle_since < KEEPALIVE_SECONDS
                and not conn.should_close
                and conn.is_connected()
            ):
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
            if not fresh and (conn := self.take_idle(self._loop.time())) is not None:
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
        conn.deadline = None
        # A connection whose close is not yet reported passes here; take_idle drops it.
        if reusable and not conn.should_close and not self._closed:
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
