"""The forward leg's connection pool, over real HTTP both ways.

A caller talks to a small aiohttp app whose only handler forwards through
:class:`gateway.proxy.upstream.Upstream` (the same call the PEP makes) to real upstream
servers: aiohttp apps, and raw asyncio servers where the upstream must misbehave in ways
aiohttp's server never would (1xx answers, too many headers, closing a kept-alive
connection). The gateway's own forwarding tests are in ``test_forwarding.py``.
"""

from __future__ import annotations

import asyncio
import inspect
import ssl
import tomllib
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import trustme
from aiohttp import web
from aiohttp.base_protocol import BaseProtocol
from aiohttp.client_proto import ResponseHandler
from aiohttp.http_parser import RawResponseMessage
from aiohttp.streams import StreamReader
from aiohttp.test_utils import TestClient, TestServer
from multidict import CIMultiDict

from gateway.config.model import RouteConfig
from gateway.observability.events import NullObserver
from gateway.proxy.headers import upstream_request_headers
from gateway.proxy.pool import Connection
from gateway.proxy.upstream import BUFFER_LIMIT, UpstreamPool
from gateway.refusals import Refusal
from tests.fixtures.gateway import REPO, route

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


class Recorder(NullObserver):
    def __init__(self) -> None:
        self.upstream_errors: list[str] = []

    def upstream_error(self, route: str, kind: str) -> None:
        self.upstream_errors.append(kind)


@asynccontextmanager
async def proxy(
    upstream: str, ssl_context: ssl.SSLContext | None = None, **settings: Any
) -> AsyncIterator[tuple[TestClient[Any, Any], Recorder]]:
    """A caller's client to an app that forwards every request to *upstream*."""
    config = RouteConfig.model_validate(
        route("/fwd", upstream, "UZOVI", "5151", "zorgkantoor", **settings)
    )
    observer = Recorder()
    pool = UpstreamPool(observer, ssl_context=ssl_context)
    forwarder = pool.register(config)

    async def forward(request: web.Request) -> web.StreamResponse:
        body = await request.read()
        headers = upstream_request_headers(
            request.headers, keep_authorization=False, peer=None, scheme="http", host=None
        )
        try:
            forwarded = await forwarder.forward(
                request, body, headers, {}, method=request.method, target=request.raw_path
            )
        except Refusal as refusal:
            return web.Response(status=refusal.status, text=refusal.code)
        return forwarded.response

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", forward)
    await pool.start()
    client = TestClient(TestServer(app))
    await client.start_server()
    try:
        yield client, observer
    finally:
        await client.close()
        await pool.close()


@asynccontextmanager
async def aiohttp_upstream(
    app: web.Application, ssl_context: ssl.SSLContext | None = None
) -> AsyncIterator[str]:
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ssl_context)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"{'https' if ssl_context else 'http'}://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


@asynccontextmanager
async def raw_upstream(handler: Handler) -> AsyncIterator[str]:
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.close()


async def read_request(reader: asyncio.StreamReader) -> tuple[bytes, bytes] | None:
    """(head, body) of the next request on a raw connection; None at its end."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return None
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    return head, await reader.readexactly(length)


def answering(
    *answers: bytes, close: bool = False, linger: bool = True
) -> tuple[Handler, list[bytes]]:
    """A raw upstream answering each request on a connection with the next of *answers*;
    with *close* the connection is closed, unanswered, at the request after the last; without
    *linger* it is closed as soon as the last answer is written."""
    heads: list[bytes] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for answer in answers:
            request = await read_request(reader)
            if request is None:
                break
            heads.append(request[0] + request[1])
            writer.write(answer)
        else:
            if close:
                request = await read_request(reader)
                if request is not None:
                    heads.append(request[0] + request[1])
            elif linger:
                await reader.read()
        writer.close()

    return handle, heads


OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


# --- the semi-private aiohttp API, pinned ---------------------------------------------------


def test_aiohttp_is_pinned_to_the_minor_version_whose_protocol_api_the_pool_uses() -> None:
    pin = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    assert "aiohttp>=3.14,<3.15" in pin
    assert aiohttp.__version__.startswith("3.14.")


def test_response_handler_still_has_the_shape_the_pool_relies_on() -> None:
    params = inspect.signature(ResponseHandler.set_response_params).parameters
    for name in (
        "skip_payload",
        "read_until_eof",
        "auto_decompress",
        "max_line_size",
        "max_field_size",
        "max_headers",
    ):
        assert params[name].kind is inspect.Parameter.KEYWORD_ONLY, name
    for method in ("read", "set_exception", "start_timeout", "close", "is_connected"):
        assert callable(getattr(ResponseHandler, method)), method
    assert isinstance(ResponseHandler.should_close, property)
    assert isinstance(ResponseHandler.read_timeout, property)
    assert ResponseHandler.read_timeout.fset is not None
    for field in ("version", "code", "reason", "headers", "should_close"):
        assert hasattr(RawResponseMessage, field), field
    assert callable(StreamReader.readany) and callable(StreamReader.read)
    assert callable(StreamReader.read_nowait) and callable(StreamReader.is_eof)
    # Connection and the server's handler resume reading only when flow control paused it.
    assert "_reading_paused" in BaseProtocol.__slots__
    assert "resume_parser" in inspect.signature(BaseProtocol.resume_reading).parameters


def test_the_pool_parses_with_aiohttps_c_parser() -> None:
    import importlib

    c_parser = importlib.import_module("aiohttp._http_parser")
    assert importlib.import_module("aiohttp.client_proto").HttpResponseParser is (
        c_parser.HttpResponseParser
    )


# --- keep-alive, pool limit, waiters --------------------------------------------------------


async def test_the_request_goes_out_as_one_prebuilt_head_with_host_and_length() -> None:
    handle, seen = answering(OK, OK)
    async with raw_upstream(handle) as url, proxy(url + "/graphql") as (client, _):
        response = await client.post("/a/b?x=1", data=b"{}", headers={"X-Test": "yes"})
        assert (response.status, await response.read()) == (200, b"ok")
        response = await client.get("/c")
        assert response.status == 200
    port = url.rsplit(":", 1)[1]
    post, get = seen
    lines = post.split(b"\r\n")
    assert lines[0] == b"POST /a/b?x=1 HTTP/1.1"
    assert lines[1] == f"Host: 127.0.0.1:{port}".encode()
    assert b"X-Test: yes" in lines and b"Content-Length: 2" in lines
    assert post.endswith(b"\r\n\r\n{}")
    assert get.startswith(b"GET /c HTTP/1.1\r\n") and b"Content-Length" not in get


async def test_header_bytes_that_are_not_utf8_go_upstream_unchanged() -> None:
    handle, seen = answering(OK)
    async with raw_upstream(handle) as url, proxy(url) as (client, _):
        assert client.server.port is not None
        reader, writer = await asyncio.open_connection("127.0.0.1", client.server.port)
        writer.write(b"GET /x HTTP/1.1\r\nHost: a\r\nX-Raw: caf\xe9 \xff\r\n\r\n")
        assert (await reader.readline()).startswith(b"HTTP/1.1 200")
        writer.close()
    assert b"\r\nX-Raw: caf\xe9 \xff\r\n" in seen[0]


async def test_keep_alive_connections_are_reused_across_methods() -> None:
    peers: list[object] = []

    async def answer(request: web.Request) -> web.Response:
        peers.append(request.transport.get_extra_info("peername") if request.transport else None)
        await request.read()
        return web.Response(text=request.method)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", answer)
    async with aiohttp_upstream(app) as url, proxy(url) as (client, _):
        for method in ("GET", "POST", "PUT", "HEAD", "DELETE", "GET"):
            response = await client.request(method, "/x", data=b"" if method == "GET" else b"1")
            assert response.status == 200
            assert await response.read() == (b"" if method == "HEAD" else method.encode())
    assert len(peers) == 6 and len(set(peers)) == 1


async def test_pool_size_bounds_the_connections_and_the_rest_wait_their_turn() -> None:
    in_flight = 0
    most = 0
    peers: set[object] = set()

    async def slow(request: web.Request) -> web.Response:
        nonlocal in_flight, most
        in_flight += 1
        most = max(most, in_flight)
        peers.add(request.transport.get_extra_info("peername") if request.transport else None)
        await asyncio.sleep(0.05)
        in_flight -= 1
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/{tail:.*}", slow)
    async with aiohttp_upstream(app) as url, proxy(url, pool_size=2) as (client, _):
        answers = await asyncio.gather(*(client.post("/x", data=b"{}") for _ in range(8)))
        assert [a.status for a in answers] == [200] * 8
    assert most == 2 and len(peers) == 2


# --- timeouts -------------------------------------------------------------------------------


async def test_waiting_for_a_pooled_connection_counts_as_connect_time_504() -> None:
    release = asyncio.Event()

    async def held(request: web.Request) -> web.Response:
        await release.wait()
        return web.Response(text="late")

    app = web.Application()
    app.router.add_post("/{tail:.*}", held)
    timeouts = {"connect": 0.2, "read": 5, "total": 5}
    async with (
        aiohttp_upstream(app) as url,
        proxy(url, pool_size=1, timeouts=timeouts) as (client, observer),
    ):
        first = asyncio.ensure_future(client.post("/x", data=b"{}"))
        await asyncio.sleep(0.05)
        second = await client.post("/x", data=b"{}")
        assert (second.status, await second.text()) == (504, "GATEWAY_TIMEOUT")
        release.set()
        assert (await first).status == 200
    assert observer.upstream_errors == ["timeout"]


async def test_no_answer_within_the_read_timeout_is_504() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()

    async with (
        raw_upstream(silent) as url,
        proxy(url, timeouts={"connect": 1, "read": 0.2, "total": 5}) as (client, observer),
    ):
        response = await client.post("/x", data=b"{}")
        assert (response.status, await response.text()) == (504, "GATEWAY_TIMEOUT")
    assert observer.upstream_errors == ["timeout"]


async def test_an_answer_trickling_past_the_total_timeout_is_504() -> None:
    async def trickle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n")
        for _ in range(100):  # a byte every 50 ms: the read timeout never fires
            writer.write(b"x")
            await asyncio.sleep(0.05)

    async with (
        raw_upstream(trickle) as url,
        proxy(url, timeouts={"connect": 1, "read": 0.5, "total": 0.4}) as (client, observer),
    ):
        response = await client.post("/x", data=b"{}")
        assert (response.status, await response.text()) == (504, "GATEWAY_TIMEOUT")
    assert observer.upstream_errors == ["timeout"]


async def test_a_stalled_large_answer_aborts_the_caller_after_the_read_timeout() -> None:
    async def stall(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 200000\r\n\r\n" + b"x" * 1000)
        await reader.read()

    async with (
        raw_upstream(stall) as url,
        proxy(url, timeouts={"connect": 1, "read": 0.2, "total": 5}) as (client, observer),
    ):
        response = await client.post("/x", data=b"{}")
        assert response.status == 200
        with pytest.raises(aiohttp.ClientPayloadError):
            await response.read()
    assert observer.upstream_errors == ["timeout"]


def delayed(delays: list[float]) -> Handler:
    """A raw upstream answering the requests on a connection with OK, each after the next
    of *delays* seconds."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for delay in delays:
            if await read_request(reader) is None:
                break
            await asyncio.sleep(delay)
            writer.write(OK)
        await reader.read()
        writer.close()

    return handle


async def test_a_request_on_a_kept_alive_connection_gets_its_own_total_timeout() -> None:
    # The first request arms the connection's deadline timer for 0.5 s; the second starts at
    # 0.3 s and answers at 0.6 s, before its own deadline (0.8 s): the timer, reaching the
    # first deadline while the second request runs, must wait for the second one.
    timeouts = {"connect": 1, "read": 5, "total": 0.5}
    async with (
        raw_upstream(delayed([0.0, 0.3])) as url,
        proxy(url, timeouts=timeouts) as (client, observer),
    ):
        assert (await client.post("/one", data=b"1")).status == 200
        await asyncio.sleep(0.3)
        response = await client.post("/two", data=b"2")
        assert (response.status, await response.read()) == (200, b"ok")
    assert observer.upstream_errors == []


async def test_the_total_timeout_still_holds_after_the_connection_was_idle() -> None:
    # The deadline timer of the first request passes while the connection is idle; the
    # second request on that connection must arm it again.
    timeouts = {"connect": 1, "read": 5, "total": 0.3}
    async with (
        raw_upstream(delayed([0.0, 3.0])) as url,
        proxy(url, timeouts=timeouts) as (client, observer),
    ):
        assert (await client.post("/one", data=b"1")).status == 200
        await asyncio.sleep(0.5)
        response = await client.post("/two", data=b"2")
        assert (response.status, await response.text()) == (504, "GATEWAY_TIMEOUT")
    assert observer.upstream_errors == ["timeout"]


async def test_a_shorter_total_timeout_on_a_shared_connection_is_not_postponed() -> None:
    # Two routes to one origin share its pool: the slow route's 10 s deadline is armed on the
    # connection first, then the quick route's 0.3 s one must still end its request in time.
    observer = Recorder()
    pool = UpstreamPool(observer)
    async with raw_upstream(delayed([0.0, 3.0])) as url:
        slow = pool.register(
            RouteConfig.model_validate(
                route("/slow", url, "UZOVI", "5151", "zorgkantoor", timeouts={"total": 10})
            )
        )
        quick = pool.register(
            RouteConfig.model_validate(
                route("/quick", url, "UZOVI", "5151", "zorgkantoor", timeouts={"total": 0.3})
            )
        )
        forwarders = {"slow": slow, "quick": quick}

        async def forward(request: web.Request) -> web.StreamResponse:
            forwarder = forwarders[request.match_info["which"]]
            try:
                return (await forwarder.forward(request, b"{}", CIMultiDict(), {})).response
            except Refusal as refusal:
                return web.Response(status=refusal.status, text=refusal.code)

        app = web.Application()
        app.router.add_post("/{which}", forward)
        await pool.start()
        try:
            async with TestClient(TestServer(app)) as client:
                assert (await client.post("/slow")).status == 200
                started = asyncio.get_running_loop().time()
                response = await client.post("/quick")
                assert (response.status, await response.text()) == (504, "GATEWAY_TIMEOUT")
                assert asyncio.get_running_loop().time() - started < 2.5
        finally:
            await pool.close()
    assert observer.upstream_errors == ["timeout"]


# --- answers without a body, informational answers, large answers ---------------------------


async def test_informational_answers_are_skipped() -> None:
    handle, _seen = answering(
        b"HTTP/1.1 100 Continue\r\n\r\n"
        b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n" + OK
    )
    async with raw_upstream(handle) as url, proxy(url) as (client, _):
        response = await client.post("/x", data=b"{}")
        assert (response.status, await response.read()) == (200, b"ok")


async def test_an_unrequested_protocol_switch_is_502() -> None:
    handle, _seen = answering(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\n\r\n")
    async with raw_upstream(handle) as url, proxy(url) as (client, observer):
        response = await client.post("/x", data=b"{}")
        assert (response.status, await response.text()) == (502, "BAD_GATEWAY")
    assert observer.upstream_errors == ["reset"]


@pytest.mark.parametrize("status", [204, 304])
async def test_no_body_answers_pass_and_keep_the_connection(status: int) -> None:
    # The declared length of a 304 describes the resource, not a body; nothing follows.
    first = f'HTTP/1.1 {status} X\r\nETag: "v1"\r\nContent-Length: 7\r\n\r\n'.encode()
    handle, seen = answering(first, OK)
    async with raw_upstream(handle) as url, proxy(url) as (client, _):
        response = await client.get("/x")
        assert response.status == status and await response.read() == b""
        assert response.headers["ETag"] == '"v1"'
        response = await client.get("/y")
        assert (response.status, await response.read()) == (200, b"ok")
    assert len(seen) == 2  # both on the one connection the handler served


async def test_head_answer_has_no_body_and_the_connection_goes_on() -> None:
    handle, seen = answering(b"HTTP/1.1 200 OK\r\nContent-Length: 300000\r\n\r\n", OK)
    async with raw_upstream(handle) as url, proxy(url) as (client, _):
        response = await client.head("/x")
        assert response.status == 200 and await response.read() == b""
        response = await client.post("/y", data=b"{}")
        assert (response.status, await response.read()) == (200, b"ok")
    assert len(seen) == 2


async def test_answers_beyond_the_buffer_limit_are_streamed_whole() -> None:
    big = bytes(range(256)) * (3 * BUFFER_LIMIT // 256)

    async def answer(request: web.Request) -> web.Response:
        return web.Response(body=big)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", answer)
    async with aiohttp_upstream(app) as url, proxy(url) as (client, _):
        for _ in range(2):
            response = await client.post("/x", data=b"{}")
            assert response.headers["Content-Length"] == str(len(big))
            assert await response.read() == big


async def test_a_large_answer_to_a_slow_caller_pauses_the_upstream_and_resumes() -> None:
    # The caller waits before it reads: the gateway's writes to it wait, the upstream
    # connection's reader fills past its high water mark and pauses; it must resume as the
    # answer drains, and the connection is reused for the next request.
    big = bytes(range(256)) * (32 * 1024)  # 8 MiB
    peers: list[object] = []

    async def answer(request: web.Request) -> web.Response:
        peers.append(request.transport.get_extra_info("peername") if request.transport else None)
        return web.Response(body=big)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", answer)
    async with aiohttp_upstream(app) as url, proxy(url) as (client, observer):
        async with asyncio.timeout(20):
            for _ in range(2):
                response = await client.post("/x", data=b"{}")
                await asyncio.sleep(0.3)
                assert await response.read() == big
    assert len(peers) == 2 and peers[0] == peers[1]
    assert observer.upstream_errors == []


async def test_an_answer_delimited_by_close_is_read_to_the_end() -> None:
    handle, _seen = answering(
        b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil the end", linger=False
    )
    async with raw_upstream(handle) as url, proxy(url) as (client, _):
        response = await client.post("/x", data=b"{}")
        assert (response.status, await response.read()) == (200, b"until the end")


async def test_too_many_answer_headers_is_502() -> None:
    headers = b"".join(b"X-H%d: v\r\n" % n for n in range(200))
    handle, _seen = answering(b"HTTP/1.1 200 OK\r\n" + headers + b"Content-Length: 2\r\n\r\nok")
    async with raw_upstream(handle) as url, proxy(url) as (client, observer):
        response = await client.post("/x", data=b"{}")
        assert (response.status, await response.text()) == (502, "BAD_GATEWAY")
    assert observer.upstream_errors == ["reset"]


async def test_an_answer_header_line_over_the_limit_is_502() -> None:
    handle, _seen = answering(b"HTTP/1.1 200 OK\r\nX-Long: " + b"a" * 9000 + b"\r\n\r\n")
    async with raw_upstream(handle) as url, proxy(url) as (client, _):
        response = await client.post("/x", data=b"{}")
        assert (response.status, await response.text()) == (502, "BAD_GATEWAY")


# --- broken keep-alive connections: retry only what may be sent twice -----------------------


async def test_a_stale_connection_is_retried_for_an_idempotent_request() -> None:
    # The upstream answers one request per connection, then closes at the next one unanswered.
    handle, seen = answering(OK, close=True)
    async with raw_upstream(handle) as url, proxy(url) as (client, observer):
        assert (await client.get("/one")).status == 200
        response = await client.get("/two")
        assert (response.status, await response.read()) == (200, b"ok")
    assert [h.split(b" ")[1] for h in seen] == [b"/one", b"/two", b"/two"]
    assert observer.upstream_errors == []


async def test_a_stale_connection_is_not_retried_for_a_post() -> None:
    handle, seen = answering(OK, close=True)
    async with raw_upstream(handle) as url, proxy(url) as (client, observer):
        assert (await client.post("/one", data=b"1")).status == 200
        response = await client.post("/two", data=b"2")
        assert (response.status, await response.text()) == (502, "BAD_GATEWAY")
    assert [h.split(b" ")[1] for h in seen] == [b"/one", b"/two"]  # sent once, not twice
    assert observer.upstream_errors == ["reset"]


async def test_a_connection_closed_while_idle_is_not_used_so_a_post_goes_through() -> None:
    handle, seen = answering(OK, linger=False)  # closes right after its one answer
    async with raw_upstream(handle) as url, proxy(url) as (client, observer):
        assert (await client.post("/one", data=b"1")).status == 200
        await asyncio.sleep(0.1)  # the close reaches the pooled connection
        response = await client.post("/two", data=b"2")
        assert (response.status, await response.read()) == (200, b"ok")
    assert [h.split(b" ")[1] for h in seen] == [b"/one", b"/two"]
    assert observer.upstream_errors == []


async def test_a_connection_the_upstream_spoke_on_while_idle_is_not_reused() -> None:
    async def chatty(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while await read_request(reader) is not None:
            writer.write(OK)
            await asyncio.sleep(0.05)  # then an answer nobody asked for
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nstale")
        writer.close()

    async with raw_upstream(chatty) as url, proxy(url) as (client, _):
        assert await (await client.get("/one")).read() == b"ok"
        await asyncio.sleep(0.2)
        assert await (await client.get("/two")).read() == b"ok"


async def test_a_refused_connection_is_502_refused() -> None:
    async with raw_upstream(answering(OK)[0]) as url:
        pass  # closed again: nothing listens there now
    async with proxy(url) as (client, observer):
        response = await client.post("/x", data=b"{}")
        assert (response.status, await response.text()) == (502, "BAD_GATEWAY")
    assert observer.upstream_errors == ["refused"]


# --- TLS ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """(server, client) contexts: a certificate for 127.0.0.1 from a fresh test CA."""
    ca = trustme.CA()
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server)
    client = ssl.create_default_context()
    ca.configure_trust(client)
    return server, client


async def test_https_upstream_with_a_trusted_certificate(
    tls: tuple[ssl.SSLContext, ssl.SSLContext],
) -> None:
    seen: list[tuple[str, str | None]] = []

    async def answer(request: web.Request) -> web.Response:
        seen.append((request.scheme, request.headers.get("Host")))
        return web.Response(body=await request.read())

    app = web.Application()
    app.router.add_post("/{tail:.*}", answer)
    server_ctx, client_ctx = tls
    async with aiohttp_upstream(app, server_ctx) as url, proxy(url, client_ctx) as (client, _):
        for _ in range(2):
            response = await client.post("/x", data=b'{"a":1}')
            assert (response.status, await response.read()) == (200, b'{"a":1}')
    port = url.rsplit(":", 1)[1]
    assert seen == [("https", f"127.0.0.1:{port}")] * 2


async def test_https_upstream_with_an_untrusted_certificate_is_502(
    tls: tuple[ssl.SSLContext, ssl.SSLContext],
) -> None:
    async def answer(request: web.Request) -> web.Response:
        raise AssertionError("the upstream must not be reached")

    app = web.Application()
    app.router.add_post("/{tail:.*}", answer)
    async with aiohttp_upstream(app, tls[0]) as url, proxy(url) as (client, observer):
        response = await client.post("/x", data=b"{}")
        assert (response.status, await response.text()) == (502, "BAD_GATEWAY")
    assert observer.upstream_errors == ["refused"]


def test_connection_is_the_response_handler_the_pool_subclasses() -> None:
    assert issubclass(Connection, ResponseHandler)
    assert Path(inspect.getfile(ResponseHandler)).name == "client_proto.py"
