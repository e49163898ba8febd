"""Async notifications accepted per second against the synchronous route, same run (issue 15).

    .venv/bin/python bench/bench_delivery.py [--requests 1000] [--concurrency 32] [--rounds 3]

One ``nid-gateway serve`` process (SQLite store: WAL, ``synchronous=FULL``, every commit
fsynced before the 202) in front of the fixed-response ``bench/upstream.py``. Each round
posts ``--requests`` seed 003 notifications to ``/notificaties/graphql`` synchronously, then
the same number with ``Prefer: respond-async`` (each stored durably before its 202, while
the gateway's worker delivers the earlier ones), from ``--concurrency`` keep-alive
connections; rounds alternate and the median req/s of each kind is kept. Target: async
>= 50 % of sync. Prints both, the ratio and the fsync policy; at the end every accepted
notification must have been delivered (checked through ``nid-gateway outbox list``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.delivery.crash import fetch_token, write_config  # noqa: E402

PYTHON = sys.executable
ROUTE = "/notificaties/graphql"
BODY = json.dumps(
    {
        "query": (REPO / "gateway" / "examples" / "seed_003_example.graphql").read_text(),
        "variables": json.loads(
            (REPO / "gateway" / "examples" / "seed_003_variables.json").read_text()
        ),
        "operationName": "zendNotificatie",
    }
).encode()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_port(port: int, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert proc.poll() is None, "process exited at start"
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"nothing listens on {port}")


async def burst(
    session: aiohttp.ClientSession, url: str, headers: dict[str, str], total: int, width: int
) -> tuple[float, list[str]]:
    """*total* POSTs from *width* concurrent senders: (req/s, accepted delivery ids)."""
    left = iter(range(total))
    ids: list[str] = []
    expected = 202 if "Prefer" in headers else 200

    async def sender() -> None:
        for _ in left:
            async with session.post(url, data=BODY, headers=headers) as response:
                answer = await response.read()
                assert response.status == expected, (response.status, answer)
                if expected == 202:
                    ids.append(json.loads(answer)["deliveryId"])

    started = time.perf_counter()
    await asyncio.gather(*(sender() for _ in range(width)))
    return total / (time.perf_counter() - started), ids


async def measure(base: str, args: argparse.Namespace) -> tuple[list[float], list[float], int]:
    connector = aiohttp.TCPConnector(limit=args.concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        bearer = await fetch_token(session, base)
        plain = {"Authorization": f"Bearer {bearer}", "Content-Type": "application/json"}
        deferred = {**plain, "Prefer": "respond-async"}
        await burst(session, base + ROUTE, plain, 200, args.concurrency)  # warm-up
        sync, asynchronous, accepted = [], [], 0
        for _ in range(args.rounds):
            rps, _ids = await burst(session, base + ROUTE, plain, args.requests, args.concurrency)
            sync.append(rps)
            rps, ids = await burst(session, base + ROUTE, deferred, args.requests, args.concurrency)
            asynchronous.append(rps)
            accepted += len(ids)
        return sync, asynchronous, accepted


def undelivered(config: Path) -> int:
    out = subprocess.run(
        [PYTHON, "-m", "gateway.cli", "outbox", "list", "--config", str(config), "--state",
         "pending"],
        cwd=REPO, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    return len(out.splitlines())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-delivery-") as tmp:
        port, up_port = free_port(), free_port()
        upstream_url = f"http://127.0.0.1:{up_port}/graphql"
        config = write_config(Path(tmp), port, upstream_url, delivery={})
        settings = json.loads(config.read_text())
        settings["observability"]["decision_log"] = False
        config.write_text(json.dumps(settings))
        upstream = subprocess.Popen([PYTHON, "bench/upstream.py", str(up_port)], cwd=REPO)
        gateway = subprocess.Popen(
            [PYTHON, "-m", "gateway.cli", "serve", "--config", str(config)],
            cwd=REPO, stdout=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            wait_port(up_port, upstream)
            wait_port(port, gateway)
            sync, asynchronous, accepted = asyncio.run(measure(f"http://127.0.0.1:{port}", args))
            deadline = time.monotonic() + 120
            while (left := undelivered(config)) and time.monotonic() < deadline:
                time.sleep(1)
        finally:
            for proc in (gateway, upstream):
                proc.terminate()
                proc.wait(timeout=30)
    s, a = statistics.median(sync), statistics.median(asynchronous)
    print(
        "fsync policy: SQLite WAL, synchronous=FULL: every accepted notification is committed"
        " (fsynced) before its 202; enqueues that arrive together share one commit"
    )
    print(f"requests per round: {args.requests} x {args.rounds} rounds, {args.concurrency} conns")
    print(f"sync  route: {s:8.0f} req/s  (rounds: {', '.join(f'{x:.0f}' for x in sync)})")
    print(f"async route: {a:8.0f} req/s  (rounds: {', '.join(f'{x:.0f}' for x in asynchronous)})")
    print(f"async/sync:  {a / s:8.2f}  (target >= 0.50)")
    print(f"accepted {accepted}, still pending after the run: {left}")
    return 0 if a / s >= 0.5 and left == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
