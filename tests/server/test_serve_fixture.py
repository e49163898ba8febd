"""The serve fixture itself: a port taken between ``unused_port`` and the bind (another test
process on the same machine) costs a relaunch, not a failed test."""

from __future__ import annotations

import socket

import pytest
from aiohttp.test_utils import unused_port

from tests.fixtures.serve import StartServe, get


def test_a_port_taken_before_the_bind_relaunches_serve_on_another_port(
    serve: StartServe, monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        taken_port = taken.getsockname()[1]
        ports = iter([taken_port])
        monkeypatch.setattr(
            "tests.fixtures.serve.unused_port", lambda: next(ports, None) or unused_port()
        )
        gateway = serve()
        assert gateway.port == taken_port
        gateway.wait_listening()
        assert gateway.port != taken_port
        assert f"port {taken_port} is in use" not in gateway.stderr.read_text()
        assert get(gateway.port, "/healthz")[0] == 200
