"""The crash-safety scenario of reliable delivery (issue 15), one run per call of
:func:`crash_run`; ``python -m tests.delivery.crash --runs 20`` (``make crash-test``) runs it
again and again and stops at the first failure.

A real ``nid-gateway serve`` process (SQLite store, fsync on commit) takes async
notifications from several concurrent senders; at a random moment it is killed with
``SIGKILL``; a new process starts on the same store. A recording recipient that honours
``Idempotency-Key`` must then have processed every notification that was answered ``202``
exactly once, and the store must show each of them delivered: nothing accepted is lost.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp.test_utils import unused_port

from tests.fixtures.delivery import CENTRAL, Recipient, central_sections
from tests.fixtures.gateway import seed_notification
from tests.fixtures.serve import write_serve_config

REPO = Path(__file__).resolve().parents[2]
SCOPE = "organisaties/zorgkantoor/notificaties/notificatie:create"
SENDERS = 8
"""Concurrent senders during the load."""


@dataclass
class CrashReport:
    """What one run saw."""

    accepted: int
    processed: int
    redelivered: int
    """Attempts the recipient answered for a key it had already processed (the crash cut
    between its answer and the gateway's record): harmless, by Idempotency-Key."""
    killed_after: float
    recovered_in: float


CRASH_DELIVERY = {
    "backoff_initial": 0.05,
    "backoff_max": 0.5,
    "poll_interval": 0.2,
    "lease": 3,
    "timeout": 2,
}


def write_config(
    directory: Path, port: int, recipient: str, delivery: dict[str, Any] | None = None
) -> Path:
    """``serve``'s test deployment (``tests/fixtures/serve.py``) with a SQLite store and the
    central route (the adresboek sends UZOVI 5151 to *recipient*); *delivery* is the
    ``delivery:`` section (default: a short lease, a killed worker's claims are free again
    after 3 s)."""
    path = write_serve_config(directory, port, recipient)
    config = json.loads(path.read_text(encoding="utf-8"))
    config["observability"]["log_level"] = "warning"
    config.update(
        data_dir="data",
        store={"backend": "sqlite"},
        delivery=CRASH_DELIVERY if delivery is None else delivery,
        **central_sections(directory, recipient),
    )
    path.write_text(json.dumps(config, indent=2), encoding="utf-8")
    return path


def start_serve(config: Path, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "gateway.cli", "serve", "--config", str(config)],
            cwd=REPO,
            env={**os.environ, "PYTHONPATH": str(REPO)},
            stdout=out,
            stderr=subprocess.STDOUT,
        )


async def wait_ready(session: aiohttp.ClientSession, base: str, proc: Any) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert proc.poll() is None, "serve exited at start"
        try:
            async with session.get(f"{base}/healthz") as response:
                if response.status == 200:
                    return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.05)
    raise AssertionError("serve did not start within 30 s")


async def fetch_token(session: aiohttp.ClientSession, base: str) -> str:
    form = {
        "grant_type": "client_credentials",
        "client_id": "ciz",
        "client_secret": "ciz-demo-secret",
        "scope": SCOPE,
        "audience": base + CENTRAL,
    }
    async with session.post(f"{base}/auth/token", data=form) as response:
        assert response.status == 200, await response.text()
        token: str = (await response.json())["access_token"]
        return token


async def load(session: aiohttp.ClientSession, base: str, token: str, accepted: list[str]) -> None:
    """Post async notifications until the gateway goes away; keep every 202's id."""
    body = json.dumps(seed_notification()).encode()
    headers = {
        "Authorization": f"Bearer {token}",
        "Content-Type": "application/json",
        "Prefer": "respond-async",
    }
    while True:
        try:
            async with session.post(base + CENTRAL, data=body, headers=headers) as response:
                answer = await response.read()
                if response.status != 202:
                    raise AssertionError(f"{response.status} {answer!r}")
                accepted.append(json.loads(answer)["deliveryId"])
        except (aiohttp.ClientError, ConnectionError):
            return  # killed: whatever was not answered 202 was not accepted


async def crash_run(directory: Path, rng: random.Random | None = None) -> CrashReport:
    """One run in *directory* (created); raises AssertionError on a lost or doubled one."""
    rng = rng or random.Random()
    directory.mkdir(parents=True, exist_ok=True)
    recipient = await Recipient().start()
    recipient.delay = 0.005  # attempts in flight when the kill comes
    port = unused_port()
    base = f"http://127.0.0.1:{port}"
    config = write_config(directory, port, recipient.url)
    log = directory / "serve.log"
    proc = start_serve(config, log)
    second: subprocess.Popen[bytes] | None = None
    connector = aiohttp.TCPConnector(limit=SENDERS, force_close=False)
    try:
        async with aiohttp.ClientSession(connector=connector) as session:
            await wait_ready(session, base, proc)
            token = await fetch_token(session, base)
            accepted: list[str] = []
            senders = [
                asyncio.create_task(load(session, base, token, accepted)) for _ in range(SENDERS)
            ]
            killed_after = rng.uniform(0.3, 2.0)
            await asyncio.sleep(killed_after)
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=10)
            await asyncio.wait_for(asyncio.gather(*senders), timeout=30)
            restarted = time.monotonic()
            second = start_serve(config, log)
            await wait_ready(session, base, second)
            deadline = time.monotonic() + 60
            while not set(accepted) <= set(recipient.processed):
                assert time.monotonic() < deadline, (
                    f"{len(set(accepted) - set(recipient.processed))} of {len(accepted)}"
                    " accepted notifications never arrived"
                )
                await asyncio.sleep(0.05)
            recovered_in = time.monotonic() - restarted
            states = await delivered_states(session, base, token, accepted)
    finally:
        for running in (proc, second):
            if running is not None and running.poll() is None:
                running.kill()
                running.wait(timeout=10)
        await recipient.stop()
    assert accepted, "no notification was accepted before the kill"
    assert len(set(accepted)) == len(accepted), "a deliveryId was handed out twice"
    doubled = {key: n for key, n in recipient.processed.items() if n != 1}
    assert not doubled, f"processed more than once: {doubled}"
    assert set(states) == {"delivered"}, f"states after recovery: {states}"
    seen = [a.key for a in recipient.attempts if a.key is not None]
    return CrashReport(
        accepted=len(accepted),
        processed=len(recipient.processed),
        redelivered=len(seen) - len(set(seen)),
        killed_after=killed_after,
        recovered_in=recovered_in,
    )


async def delivered_states(
    session: aiohttp.ClientSession, base: str, token: str, ids: Sequence[str]
) -> dict[str, int]:
    """How many of *ids* ``GET /deliveries/<id>`` shows in each state (waiting briefly for
    the record that follows the recipient's answer)."""
    deadline = time.monotonic() + 10
    while True:
        counts: dict[str, int] = {}
        for delivery_id in ids:
            async with session.get(
                f"{base}/deliveries/{delivery_id}", headers={"Authorization": f"Bearer {token}"}
            ) as response:
                state = (await response.json())["state"]
            counts[state] = counts.get(state, 0) + 1
        if set(counts) == {"delivered"} or time.monotonic() > deadline:
            return counts
        await asyncio.sleep(0.2)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--dir", type=Path, default=Path("var/crash-test"))
    args = parser.parse_args(argv)
    shutil.rmtree(args.dir, ignore_errors=True)
    for run in range(1, args.runs + 1):
        try:
            report = asyncio.run(crash_run(args.dir / f"run-{run:02d}"))
        except AssertionError as exc:
            print(f"run {run}: FAILED: {exc} (logs in {args.dir / f'run-{run:02d}'})")
            return 1
        print(
            f"run {run}: ok: {report.accepted} accepted, killed after {report.killed_after:.2f} s,"
            f" all delivered once {report.recovered_in:.2f} s after restart"
            f" ({report.redelivered} redelivered, deduplicated by Idempotency-Key)",
            flush=True,
        )
    print(f"{args.runs} of {args.runs} runs passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
