"""Forwarding an allowed request to the deelnemer's resource server, streaming the answer back.

One connection pool per upstream origin (:mod:`gateway.proxy.pool`: aiohttp's own client
protocol and C parser, without ``ClientSession``), opened on startup and closed on cleanup.
The request goes out as one prebuilt byte string: request line, ``Host``, the headers
:func:`gateway.proxy.headers.upstream_request_headers` chose, ``Content-Length``, body.

The synchronous path never retries a request the upstream may have acted on: a refused
connection or one reset before the answer is ``502 BAD_GATEWAY`` at once, no answer within
the route's timeouts is ``504 GATEWAY_TIMEOUT``. The one retry is the one HTTP allows
(RFC 9112 section 9.3.1): an idempotent request (GET, HEAD, PUT, DELETE, OPTIONS, TRACE) on a
reused keep-alive connection that the upstream closed before answering is sent once more on
a new connection. The upstream's status, headers (hop-by-hop removed) and body are copied
back in chunks, so a large answer is never held in memory. If the upstream breaks off
mid-body after the status was already sent, the only honest signal left is to abort the
caller's connection. Informational answers (1xx) are skipped; HEAD, 204 and 304 have no body.

An answer with a declared length of at most :data:`BUFFER_LIMIT` bytes (a GraphQL answer,
nearly always) is read whole before the caller gets anything: one write instead of three, and
an upstream that breaks off mid-body still gets an honest ``502`` instead of an abort.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from aiohttp import ClientError, hdrs, web
from aiohttp.client_exceptions import ClientOSError, ServerDisconnectedError
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.http_parser import RawResponseMessage
from aiohttp.streams import StreamReader

from gateway.config.model import RouteConfig
from gateway.observability.events import Observer
from gateway.proxy.headers import UpstreamHeaders, caller_response_headers
from gateway.proxy.pool import KEEPALIVE_SECONDS, Connection, OriginPool
from gateway.refusals import BadGateway, GatewayTimeout

__all__ = ["BUFFER_LIMIT", "DEFAULT_POOL_SIZE", "KEEPALIVE_SECONDS", "Forwarded", "Upstream"]

DEFAULT_POOL_SIZE = 100
BUFFER_LIMIT = 64 * 1024
"""Answers with a Content-Length up to this many bytes are read whole, larger ones streamed."""
IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"})
_WITH_LENGTH = frozenset({"POST", "PUT", "PATCH"})
"""Methods that say ``Content-Length: 0`` when they carry no body (as aiohttp's client did)."""
_BROKEN = (ServerDisconnectedError, ClientOSError)
"""What reading the answer raises when the connection broke before any answer came."""


@dataclass(slots=True)
class Forwarded:
    """The outcome of one forward: the response sent to the caller and upstream timing."""

    response: web.StreamResponse
    status: int
    upstream_ms: float
    error: str | None = None
    """``reset``/``timeout`` when the upstream broke off mid-body (caller connection aborted),
    ``caller_closed`` when the caller went away."""
    body: bytes | None = None
    """The whole answer when it was read before answering (small, or ``whole=True``)."""


def origin_of(url: str) -> str:
    """``scheme://host[:port]`` of *url*, lower case: the key of a pooled origin."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


class UpstreamPool:
    """The connection pools of all routes, one per upstream origin."""

    def __init__(self, observer: Observer, *, ssl_context: ssl.SSLContext | None = None) -> None:
        self._observer = observer
        self._limits: dict[str, int] = {}
        self._origins: dict[str, OriginPool] = {}
        self._ssl = ssl_context
        """TLS to https upstreams: the system's trust store unless given (tests: a test CA)."""
        self._started = False

    def register(self, route: RouteConfig) -> Upstream:
        """The upstream of *route*; its pool is opened by :meth:`start`."""
        origin = origin_of(route.upstream)
        self._limits[origin] = max(self._limits.get(origin, 0), route.pool_size)
        return Upstream(self, origin, route, self._observer)

    async def start(self) -> None:
        """Open one pool per origin (connections are made on first use)."""
        self._started = True
        for origin in self._limits:
            self._open(origin)

    def _open(self, origin: str) -> OriginPool:
        pool = self._origins.get(origin)
        if pool is None:
            if self._ssl is None and origin.startswith("https:"):
                self._ssl = ssl.create_default_context()
            limit = self._limits.get(origin, DEFAULT_POOL_SIZE)
            pool = self._origins[origin] = OriginPool(origin, limit, self._ssl)
        return pool

    async def close(self) -> None:
        """Close every pool (app cleanup)."""
        self._started = False
        origins, self._origins = self._origins, {}
        for pool in origins.values():
            pool.close()

    def origin(self, origin: str) -> OriginPool:
        """The pool for *origin*; only valid between start and close. An origin registered
        after start (an endpoint a reloaded adresboek names) gets its pool on first use."""
        pool = self._origins.get(origin)
        if pool is None:
            if not self._started:
                raise BadGateway("Upstream client not started", reason="not_started")
            pool = self._open(origin)
        return pool

    async def fetch(
        self, origin: str, target: str, headers: Mapping[str, str], *, timeout: float = 10.0
    ) -> tuple[int, bytes]:
        """``GET`` *target* at *origin*: (status, body). For the gateway's own questions to
        an upstream (a register lookup); failures raise (OSError, ClientError, TimeoutError)."""
        pool = self.origin(origin)
        head = request_head("GET", target, pool.host_header, headers, None)
        async with asyncio.timeout(timeout):
            for attempt in (0, 1):
                conn, reused = await pool.acquire(fresh=attempt == 1)
                ok = False
                try:
                    conn.prepare(head=False, read_timeout=None)
                    conn.transport.write(head)  # type: ignore[union-attr]
                    message, payload = await _answer(conn)
                    body = await payload.read()
                    ok = True
                    return message.code, body
                except _BROKEN:
                    if attempt or not reused:
                        raise
                finally:
                    pool.release(conn, reusable=ok)
        raise AssertionError("unreachable")


def request_head(
    method: str, target: str, host: str, headers: Mapping[str, str], length: int | None
) -> bytes:
    """Request line and headers as sent: built once, in one join (no per-header writes).

    Values come from aiohttp's request parser, the gateway's own trace ids and the compact
    claims JSON, none of which can hold CR or LF; checked anyway, on the header lines
    before they are joined with CRLF (two ``in`` searches that stop at the first hit).
    :class:`UpstreamHeaders` are lines already; other mappings are joined here, with
    ``": ".join`` over the pairs, not an f-string: header names are ``istr``, which an
    f-string formats through ``__format__`` one by one.
    """
    if isinstance(headers, UpstreamHeaders):
        lines = headers.lines
    else:
        lines = list(map(": ".join, headers.items()))
    unbroken = "".join(lines)
    if "\n" in unbroken or "\r" in unbroken:
        raise BadGateway("Header value holds a line break", reason="bad_header")
    text = "\r\n".join(lines) + "\r\n" if lines else ""
    length_line = "" if length is None else f"Content-Length: {length}\r\n"
    head = f"{method} {target} HTTP/1.1\r\nHost: {host}\r\n{text}{length_line}\r\n"
    # aiohttp's parser decoded the caller's bytes as UTF-8 with surrogateescape: the same
    # bytes go out again, whatever their encoding was.
    return head.encode("utf-8", "surrogateescape")


async def _answer(conn: Connection) -> tuple[RawResponseMessage, StreamReader]:
    """The final answer on *conn*: informational ones (100 Continue, 103) are skipped."""
    while True:
        message, payload = await conn.read()
        if message.code >= 200:
            return message, payload
        if message.code == 101:  # never asked for: Upgrade is hop-by-hop, dropped
            raise HttpProcessingError(message="unrequested protocol switch")


class Upstream:
    """The resource server behind one route."""

    def __init__(
        self, pool: UpstreamPool, origin: str, route: RouteConfig, observer: Observer
    ) -> None:
        self._pool = pool
        self._origin = origin
        self._observer = observer
        self.route = route.path
        self.url = route.upstream
        parts = urlsplit(route.upstream)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        t = route.timeouts
        self._connect = min(t.connect, t.total)
        self._total = t.total
        # A read timeout no shorter than the total one can never fire first: leave it out,
        # which spares a timer reset on every chunk received.
        self._read = t.read if t.read < t.total else None

    async def reachable(self) -> tuple[bool, dict[str, object]]:
        """Readiness: can a TCP connection be opened to the upstream?"""
        try:
            _reader, writer = await asyncio.wait_for(
                asyncio.open_connection(self.host, self.port), timeout=2.0
            )
        except (OSError, TimeoutError) as exc:
            return False, {"url": self.url, "error": type(exc).__name__}
        writer.close()
        return True, {"url": self.url}

    def _fail(self, kind: str) -> Any:
        """Count the failure; the refusal to raise while the caller has not been answered."""
        self._observer.upstream_error(self.route, kind)
        if kind == "timeout":
            return GatewayTimeout(reason="upstream_timeout")
        return BadGateway(reason=f"upstream_{kind}")

    async def forward(
        self,
        request: web.Request,
        body: bytes,
        headers: Mapping[str, str],
        response_headers: Mapping[str, str],
        *,
        whole: bool = False,
        method: str = "POST",
        target: str | None = None,
    ) -> Forwarded:
        """POST *body* with *headers* upstream and pass the answer to the caller.

        With *whole* the answer is read completely whatever its size (the gateway needs
        it: a subscription the bronhouder confirmed), and :attr:`Forwarded.body` holds it.
        A REST route sends the caller's *method* to *target* instead: the request path and
        query exactly as received.

        Raises :class:`BadGateway` / :class:`GatewayTimeout` while nothing has been sent to
        the caller yet; afterwards failures abort the caller's connection. (One coroutine
        on purpose: every await level is paid again at each suspension of the request.)
        """
        started = time.perf_counter()
        pool = self._pool.origin(self._origin)
        length = len(body) if body or method in _WITH_LENGTH else None
        head = request_head(
            method, self.target if target is None else target, pool.host_header, headers, length
        )
        data = head + body if body else head
        loop = pool.loop
        now = loop.time()
        deadline = now + self._total  # the route's total timeout (see Connection.set_deadline)
        conn: Connection | None = None
        try:
            for attempt in (0, 1):
                conn = pool.take_idle(now) if attempt == 0 else None
                reused = conn is not None
                if conn is None:
                    try:
                        async with asyncio.timeout_at(min(loop.time() + self._connect, deadline)):
                            conn, reused = await pool.acquire(fresh=attempt == 1)
                    except TimeoutError:
                        raise self._fail("timeout") from None
                    except OSError:
                        raise self._fail("refused") from None
                conn.set_deadline(deadline)
                conn.prepare(head=method == "HEAD", read_timeout=self._read)
                conn.transport.write(data)  # type: ignore[union-attr]
                if self._read is not None:
                    conn.start_timeout()
                try:
                    # The final answer; informational ones (100 Continue, 103) are skipped.
                    # (Inline, not _answer(): one coroutine less per request.)
                    message, payload = await conn.read()
                    while message.code < 200:
                        if message.code == 101:  # never asked for: Upgrade is hop-by-hop
                            raise HttpProcessingError(message="unrequested protocol switch")
                        message, payload = await conn.read()
                except _BROKEN:
                    pool.release(conn, reusable=False)
                    conn = None
                    if attempt == 0 and reused and method in IDEMPOTENT:
                        continue  # a stale keep-alive connection: RFC 9112 allows one retry
                    raise self._fail("reset") from None
                except TimeoutError:
                    raise self._fail("timeout") from None
                except (ClientError, HttpProcessingError):
                    raise self._fail("reset") from None
                break
            else:  # pragma: no cover - the loop always breaks, raises or continues once
                raise self._fail("reset")
            conn.answer = payload
            status = message.code
            out_headers = caller_response_headers(message.headers, response_headers)
            declared = message.headers.get(hdrs.CONTENT_LENGTH)  # istr: no conversion per call
            length = int(declared) if declared is not None and declared.isdigit() else None
            if whole or (length is not None and length <= BUFFER_LIMIT):
                try:
                    # Nearly always the whole body came with the head: take it as it is,
                    # without read()'s coroutines and future.
                    answer = payload.read_nowait() if payload.is_eof() else await payload.read()
                except TimeoutError:
                    raise self._fail("timeout") from None
                except ClientError:
                    raise self._fail("reset") from None
                pool.release(conn, reusable=True)
                conn = None
                response = web.Response(
                    body=answer, status=status, reason=message.reason, headers=out_headers
                )
                # (_ms inline: the path of nearly every request)
                upstream_ms = (time.perf_counter() - started) * 1000.0
                return Forwarded(response, status, upstream_ms, body=answer)
            stream = web.StreamResponse(status=status, reason=message.reason, headers=out_headers)
            if length is not None:
                stream.content_length = length
            try:
                await stream.prepare(request)
            except ConnectionError:
                return Forwarded(stream, status, _ms(started), error="caller_closed")
            while True:
                try:
                    chunk = await payload.readany()
                except (TimeoutError, ClientError) as exc:
                    kind = "timeout" if isinstance(exc, TimeoutError) else "reset"
                    self._fail(kind)
                    # The status line is gone already: abort so the caller sees a broken
                    # response instead of a short body that looks complete.
                    if request.transport is not None:
                        request.transport.abort()
                    return Forwarded(stream, status, _ms(started), error=kind)
                if not chunk:
                    break
                try:
                    await stream.write(chunk)
                except ConnectionError:
                    # The caller went away mid-answer; nothing left to tell it.
                    return Forwarded(stream, status, _ms(started), error="caller_closed")
            await stream.write_eof()
            pool.release(conn, reusable=True)
            conn = None
            return Forwarded(stream, status, _ms(started))
        finally:
            if conn is not None:
                pool.release(conn, reusable=False)


def _ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000.0
