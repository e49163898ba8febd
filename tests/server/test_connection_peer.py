"""Each connection's own peer and scheme are what the upstream gets in ``X-Forwarded-For``
and ``X-Forwarded-Proto`` (the header lines cache keys on them): the gateway's own server
(its runner, as ``serve`` starts it), two clients at different addresses on kept-alive
connections, plain and TLS."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
import pytest
import trustme
from aiohttp import web
from aiohttp.test_utils import unused_port

from gateway.app import create_app
from gateway.appkeys import KEYSTORE
from gateway.authserver.tokens import issue_token
from gateway.server.runner import GatewayServer
from gateway.serving.lifecycle import make_runner
from tests.fixtures.gateway import (
    NOTIFICATIE_5151,
    PUBLIC_URL,
    ZK_5151,
    RecordingObserver,
    RecordingUpstream,
    gateway_yaml,
    seed_notification,
    write_config,
)


@asynccontextmanager
async def serving(
    tmp_path: Path, upstream: RecordingUpstream, ssl_context: ssl.SSLContext | None
) -> AsyncIterator[tuple[str, str]]:
    """(base URL, bearer token) of the gateway served by its own runner."""
    config = write_config(
        tmp_path, gateway_yaml(upstream.url, f"http://127.0.0.1:{unused_port()}/graphql")
    )
    app = await create_app(config, observer=RecordingObserver())
    runner = make_runner(app, config)
    await runner.setup()
    assert isinstance(runner.server, GatewayServer)  # the handler under test
    port = unused_port()
    await web.TCPSite(runner, "127.0.0.1", port, ssl_context=ssl_context).start()
    token = issue_token(config, app[KEYSTORE], "ciz", [NOTIFICATIE_5151], PUBLIC_URL + ZK_5151)
    scheme = "https" if ssl_context else "http"
    try:
        yield f"{scheme}://127.0.0.1:{port}", token
    finally:
        await runner.cleanup()


async def forwarded_for(
    session: aiohttp.ClientSession, base: str, token: str, upstream: RecordingUpstream
) -> tuple[str, str]:
    """(X-Forwarded-For, X-Forwarded-Proto) the upstream got for one request."""
    response = await session.post(
        base + ZK_5151, json=seed_notification(), headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status == 200, await response.text()
    headers = upstream.received[-1].headers
    return headers["X-Forwarded-For"], headers["X-Forwarded-Proto"]


@pytest.fixture(scope="module")
def tls() -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """(server, client) contexts: a certificate for 127.0.0.1 from a fresh test CA."""
    ca = trustme.CA()
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server)
    client = ssl.create_default_context()
    ca.configure_trust(client)
    return server, client


@pytest.mark.parametrize("use_tls", [False, True], ids=["plain", "tls"])
async def test_each_connection_forwards_its_own_peer_and_scheme(
    tmp_path: Path,
    upstream: RecordingUpstream,
    tls: tuple[ssl.SSLContext, ssl.SSLContext],
    use_tls: bool,
) -> None:
    server_ctx, client_ctx = tls if use_tls else (None, None)
    scheme = "https" if use_tls else "http"
    async with (
        serving(tmp_path, upstream, server_ctx) as (base, token),
        aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=client_ctx or False)) as one,
        aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(ssl=client_ctx or False, local_addr=("127.0.0.2", 0))
        ) as two,
    ):
        # Interleaved on two kept-alive connections: each request gets its connection's.
        assert await forwarded_for(one, base, token, upstream) == ("127.0.0.1", scheme)
        assert await forwarded_for(two, base, token, upstream) == ("127.0.0.2", scheme)
        assert await forwarded_for(one, base, token, upstream) == ("127.0.0.1", scheme)
        assert await forwarded_for(two, base, token, upstream) == ("127.0.0.2", scheme)
