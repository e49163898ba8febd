"""SIGTERM to the real ``serve`` process under load: it stops accepting at once, lets every
accepted request finish (within ``server.shutdown_grace_seconds``), writes the audit file
and exits 0; also with ``--workers 2``, whose supervisor forwards SIGTERM."""

from __future__ import annotations

import asyncio
import json
import signal
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from gateway.serving.demo import DEMO_DIR, load_demo_request
from tests.fixtures.serve import (
    REPO,
    ROUTE,
    Serve,
    StartServe,
    connect,
    fresh_session,
    get_token,
    pep_request_head,
    read_until_closed,
)


def seed_003_request() -> dict[str, Any]:
    """The seed 003 example request, as the demo sends it."""
    return load_demo_request(REPO / DEMO_DIR / "requests" / "allowed.json")


CONCURRENT = 20


@dataclass
class SlowUpstream:
    """A resource server answering each request after ``delay`` seconds."""

    url: str = ""
    delay: float = 1.0
    arrived: int = 0
    answered: int = 0
    everyone_arrived: asyncio.Event = field(default_factory=asyncio.Event)
    expected: int = CONCURRENT

    async def graphql(self, request: web.Request) -> web.Response:
        await request.read()
        self.arrived += 1
        if self.arrived >= self.expected:
            self.everyone_arrived.set()
        await asyncio.sleep(self.delay)
        self.answered += 1
        return web.json_response({"data": {"zendNotificatie": {"notificatieID": "n-1"}}})


@pytest.fixture
async def slow_upstream() -> AsyncIterator[SlowUpstream]:
    upstream = SlowUpstream()
    app = web.Application()
    app.router.add_post("/graphql", upstream.graphql)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    upstream.url = str(server.make_url("/graphql"))
    try:
        yield upstream
    finally:
        await server.close()


async def notify(session: aiohttp.ClientSession, base: str, token: str) -> int:
    async with session.post(
        base + ROUTE, json=seed_003_request(), headers={"Authorization": f"Bearer {token}"}
    ) as response:
        await response.read()
        return response.status


async def refused(port: int) -> bool:
    """True once a new connection to *port* is refused (polls for up to 5 s)."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            _reader, writer = await asyncio.open_connection("127.0.0.1", port)
        except ConnectionRefusedError:
            return True
        writer.close()
        await asyncio.sleep(0.02)
    return False


async def sigterm_under_load(
    gateway: Serve, upstream: SlowUpstream, send: Callable[[Serve], None]
) -> list[int]:
    """Fire CONCURRENT requests; once all reached the upstream, *send* the signal and check
    the listener is gone while they are still in flight; return their statuses."""
    async with fresh_session() as session:
        token = await get_token(session, gateway.base)
        requests = [
            asyncio.create_task(notify(session, gateway.base, token)) for _ in range(CONCURRENT)
        ]
        await asyncio.wait_for(upstream.everyone_arrived.wait(), 15)
        send(gateway)
        assert await refused(gateway.port), "still accepting connections after SIGTERM"
        assert upstream.answered < CONCURRENT  # refused while the requests were in flight
        return list(await asyncio.gather(*requests))


def audit_records(directory: Path) -> list[dict[str, object]]:
    return [
        json.loads(line)
        for path in sorted(directory.glob("audit*.jsonl"))
        for line in path.read_text().splitlines()
    ]


def sigterm(gateway: Serve) -> None:
    gateway.proc.send_signal(signal.SIGTERM)


async def test_sigterm_finishes_in_flight_requests_flushes_audit_and_exits_0(
    serve: StartServe, slow_upstream: SlowUpstream
) -> None:
    gateway = serve(upstream=slow_upstream.url, observability={"audit": {"path": "audit.jsonl"}})
    gateway.wait_listening()
    statuses = await sigterm_under_load(gateway, slow_upstream, sigterm)
    assert statuses == [200] * CONCURRENT
    assert gateway.proc.wait(timeout=15) == 0
    allowed = [r for r in audit_records(gateway.directory) if r.get("outcome") == "allow"]
    assert len(allowed) == CONCURRENT
    # The decisions were made (and logged) while the gateway drained.
    events = [e["event"] for e in gateway.events()]
    started = events.index("shutdown_started")
    assert events.count("decision") == CONCURRENT
    assert all(i > started for i, e in enumerate(events) if e == "decision")
    assert events[-1] == "shutdown_complete"


async def test_sigterm_with_two_workers_finishes_in_flight_requests_and_exits_0(
    serve: StartServe, slow_upstream: SlowUpstream
) -> None:
    audit = {"audit": {"path": "audit.jsonl"}}
    gateway = serve("--workers", "2", upstream=slow_upstream.url, observability=audit)
    workers = gateway.wait_listening(2)
    statuses = await sigterm_under_load(gateway, slow_upstream, sigterm)
    assert statuses == [200] * CONCURRENT
    assert gateway.proc.wait(timeout=15) == 0
    # Each worker wrote its own audit file, and together they hold every decision.
    files = sorted(p.name for p in gateway.directory.glob("audit-*.jsonl"))
    assert files == sorted(f"audit-{pid}.jsonl" for pid in workers)
    allowed = [r for r in audit_records(gateway.directory) if r.get("outcome") == "allow"]
    assert len(allowed) == CONCURRENT


async def test_a_request_whose_body_is_still_arriving_at_sigterm_is_answered(
    serve: StartServe, slow_upstream: SlowUpstream
) -> None:
    gateway = serve(upstream=slow_upstream.url)
    gateway.wait_listening()
    async with fresh_session() as session:
        token = await get_token(session, gateway.base)
    body = json.dumps(seed_003_request()).encode()
    loop = asyncio.get_running_loop()
    with connect(gateway.port, timeout=10) as sock:
        sock.sendall(pep_request_head(token, len(body)) + body[:20])
        await asyncio.sleep(0.3)  # the head is in; the PEP is reading the body
        sigterm(gateway)
        assert await refused(gateway.port)
        sock.sendall(body[20:])
        response = await loop.run_in_executor(None, read_until_closed, sock)
    assert response.startswith(b"HTTP/1.1 200 OK\r\n"), response[:120]
    assert gateway.proc.wait(timeout=15) == 0


async def test_requests_outliving_the_grace_period_are_cut_and_the_process_still_exits_0(
    serve: StartServe, slow_upstream: SlowUpstream
) -> None:
    slow_upstream.delay, slow_upstream.expected = 30.0, 1
    gateway = serve(upstream=slow_upstream.url, shutdown_grace_seconds=0.5)
    gateway.wait_listening()
    async with fresh_session() as session:
        token = await get_token(session, gateway.base)
        request = asyncio.create_task(notify(session, gateway.base, token))
        await asyncio.wait_for(slow_upstream.everyone_arrived.wait(), 15)
        started = time.monotonic()
        sigterm(gateway)
        exit_code = await loop_wait(gateway)
        assert time.monotonic() - started < 10
        with pytest.raises(aiohttp.ClientError):
            await request
    assert exit_code == 0


async def loop_wait(gateway: Serve) -> int:
    return await asyncio.get_running_loop().run_in_executor(None, gateway.proc.wait, 15)
