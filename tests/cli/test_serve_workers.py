"""``nid-gateway serve`` as a real subprocess: two workers sharing one port (metrics
aggregated over both, clean stop on SIGTERM), and the optional access log."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestServer
from prometheus_client import CollectorRegistry
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families

from gateway.examples.resource_server import create_resource_server_app
from gateway.observability.metrics import FLUSH_SECONDS
from gateway.serving.demo import load_demo_request
from tests.fixtures.serve import (
    DEMO_SECRET,
    REPO,
    ROUTE,
    Serve,
    ServeFactory,
    fresh_session,
    get_token,
    write_serve_config,
)

ALLOWED = REPO / "config" / "demo" / "requests" / "allowed.json"  # the seed 003 example


StartServe = Callable[..., Serve]


@pytest.fixture
async def upstream() -> AsyncIterator[str]:
    """The example resource server in this process (the gateway subprocess forwards to it)."""
    server = TestServer(create_resource_server_app("Zorgkantoor 5151"), host="127.0.0.1")
    await server.start_server()
    try:
        yield str(server.make_url("/graphql"))
    finally:
        await server.close()


@pytest.fixture
def start_serve(tmp_path: Path, upstream: str) -> Iterator[StartServe]:
    """``serve`` processes in front of the in-process *upstream* (``ServeFactory``)."""
    factory = ServeFactory(tmp_path)

    def start(*extra: str, **observability: Any) -> Serve:
        return factory.start(*extra, upstream=upstream, observability=observability)

    yield start
    factory.close()


async def wait_for_workers(served: Serve, count: int) -> list[int]:
    """Worker pids, once *count* workers listen (waiting off the event loop, which serves
    the upstream)."""
    return await asyncio.to_thread(served.wait_listening, count)


def sample_sum(text: str, name: str, **labels: str) -> float:
    return sum(
        s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
    )


def issued_per_worker(metrics_dir: Path, scratch: Path) -> dict[int, float]:
    """Tokens issued by each worker, read from that worker's own counter file."""
    result: dict[int, float] = {}
    for db in metrics_dir.glob("counter_*.db"):
        single = scratch / db.stem
        single.mkdir(parents=True)
        shutil.copy(db, single / db.name)
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=str(single))  # type: ignore[no-untyped-call]
        total = sum(
            s.value
            for family in registry.collect()
            for s in family.samples
            if s.name == "nid_gateway_tokens_total" and s.labels.get("outcome") == "issued"
        )
        result[int(db.stem.removeprefix("counter_"))] = total
    return result


def alive(pid: int) -> bool:
    """True while *pid* exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


async def test_two_workers_share_the_port_aggregate_metrics_and_stop_on_sigterm(
    start_serve: StartServe,
) -> None:
    served = start_serve("--workers", "2")
    workers = await wait_for_workers(served, 2)
    assert len(set(workers)) == 2 and served.proc.pid not in workers
    # Multiprocess mode: one private metrics directory under the server's TMPDIR.
    (metrics_dir,) = list(served.tmpdir.iterdir())
    assert metrics_dir.name.startswith("nid-gateway-metrics-")

    tokens, allowed = 20, 6
    async with fresh_session() as session:
        issued = [await get_token(session, served.base) for _ in range(tokens)]
        for token in issued[:allowed]:
            async with session.post(
                served.base + ROUTE,
                json=load_demo_request(ALLOWED),
                headers={"Authorization": f"Bearer {token}"},
            ) as resp:
                body = await resp.json()
                assert resp.status == 200, body
                assert body["data"]["zendNotificatie"]["notificatieID"]
        # Each worker writes its tallies to the shared files about every second: after
        # that, every scrape, whichever worker answers it, counts both workers' requests.
        await asyncio.sleep(FLUSH_SECONDS * 2.5)
        for _ in range(6):
            async with session.get(served.base + "/metrics") as resp:
                assert resp.status == 200
                text = await resp.text()
            assert sample_sum(text, "nid_gateway_tokens_total", outcome="issued") == tokens
            assert sample_sum(text, "nid_gateway_decisions_total", outcome="allow") == allowed

    # Both workers issued tokens, and their own counts add up to the total.
    per_worker = issued_per_worker(metrics_dir, served.tmpdir.parent / "per-worker")
    assert set(per_worker) == set(workers)
    assert all(n > 0 for n in per_worker.values()), per_worker
    assert sum(per_worker.values()) == tokens

    served.proc.send_signal(signal.SIGTERM)
    assert served.proc.wait(timeout=15) == 0, served.stderr.read_text()
    deadline = time.monotonic() + 5
    while any(alive(pid) for pid in workers):
        assert time.monotonic() < deadline, f"orphan workers: {workers}"
        await asyncio.sleep(0.05)
    assert list(served.tmpdir.iterdir()) == []  # the metrics directory is removed


async def test_a_worker_that_dies_stops_the_service(start_serve: StartServe) -> None:
    served = start_serve("--workers", "2")
    first, second = await wait_for_workers(served, 2)
    os.kill(first, signal.SIGKILL)
    # The parent stops the other worker and fails, so a supervisor restarts the service.
    assert served.proc.wait(timeout=15) == 1
    assert f"worker {first} exited unexpectedly" in served.stderr.read_text()
    deadline = time.monotonic() + 5
    while alive(second):
        assert time.monotonic() < deadline, "the surviving worker was not stopped"
        await asyncio.sleep(0.05)
    assert list(served.tmpdir.iterdir()) == []


async def test_workers_need_a_fixed_port(tmp_path: Path, upstream: str) -> None:
    config = write_serve_config(tmp_path, 0, upstream)
    result, tmpdir = serve_refused(config, tmp_path, "2")
    assert "error: --workers needs a fixed port" in result.stderr
    assert list(tmpdir.iterdir()) == []


def serve_refused(
    config: Path, tmp_path: Path, workers: str
) -> tuple[subprocess.CompletedProcess[str], Path]:
    """``serve --workers N`` on *config*, expected to refuse to start (exit 2), and its
    TMPDIR."""
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    command = ["serve", "--config", str(config), "--workers", workers]
    result = subprocess.run(
        [sys.executable, "-m", "gateway.cli", *command],
        cwd=REPO,
        env={**os.environ, "TMPDIR": str(tmpdir)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2, result.stderr
    return result, tmpdir


async def test_access_log_switch_logs_requests_without_credentials(
    start_serve: StartServe,
) -> None:
    served = start_serve(access_log=True)
    await wait_for_workers(served, 1)
    async with fresh_session() as session:
        token = await get_token(session, served.base)
        async with session.post(
            served.base + ROUTE,
            json=load_demo_request(ALLOWED),
            headers={"Authorization": f"Bearer {token}", "User-Agent": "access-log-test"},
        ) as resp:
            assert resp.status == 200
    served.proc.send_signal(signal.SIGTERM)
    assert served.proc.wait(timeout=15) == 0
    out = served.stdout.read_text()
    events = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    access = [e for e in events if e.get("event") == "access"]
    route = next(e for e in access if e["path"] == ROUTE)
    assert route["method"] == "POST" and route["status"] == 200
    assert route["logger"] == "gateway.access" and route["user_agent"] == "access-log-test"
    assert any(e["path"] == "/auth/token" for e in access)
    assert "authorization" not in {k.lower() for k in route}
    assert token not in out and token.split(".")[2] not in out
    assert DEMO_SECRET not in out


async def test_access_log_is_off_by_default(start_serve: StartServe) -> None:
    served = start_serve()
    await wait_for_workers(served, 1)
    async with fresh_session() as session, session.get(served.base + "/healthz") as resp:
        assert resp.status == 200
    served.proc.send_signal(signal.SIGTERM)
    assert served.proc.wait(timeout=15) == 0
    events = [
        json.loads(line) for line in served.stdout.read_text().splitlines() if line.startswith("{")
    ]
    assert any(e.get("event") == "observability_ready" for e in events)
    assert not any(e.get("event") == "access" for e in events)


def test_the_supervisor_imports_the_app_and_freezes_its_heap_before_the_fork() -> None:
    # What the workers inherit copy-on-write: the modules each would import after the fork,
    # with the collector kept off their pages (gc.freeze). Run in a fresh interpreter, as the
    # supervisor is one: this process has imported everything already.
    probe = (
        "import gc, sys\n"
        "from gateway.config.loader import load_config\n"
        "from gateway.serving.workers import share_before_fork\n"
        "config = load_config('config/demo/gateway.yaml')\n"
        "assert 'gateway.app' not in sys.modules and gc.get_freeze_count() == 0\n"
        "share_before_fork(config)\n"
        "print(sorted(m for m in ('gateway.app', 'gateway.server.runner') if m in sys.modules),"
        " gc.get_freeze_count() > 10_000)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "['gateway.app', 'gateway.server.runner'] True"


@pytest.mark.parametrize("workers", ["1", "2"])
async def test_a_route_schema_that_does_not_load_stops_serve_with_its_position(
    tmp_path: Path, upstream: str, workers: str
) -> None:
    # With --workers the supervisor loads the routes' schemas before the fork: a broken SDL
    # file must end the start as clearly as in one process (file:line:col, exit 2), not as a
    # traceback, and no worker starts.
    config = write_serve_config(tmp_path, 18_099, upstream)
    schema = tmp_path / "broken.graphql"
    schema.write_text("type Query {\n  x: \n}\n", encoding="utf-8")
    data = json.loads(config.read_text(encoding="utf-8"))
    data["routes"][0]["schema"] = str(schema)
    config.write_text(json.dumps(data), encoding="utf-8")
    result, _tmpdir = serve_refused(config, tmp_path, workers)
    assert result.stderr.startswith("error: ") and "Traceback" not in result.stderr
    assert f"{schema}:" in result.stderr and "invalid GraphQL SDL" in result.stderr
