"""The real ``nid-gateway demo`` in a subprocess, for the tests that talk to it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from aiohttp.test_utils import unused_port

REPO = Path(__file__).resolve().parents[2]


def start_demo() -> tuple[subprocess.Popen[str], int]:
    """``nid-gateway demo`` on a free port (stdout piped as text); the process and port."""
    port = unused_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "gateway.cli", "demo", "--port", str(port)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    return proc, port
