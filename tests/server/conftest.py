"""The real ``nid-gateway serve`` in a subprocess, with ``server:`` settings of the test's
choosing, an optional open-file limit, and helpers for raw-socket clients."""

from __future__ import annotations

import json
import os
import resource
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import unused_port

from tests.cli.test_serve_workers import LISTENING, REPO, write_serve_config

ROUTE = "/deelnemers/uzovi/5151/graphql"


@dataclass
class Serve:
    """A running ``serve`` process."""

    proc: subprocess.Popen[bytes]
    port: int
    stdout: Path
    stderr: Path
    directory: Path

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_listening(self, workers: int = 1) -> list[int]:
        """Worker pids once *workers* processes listen (the serving process's own pid)."""
        deadline = time.monotonic() + 30
        while True:
            pids = [int(pid) for pid in LISTENING.findall(self.stderr.read_text())]
            if len(pids) >= workers:
                return pids
            assert self.proc.poll() is None, self.stderr.read_text()
            assert time.monotonic() < deadline, "serve did not start: " + self.stderr.read_text()
            time.sleep(0.05)

    def stop(self, timeout: float = 30) -> int:
        """SIGTERM, then the exit code."""
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=timeout)

    def events(self) -> list[dict[str, Any]]:
        """The JSON log lines written so far."""
        lines = self.stdout.read_text().splitlines()
        return [json.loads(line) for line in lines if line.startswith("{")]


StartServe = Callable[..., Serve]


class ServeFactory:
    """Starts ``serve --config`` processes under *root* and kills what is left at the end."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.started: list[Serve] = []

    def start(
        self,
        *args: str,
        upstream: str = "http://127.0.0.1:9/graphql",
        nofile: int | None = None,
        observability: dict[str, Any] | None = None,
        **server: Any,
    ) -> Serve:
        """*server* is merged into ``server:``; *nofile* lowers the process's open-file
        limit; *upstream* is the route's upstream URL; *args* go to ``serve``."""
        directory = self.root / f"serve-{len(self.started)}"
        directory.mkdir()
        port = unused_port()
        path = write_serve_config(directory, port, upstream, **(observability or {}))
        config = json.loads(path.read_text())
        config["server"].update(server)
        path.write_text(json.dumps(config, indent=2))
        stdout, stderr = directory / "stdout.log", directory / "stderr.log"

        def limit_files() -> None:
            if nofile is not None:
                _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
                resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, hard))

        with stdout.open("wb") as out, stderr.open("wb") as err:
            proc = subprocess.Popen(
                [sys.executable, "-m", "gateway.cli", "serve", "--config", str(path), *args],
                cwd=REPO,
                env={**os.environ, "TMPDIR": str(directory), "PYTHONPATH": str(REPO)},
                stdout=out,
                stderr=err,
                preexec_fn=limit_files,  # the test process starts no threads of its own
            )
        served = Serve(proc, port, stdout, stderr, directory)
        self.started.append(served)
        return served

    def close(self) -> None:
        for served in self.started:
            if served.proc.poll() is None:
                served.proc.kill()
                served.proc.wait(timeout=10)


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[StartServe]:
    """Start ``serve`` processes for one test (see :meth:`ServeFactory.start`)."""
    factory = ServeFactory(tmp_path)
    yield factory.start
    factory.close()


def connect(port: int, timeout: float = 5.0) -> socket.socket:
    """A TCP connection to the gateway on 127.0.0.1."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    sock.settimeout(timeout)
    return sock


def read_until_closed(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (or a reset)."""
    data = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            return data
        if not chunk:
            return data
        data += chunk


def get(port: int, path: str, *, headers: str = "") -> tuple[int, bytes]:
    """``GET path`` on a fresh connection: (status, body)."""
    with connect(port) as sock:
        sock.sendall(
            f"GET {path} HTTP/1.1\r\nHost: gateway\r\nConnection: close\r\n{headers}\r\n".encode()
        )
        response = read_until_closed(sock)
    head, _, body = response.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body
