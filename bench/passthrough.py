"""The baselines: pass-through proxies without token check, GraphQL or policy.

    python bench/passthrough.py PORT UPSTREAM_URL [--client session|gateway]

``session`` (the default): a plain aiohttp proxy with one shared ClientSession, what any
aiohttp proxy costs, served by ``web.run_app``; the gateway's throughput is reported as a
ratio against it, measured in the same run. ``gateway``: the same proxy on the gateway's own
serving path and forward leg: served by its runner (``gateway.server``: the client-deadline
protocol and connection limit, ``server`` defaults) with the heap settled as ``serve`` does,
forwarding with ``gateway.proxy`` (the header rules and the pooled upstream connection). So
the gateway minus this run is the PEP's own work per request, nothing of the server layer.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
from aiohttp import web

SESSION: web.AppKey[aiohttp.ClientSession] = web.AppKey("session", aiohttp.ClientSession)


def session_app(upstream: str) -> web.Application:
    """The plain aiohttp pass-through: one ClientSession, the answer streamed back."""

    async def session_ctx(app: web.Application) -> AsyncIterator[None]:
        app[SESSION] = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=100), auto_decompress=False
        )
        yield
        await app[SESSION].close()

    async def proxy(request: web.Request) -> web.StreamResponse:
        body = await request.read()
        headers = {"Content-Type": request.headers.get("Content-Type", "application/json")}
        async with request.app[SESSION].post(upstream, data=body, headers=headers) as up:
            response = web.StreamResponse(status=up.status)
            response.content_type = up.content_type
            if up.content_length is not None:
                response.content_length = up.content_length
            await response.prepare(request)
            async for chunk in up.content.iter_any():
                await response.write(chunk)
            await response.write_eof()
            return response

    app = web.Application()
    app.cleanup_ctx.append(session_ctx)
    app.router.add_post("/{tail:.*}", proxy)
    return app


def gateway_client_app(upstream: str) -> web.Application:
    """The pass-through on the gateway's forward leg: its header rules, its upstream pool."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's gateway
    from gateway.config.model import RouteConfig
    from gateway.observability.events import NullObserver
    from gateway.proxy import UpstreamPool, upstream_request_headers

    route = RouteConfig.model_validate(
        {
            "path": "/passthrough",
            "upstream": upstream,
            "deelnemer": {"id_type": "UZOVI", "id": "5151", "kind": "zorgkantoor"},
            "policies": ["policies/iwlz"],
        }
    )
    pool = UpstreamPool(NullObserver())
    forwarder = pool.register(route)

    async def pool_ctx(app: web.Application) -> AsyncIterator[None]:
        await pool.start()
        yield
        await pool.close()

    async def proxy(request: web.Request) -> web.StreamResponse:
        body = await request.read()
        headers = upstream_request_headers(
            request.headers,
            keep_authorization=False,
            peer=request.remote,
            scheme=request.scheme,
            host=request.host,
        )
        forwarded = await forwarder.forward(request, body, headers, {})
        return forwarded.response

    app = web.Application()
    app.cleanup_ctx.append(pool_ctx)
    app.router.add_post("/{tail:.*}", proxy)
    return app


async def serve_as_the_gateway(app: web.Application, port: int) -> None:
    """Serve *app* the way ``nid-gateway serve`` serves the gateway, until killed."""
    from gateway.config.model import ServerConfig
    from gateway.server.runner import GatewayRunner
    from gateway.serving.lifecycle import settle_heap

    server = ServerConfig()
    runner = GatewayRunner(
        app,
        deadlines=server.timeouts,
        max_connections=server.max_connections,
        shutdown_timeout=server.shutdown_grace_seconds,
    )
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    settle_heap()
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("port", type=int)
    parser.add_argument("upstream")
    parser.add_argument("--client", choices=("session", "gateway"), default="session")
    args = parser.parse_args()
    if args.client == "session":
        app = session_app(args.upstream)
        web.run_app(app, host="127.0.0.1", port=args.port, print=None, access_log=None)
    else:
        app = gateway_client_app(args.upstream)
        asyncio.run(serve_as_the_gateway(app, args.port))


if __name__ == "__main__":
    main()
