"""Forwarding an allowed request to the deelnemer's resource server, streaming the answer back.

One shared :class:`aiohttp.ClientSession` per upstream origin (keep-alive, bounded pool),
created on startup and closed on cleanup. The synchronous path never retries: a refused or
reset connection is ``502 BAD_GATEWAY`` at once, no answer within the route's timeouts is
``504 GATEWAY_TIMEOUT``. The upstream gets the original body bytes; its status, headers
(hop-by-hop removed) and body are copied back in chunks, so a large answer is never held in
memory. If the upstream breaks off mid-body after the status was already sent, the only
honest signal left is to abort the caller's connection.

An answer with a declared length of at most :data:`BUFFER_LIMIT` bytes (a GraphQL answer,
nearly always) is read whole before the caller gets anything: one write instead of three, and
an upstream that breaks off mid-body still gets an honest ``502`` instead of an abort.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web
from multidict import CIMultiDict
from yarl import URL

from gateway.config.model import RouteConfig
from gateway.observability.events import Observer
from gateway.proxy.headers import caller_response_headers
from gateway.refusals import BadGateway, GatewayTimeout

KEEPALIVE_SECONDS = 30.0
DEFAULT_POOL_SIZE = 100
BUFFER_LIMIT = 64 * 1024
"""Answers with a Content-Length up to this many bytes are read whole, larger ones streamed."""


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
    """``scheme://host[:port]`` of *url*, lower case: the key of a pooled session."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


class UpstreamPool:
    """The client sessions of all routes, one per upstream origin."""

    def __init__(self, observer: Observer) -> None:
        self._observer = observer
        self._limits: dict[str, int] = {}
        self._sessions: dict[str, aiohttp.ClientSession] = {}
        self._started = False

    def register(self, route: RouteConfig) -> Upstream:
        """The upstream of *route*; its session is opened by :meth:`start`."""
        origin = origin_of(route.upstream)
        self._limits[origin] = max(self._limits.get(origin, 0), route.pool_size)
        return Upstream(self, origin, route, self._observer)

    async def start(self) -> None:
        """Open one keep-alive session per origin."""
        self._started = True
        for origin in self._limits:
            self._open(origin)

    def _open(self, origin: str) -> aiohttp.ClientSession:
        session = self._sessions.get(origin)
        if session is not None:
            return session
        limit = self._limits.get(origin, DEFAULT_POOL_SIZE)
        connector = aiohttp.TCPConnector(
            limit=limit, limit_per_host=limit, keepalive_timeout=KEEPALIVE_SECONDS
        )
        session = self._sessions[origin] = aiohttp.ClientSession(
            connector=connector,
            # Bytes pass through unchanged: no decompression, no cookies kept between
            # callers, no default headers the caller did not send.
            auto_decompress=False,
            cookie_jar=aiohttp.DummyCookieJar(),
            # No skip_auto_headers: aiohttp rebuilds that set on every request. The
            # header builder supplies what aiohttp would otherwise invent instead
            # (see gateway.proxy.headers.upstream_request_headers).
        )
        return session

    async def close(self) -> None:
        """Close every session (app cleanup)."""
        self._started = False
        sessions, self._sessions = self._sessions, {}
        for session in sessions.values():
            await session.close()

    def session(self, origin: str) -> aiohttp.ClientSession:
        """The session for *origin*; only valid between start and close. An origin
        registered after start (an endpoint a reloaded adresboek names) gets its session on
        first use."""
        session = self._sessions.get(origin)
        if session is None:
            if not self._started:
                raise BadGateway("Upstream client not started", reason="not_started")
            session = self._open(origin)
        return session


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
        t = route.timeouts
        # A read timeout no shorter than the total one can never fire first: leave it out,
        # which spares a timer reset on every chunk received.
        self.timeout = aiohttp.ClientTimeout(
            total=t.total, connect=t.connect, sock_read=t.read if t.read < t.total else None
        )

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

    def _fail(self, kind: str) -> None:
        self._observer.upstream_error(self.route, kind)

    async def forward(
        self,
        request: web.Request,
        body: bytes,
        headers: CIMultiDict[str],
        response_headers: Mapping[str, str],
        *,
        whole: bool = False,
        method: str = "POST",
        target: str | None = None,
    ) -> Forwarded:
        """POST *body* with *headers* upstream and pass the answer to the caller.

        With *whole* the answer is read completely whatever its size (the gateway needs
        it: a subscription the bronhouder confirmed), and :attr:`Forwarded.body` holds it.
        A REST route sends the caller's *method* to *target* instead: the upstream's origin
        with the request path and query exactly as received (``encoded``: not requoted).

        Raises :class:`BadGateway` / :class:`GatewayTimeout` while nothing has been sent to
        the caller yet; afterwards failures abort the caller's connection. (One coroutine
        on purpose: every await level is paid again at each suspension of the request.)
        """
        started = time.perf_counter()
        session = self._pool.session(self._origin)
        try:
            upstream = await session.request(
                method,
                self.url if target is None else URL(self._origin + target, encoded=True),
                data=body if body or target is None else None,
                headers=headers,
                timeout=self.timeout,
                allow_redirects=False,
            )
        except (TimeoutError, aiohttp.ServerTimeoutError):
            self._fail("timeout")
            raise GatewayTimeout(reason="upstream_timeout") from None
        except aiohttp.ClientConnectorError:
            self._fail("refused")
            raise BadGateway(reason="upstream_refused") from None
        except aiohttp.ClientError:
            self._fail("reset")
            raise BadGateway(reason="upstream_reset") from None
        try:
            status = upstream.status
            out_headers = caller_response_headers(upstream.headers, response_headers)
            length = upstream.content_length
            if whole or (length is not None and length <= BUFFER_LIMIT):
                try:
                    payload = await upstream.read()
                except (TimeoutError, aiohttp.ClientError) as exc:
                    kind = "timeout" if isinstance(exc, TimeoutError) else "reset"
                    self._fail(kind)
                    if kind == "timeout":
                        raise GatewayTimeout(reason="upstream_timeout") from None
                    raise BadGateway(reason="upstream_reset") from None
                answer = web.Response(
                    body=payload, status=status, reason=upstream.reason, headers=out_headers
                )
                return Forwarded(answer, status, _ms(started), body=payload)
            response = web.StreamResponse(
                status=status, reason=upstream.reason, headers=out_headers
            )
            if length is not None:
                response.content_length = length
            try:
                await response.prepare(request)
            except ConnectionError:
                return Forwarded(response, status, _ms(started), error="caller_closed")
            while True:
                try:
                    chunk = await upstream.content.readany()
                except (TimeoutError, aiohttp.ClientError) as exc:
                    kind = "timeout" if isinstance(exc, TimeoutError) else "reset"
                    self._fail(kind)
                    # The status line is gone already: abort so the caller sees a broken
                    # response instead of a short body that looks complete.
                    if request.transport is not None:
                        request.transport.abort()
                    return Forwarded(response, status, _ms(started), error=kind)
                if not chunk:
                    break
                try:
                    await response.write(chunk)
                except ConnectionError:
                    # The caller went away mid-answer; nothing left to tell it.
                    return Forwarded(response, status, _ms(started), error="caller_closed")
            await response.write_eof()
            return Forwarded(response, status, _ms(started))
        finally:
            upstream.release()


def _ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000.0
