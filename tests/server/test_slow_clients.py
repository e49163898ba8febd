"""Slow and idle clients against the real ``serve`` process: deadlines for the request head,
the body and keep-alive, and a connection limit below the open-file limit."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import ExitStack, suppress

import pytest

from tests.fixtures.serve import (
    Serve,
    ServeFactory,
    StartServe,
    connect,
    get,
    pep_request_head,
    read_until_closed,
    token_over_socket,
)

PARTIAL_HEAD = b"GET /healthz HTTP/1.1\r\nHost: gateway\r\nX-Slow: "


@pytest.fixture(scope="module")
def short_deadlines(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Serve]:
    """One gateway for the deadline tests: header 0.5 s, body 1 s, keep-alive 0.5 s."""
    factory = ServeFactory(tmp_path_factory.mktemp("deadlines"))
    served = factory.start(timeouts={"header": 0.5, "body": 1, "keepalive": 0.5})
    served.wait_listening()
    yield served
    factory.close()


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def test_idle_and_half_sent_connections_beyond_the_file_limit_do_not_stop_healthz(
    serve: StartServe,
) -> None:
    nofile = 512
    gateway = serve(nofile=nofile, timeouts={"header": 60, "keepalive": 60})
    (pid,) = gateway.wait_listening()
    flood = 2 * nofile  # far more than the process could hold open
    with ExitStack() as stack:
        for n in range(flood):
            sock = stack.enter_context(connect(gateway.port))
            if n % 2:
                sock.sendall(PARTIAL_HEAD)  # half a request head, never finished
        for _ in range(5):
            status, body = get(gateway.port, "/healthz")
            assert (status, body) == (200, b'{"status": "ok"}')
            assert open_fds(pid) < nofile
    assert gateway.proc.poll() is None
    lowered = [e for e in gateway.events() if e["event"] == "max_connections_lowered"]
    assert lowered and lowered[0]["effective"] < nofile - 100 - 2 * 128  # pool, accept rounds
    assert gateway.stop() == 0
    # No "socket.accept() out of system resource" (EMFILE) or any other error.
    assert not [e for e in gateway.events() if e["level"] in ("error", "critical")]


def test_a_client_sending_half_a_header_is_disconnected_after_the_header_timeout(
    short_deadlines: Serve,
) -> None:
    gateway = short_deadlines
    with connect(gateway.port) as sock:
        sock.sendall(PARTIAL_HEAD)
        started = time.monotonic()
        assert read_until_closed(sock) == b""  # closed without an answer
        assert 0.4 <= time.monotonic() - started < 4
    assert get(gateway.port, "/healthz")[0] == 200


def test_the_header_timeout_is_a_deadline_that_trickling_bytes_do_not_extend(
    short_deadlines: Serve,
) -> None:
    gateway = short_deadlines
    with connect(gateway.port) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\n")
        started = time.monotonic()
        closed = False
        for _ in range(40):  # one header byte every 0.1 s, for up to 4 s
            try:
                sock.sendall(b"X")
            except (BrokenPipeError, ConnectionResetError):
                closed = True
                break
            time.sleep(0.1)
        assert closed, "the connection outlived its header deadline"
        assert time.monotonic() - started < 3
    assert gateway.proc.poll() is None


def test_a_body_that_stops_arriving_gets_408_after_the_body_timeout(
    short_deadlines: Serve,
) -> None:
    gateway = short_deadlines
    token = token_over_socket(gateway.port)
    with connect(gateway.port) as sock:
        sock.sendall(pep_request_head(token, 100) + b'{"query": "')
        started = time.monotonic()
        response = read_until_closed(sock)
        assert 0.9 <= time.monotonic() - started < 5
    assert response.startswith(b"HTTP/1.1 408 Request Timeout\r\n")
    assert get(gateway.port, "/healthz")[0] == 200
    assert not [e for e in gateway.events() if e["level"] in ("error", "critical")]


def test_an_idle_keep_alive_connection_is_closed_after_the_keepalive_timeout(
    short_deadlines: Serve,
) -> None:
    gateway = short_deadlines
    with connect(gateway.port) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: gateway\r\n\r\n")
        started = time.monotonic()
        response = read_until_closed(sock)  # the response, then the close
        assert 0.4 <= time.monotonic() - started < 4
    assert response.startswith(b"HTTP/1.1 200 OK\r\n")
    assert gateway.proc.poll() is None


def test_a_busy_connection_is_never_closed_to_make_room(serve: StartServe) -> None:
    # 16 connections allowed; one is in the middle of sending a request body (busy), then
    # many idle ones arrive: they push each other out, the busy one completes its request.
    gateway = serve(max_connections=16, timeouts={"header": 30, "body": 30, "keepalive": 30})
    gateway.wait_listening()
    token = token_over_socket(gateway.port)
    body = b'{"query": "{"}'  # read in full, then refused: Invalid Query Syntax
    with connect(gateway.port) as busy, ExitStack() as stack:
        busy.sendall(pep_request_head(token, len(body)) + body[:5])
        time.sleep(0.3)  # the head is in; the PEP waits for the body
        for _ in range(40):
            stack.enter_context(connect(gateway.port))
        assert get(gateway.port, "/healthz")[0] == 200
        busy.sendall(body[5:])
        response = read_until_closed(busy)
    # Answered, not dropped to make room for the idle connections.
    assert response.startswith(b"HTTP/1.1 400 Bad Request\r\n"), response[:80]
    assert b"GRAPHQL_PARSE_FAILED" in response
    assert gateway.stop() == 0


def test_new_connection_is_refused_when_every_connection_is_busy(serve: StartServe) -> None:
    gateway = serve(max_connections=16, timeouts={"header": 30, "body": 30, "keepalive": 30})
    gateway.wait_listening()
    head = pep_request_head(token_over_socket(gateway.port), 100)
    with ExitStack() as stack:
        for _ in range(16):
            stack.enter_context(connect(gateway.port)).sendall(head + b'{"query": "')
        time.sleep(0.3)
        with connect(gateway.port) as extra:
            with suppress(BrokenPipeError, ConnectionResetError):
                extra.sendall(b"GET /healthz HTTP/1.1\r\nHost: gateway\r\n\r\n")
            assert read_until_closed(extra) == b""
    assert gateway.stop() == 0


def test_a_client_leaving_before_its_body_arrived_is_no_error(short_deadlines: Serve) -> None:
    gateway = short_deadlines
    token = token_over_socket(gateway.port)
    with connect(gateway.port) as sock:
        sock.sendall(pep_request_head(token, 100) + b'{"query": "')
        time.sleep(0.3)  # the PEP is reading the body
    assert get(gateway.port, "/healthz")[0] == 200
    time.sleep(0.2)  # the handler's end is logged, if at all, by now
    events = gateway.events()
    assert not [e for e in events if e["level"] in ("error", "critical")]
    assert not [e for e in events if e["event"] == "decision" and e["status"] == 500]
