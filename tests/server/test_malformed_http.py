"""Malformed HTTP over raw sockets against the real ``serve`` process with the access log on:
each is answered 400, logged in exactly one access line without
a traceback, and the gateway keeps serving."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.fixtures.serve import (
    ROUTE,
    Serve,
    ServeFactory,
    connect,
    get,
    read_until_closed,
    token_over_socket,
)

LIFECYCLE = {"observability_ready", "policy_reload", "token", "max_connections_lowered"}


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Serve]:
    factory = ServeFactory(tmp_path_factory.mktemp("malformed"))
    served = factory.start(observability={"access_log": True})
    served.wait_listening()
    yield served
    factory.close()


def lines_for(gateway: Serve, send: Any) -> tuple[bytes, list[dict[str, Any]]]:
    """Run *send* (socket -> response bytes), then a marked ``/healthz``; return the response
    and the log events written in between (the ``/healthz`` line excluded)."""
    before = len(gateway.events())
    with connect(gateway.port) as sock:
        response: bytes = send(sock)
    marker = f"case-{time.monotonic_ns()}"
    assert get(gateway.port, "/healthz", headers=f"X-Request-Id: {marker}\r\n")[0] == 200
    deadline = time.monotonic() + 5
    while True:
        events = gateway.events()[before:]
        done = [e for e in events if e.get("request_id") == marker]
        if done:
            return response, [e for e in events if e is not done[0]]
        assert time.monotonic() < deadline, "the /healthz access line never came"
        time.sleep(0.02)


def sending(*parts: bytes, pause: float = 0.0) -> Any:
    def send(sock: Any) -> bytes:
        for part in parts:
            sock.sendall(part)
            time.sleep(pause)
        return read_until_closed(sock)

    return send


def assert_refused_once(gateway: Serve, response: bytes, events: list[dict[str, Any]]) -> None:
    # Answered, never just dropped (a request line it could not parse gets an HTTP/1.0 answer).
    assert re.match(rb"HTTP/1\.[01] 400 ", response), response[:80]
    # (The token fetched for the split-body case logs its own lines: not part of the case.)
    (line,) = [e for e in events if e["event"] not in LIFECYCLE and e.get("path") != "/auth/token"]
    assert line["event"] == "access" and line["logger"] == "gateway.access"
    assert line["status"] == 400 and line["error"]
    assert "exception" not in line and "Traceback" not in gateway.stdout.read_text()
    assert "Traceback" not in gateway.stderr.read_text()


def test_garbage_request_line_is_400_logged_once(gateway: Serve) -> None:
    response, events = lines_for(gateway, sending(b"GARBAGE\x00\x01 nonsense\r\n\r\n"))
    assert_refused_once(gateway, response, events)


def test_tls_hello_on_the_plain_port_is_400_logged_once(gateway: Serve) -> None:
    hello = bytes.fromhex("160301020001000200fc0303") + b"\x00" * 40
    response, events = lines_for(gateway, sending(hello))
    assert_refused_once(gateway, response, events)


def test_invalid_header_is_400_logged_once(gateway: Serve) -> None:
    request = b"GET /healthz HTTP/1.1\r\nHost: gateway\r\nBad Header: value\r\n\r\n"
    response, events = lines_for(gateway, sending(request))
    assert_refused_once(gateway, response, events)


def test_oversized_header_line_is_400_logged_once(gateway: Serve) -> None:
    request = b"GET /healthz HTTP/1.1\r\nHost: gateway\r\nX-Big: " + b"a" * 20_000 + b"\r\n\r\n"
    response, events = lines_for(gateway, sending(request))
    assert_refused_once(gateway, response, events)


def test_bad_chunked_encoding_is_400_logged_once(gateway: Serve) -> None:
    request = (
        f"POST {ROUTE} HTTP/1.1\r\nHost: gateway\r\nContent-Type: application/json\r\n"
        "Transfer-Encoding: chunked\r\n\r\nZZ\r\nhello\r\n0\r\n\r\n"
    ).encode()
    response, events = lines_for(gateway, sending(request))
    assert_refused_once(gateway, response, events)


def test_bad_chunked_encoding_after_the_head_is_400_logged_once(gateway: Serve) -> None:
    # The head is accepted and the PEP is reading the body when the bad chunk arrives.
    head = (
        f"POST {ROUTE} HTTP/1.1\r\nHost: gateway\r\nContent-Type: application/json\r\n"
        f"Authorization: Bearer {token_over_socket(gateway.port)}\r\n"
        "Transfer-Encoding: chunked\r\n\r\n"
    ).encode()
    response, events = lines_for(gateway, sending(head, b"5\r\nhelloXX\r\n0\r\n\r\n", pause=0.3))
    assert_refused_once(gateway, response, events)
    (line,) = [e for e in events if e["event"] == "access"]
    assert line["path"] == ROUTE and line["method"] == "POST"


def test_the_gateway_keeps_serving_after_malformed_requests(gateway: Serve) -> None:
    for garbage in (b"GARBAGE\r\n\r\n", b"GET / HTTP/1.1\r\nBad Header: x\r\n\r\n"):
        with connect(gateway.port) as sock:
            sock.sendall(garbage)
            read_until_closed(sock)
    assert get(gateway.port, "/healthz") == (200, b'{"status": "ok"}')
    assert gateway.proc.poll() is None
