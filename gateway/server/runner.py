"""The runner of the gateway app: aiohttp's ``AppRunner`` serving connections through
:class:`GatewayRequestHandler`, at most ``max_connections`` at a time.

At the limit a new connection makes room by closing the oldest *idle* one (connected but
not yet sent a complete request head, or kept alive between requests), as nginx reuses
keep-alive connections when it runs out: so a flood of idle or half-sent connections cannot
lock out a client that sends a request. When every connection is busy with a request, the
new one is closed at once. Either way the process never holds more sockets than the
limit, which :func:`connection_limit` keeps below the open-file limit.
"""

from __future__ import annotations

import asyncio
import resource
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger
from aiohttp.web_protocol import RequestHandler

from gateway.config.model import ClientTimeouts, GatewayConfig
from gateway.observability.logs import get_logger
from gateway.server.protocol import GatewayRequestHandler

FD_RESERVE = 64
"""File descriptors kept free beside client and upstream connections: listening sockets,
log and audit files, the JWKS and readiness clients, imports."""

BACKLOG = 128
"""Listen backlog (aiohttp's default). asyncio accepts up to this many connections per
round, and a connection reaches the limit check two loop iterations after its accept (an
evicted one frees its descriptor one iteration after that): two rounds are reserved.
Measured under a flood of idle connections: peak descriptors = limit + 2 x 128 + ~7."""

log = get_logger("gateway.server")


def connection_limit(config: GatewayConfig) -> int:
    """``server.max_connections``, lowered when the process's open-file limit could not hold
    that many client connections plus every route's upstream pool, two accept rounds
    (:data:`BACKLOG`) and :data:`FD_RESERVE`."""
    configured = config.server.max_connections
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return configured
    # One pool per upstream origin, as large as the largest pool_size of its routes.
    pools: dict[tuple[str, str], int] = {}
    for route in config.routes:
        origin = urlsplit(route.upstream)
        key = (origin.scheme, origin.netloc.lower())
        pools[key] = max(pools.get(key, 0), route.pool_size)
    upstream = sum(pools.values())
    room = max(1, soft - FD_RESERVE - 2 * BACKLOG - upstream)
    if room < configured:
        log.warning(
            "max_connections_lowered",
            configured=configured,
            effective=room,
            open_file_limit=soft,
            upstream_pools=upstream,
            hint="raise the open-file limit (ulimit -n, LimitNOFILE=) or lower route pool_size",
        )
        return room
    return configured


class GatewayServer(web.Server):
    """aiohttp's low-level server with the connection limit and the deadline handler."""

    def __init__(
        self, *args: Any, deadlines: ClientTimeouts, max_connections: int, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.deadlines = deadlines
        self.max_connections = max_connections

    def __call__(self) -> RequestHandler:
        """The protocol factory: one :class:`GatewayRequestHandler` per connection."""
        return GatewayRequestHandler(
            self, loop=self._loop, deadlines=self.deadlines, **self._kwargs
        )

    def connection_made(self, handler: RequestHandler, transport: asyncio.Transport) -> None:
        """Register the connection; above the limit, close the oldest idle one or this one."""
        super().connection_made(handler, transport)
        if len(self._connections) <= self.max_connections:
            return
        # Oldest first (dicts keep insertion order). A closed connection stays listed until
        # its task has ended: skip it, or every new connection would "close" that one.
        for other in self._connections:
            if (
                other is not handler
                and other.transport is not None
                and isinstance(other, GatewayRequestHandler)
                and other.idle
            ):
                other.force_close()
                return
        handler.force_close()


class GatewayRunner(web.AppRunner):
    """``AppRunner`` whose server is a :class:`GatewayServer`."""

    def __init__(
        self,
        app: web.Application,
        *,
        deadlines: ClientTimeouts,
        max_connections: int,
        shutdown_timeout: float,
        access_log_class: type[AbstractAccessLogger] | None = None,
    ) -> None:
        kwargs: dict[str, Any] = {"keepalive_timeout": deadlines.keepalive}
        if access_log_class is None:
            kwargs["access_log"] = None
        else:
            kwargs["access_log_class"] = access_log_class
        super().__init__(app, handle_signals=False, shutdown_timeout=shutdown_timeout, **kwargs)
        self._deadlines = deadlines
        self._max_connections = max_connections

    async def _make_server(self) -> web.Server:
        # aiohttp's own server runs the app's start-up and gathers the handler arguments
        # (access logger, keep-alive, debug); ours takes them over.
        plain = await super()._make_server()
        return GatewayServer(
            plain.request_handler,
            request_factory=plain.request_factory,
            handler_cancellation=plain.handler_cancellation,
            loop=asyncio.get_running_loop(),
            deadlines=self._deadlines,
            max_connections=self._max_connections,
            **plain._kwargs,
        )
