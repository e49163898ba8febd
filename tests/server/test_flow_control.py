"""Flow control on the gateway's client connections: reading pauses while a handler has not
taken a large body in, and resumes when it has; a large answer reaches a slow client whole.

:class:`GatewayRequestHandler` resumes reading only when flow control paused it (aiohttp's
body reader asks after every chunk). These tests serve a small app through the gateway's own
runner over real sockets, and would hang (and fail by their bound) if a pause were never
lifted.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp
from aiohttp import web

from gateway.config.model import ClientTimeouts
from gateway.server.protocol import GatewayRequestHandler
from gateway.server.runner import GatewayRunner

BIG = bytes(range(256)) * (8 * 1024)  # 2 MiB: far above a body reader's high water mark
BOUND = 20.0
"""Seconds a test may take at most: a transport paused for good would hang it."""


@asynccontextmanager
async def served(app: web.Application) -> AsyncIterator[str]:
    runner = GatewayRunner(
        app,
        deadlines=ClientTimeouts(header=10, body=30, keepalive=15),
        max_connections=100,
        shutdown_timeout=1.0,
    )
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


def slow_reader_app(paused: list[bool]) -> web.Application:
    """Echoes the body's length and digest, reading it a chunk at a time with pauses."""

    async def slow(request: web.Request) -> web.Response:
        protocol = request.protocol
        assert isinstance(protocol, GatewayRequestHandler)
        received = bytearray()
        while True:
            await asyncio.sleep(0.002)  # the client sends meanwhile, until reading pauses
            transport = protocol.transport
            paused.append(transport is not None and not transport.is_reading())
            chunk = await request.content.readany()
            if not chunk:
                break
            received += chunk
        return web.Response(text=f"{len(received)} {bytes(received) == BIG}")

    app = web.Application(client_max_size=len(BIG) + 1)
    app.router.add_post("/slow", slow)
    return app


async def test_a_large_body_read_slowly_pauses_reading_and_arrives_whole() -> None:
    paused: list[bool] = []
    async with (
        served(slow_reader_app(paused)) as url,
        aiohttp.ClientSession() as session,
    ):
        async with asyncio.timeout(BOUND):
            for _ in range(2):  # and the kept-alive connection serves the next one
                async with session.post(url + "/slow", data=BIG) as response:
                    assert (response.status, await response.text()) == (200, f"{len(BIG)} True")
    assert any(paused), "reading never paused: the test did not exercise flow control"
    assert not paused[-1]


async def test_pipelined_requests_behind_a_large_body_are_all_answered() -> None:
    paused: list[bool] = []
    async with served(slow_reader_app(paused)) as url:
        port = int(url.rsplit(":", 1)[1])
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        head = f"POST /slow HTTP/1.1\r\nHost: g\r\nContent-Length: {len(BIG)}\r\n\r\n".encode()
        small = b"POST /slow HTTP/1.1\r\nHost: g\r\nContent-Length: 0\r\n\r\n"
        writer.write(head + BIG + small + small)
        async with asyncio.timeout(BOUND):
            answers = []
            for _ in range(3):
                status = await reader.readline()
                headers = (await reader.readuntil(b"\r\n\r\n")).decode().lower()
                length = int(headers.split("content-length: ")[1].split("\r\n")[0])
                answers.append((status.split()[1], await reader.readexactly(length)))
        writer.close()
    assert answers == [
        (b"200", f"{len(BIG)} True".encode()),
        (b"200", b"0 False"),
        (b"200", b"0 False"),
    ]


async def test_a_large_answer_reaches_a_slow_client_whole() -> None:
    async def large(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        response.content_length = len(BIG)
        await response.prepare(request)
        for start in range(0, len(BIG), 256 * 1024):
            await response.write(BIG[start : start + 256 * 1024])
        await response.write_eof()
        return response

    app = web.Application()
    app.router.add_get("/large", large)
    async with served(app) as url, aiohttp.ClientSession() as session:
        async with asyncio.timeout(BOUND):
            for _ in range(2):
                async with session.get(url + "/large") as response:
                    received = bytearray()
                    while chunk := await response.content.read(16 * 1024):
                        received += chunk
                        await asyncio.sleep(0.001)  # the gateway's writes wait for us
                    assert bytes(received) == BIG
