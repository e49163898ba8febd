"""Multiprocess mode: two worker processes, /metrics on either aggregates both."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import cast

import aiohttp
import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families

from gateway.config.model import GatewayConfig
from gateway.observability.metrics import FLUSH_SECONDS
from tests.fixtures.observability import REPO


@pytest.fixture
def metrics_dir(tmp_path: Path) -> Path:
    path = tmp_path / "prom"
    path.mkdir()
    return path


@pytest.fixture
def workers(
    tmp_path: Path, metrics_dir: Path, write_config: Callable[..., GatewayConfig]
) -> Iterator[list[subprocess.Popen[bytes]]]:
    """Two worker processes sharing *metrics_dir*; each has its port in ``.args[-1]``'s file
    (read with :func:`port`). Stopped with SIGTERM at the end if still running."""
    config = write_config()
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir), "PYTHONPATH": str(REPO)}
    procs = []
    for n in range(2):
        procs.append(
            subprocess.Popen(
                [
                    sys.executable,
                    str(Path(__file__).with_name("mp_worker.py")),
                    str(config.source),
                    str(tmp_path / f"port-{n}"),
                ],
                env=env,
                cwd=REPO,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
        )
    try:
        deadline = time.monotonic() + 30
        while not all(port_file(p).exists() for p in procs):
            for proc in procs:
                if proc.poll() is not None:
                    raise AssertionError(proc.stderr.read().decode() if proc.stderr else "")
            assert time.monotonic() < deadline, "workers did not start"
            time.sleep(0.05)
        yield procs
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in procs:
            proc.wait(timeout=10)


def port_file(proc: subprocess.Popen[bytes]) -> Path:
    """The file *proc* writes its port to (its last argument)."""
    return Path(cast(list[str], proc.args)[-1])


def port(proc: subprocess.Popen[bytes]) -> int:
    return int(port_file(proc).read_text())


def allowed(text: str) -> list[float]:
    return [
        s.value
        for f in text_string_to_metric_families(text)
        for s in f.samples
        if s.name == "nid_gateway_decisions_total" and s.labels["outcome"] == "allow"
    ]


async def emit(session: aiohttp.ClientSession, proc: subprocess.Popen[bytes], count: int) -> None:
    for _ in range(count):
        async with session.post(f"http://127.0.0.1:{port(proc)}/emit") as r:
            assert r.status == 200


async def test_metrics_on_one_worker_aggregate_all_workers(
    workers: list[subprocess.Popen[bytes]],
) -> None:
    first, second = workers
    async with aiohttp.ClientSession() as session:
        await emit(session, first, 3)
        await emit(session, second, 2)
        # Each worker writes its tallies to its file about every second (FLUSH_SECONDS).
        await asyncio.sleep(FLUSH_SECONDS * 2.5)
        for proc in (first, second):
            async with session.get(f"http://127.0.0.1:{port(proc)}/metrics") as r:
                assert r.status == 200
                assert allowed(await r.text()) == [5.0]


async def test_a_scrape_shows_the_answering_workers_own_counts_at_once(
    workers: list[subprocess.Popen[bytes]],
) -> None:
    first, _ = workers
    async with aiohttp.ClientSession() as session:
        await emit(session, first, 4)
        async with session.get(f"http://127.0.0.1:{port(first)}/metrics") as r:
            assert allowed(await r.text()) == [4.0]


async def test_a_graceful_stop_writes_the_counts_not_yet_flushed(
    workers: list[subprocess.Popen[bytes]], metrics_dir: Path
) -> None:
    # Counted and stopped well within one flush interval: only the flush at shutdown can
    # have written these to the files.
    async with aiohttp.ClientSession() as session:
        await asyncio.gather(*(emit(session, proc, 7) for proc in workers))
    for proc in workers:
        proc.send_signal(signal.SIGTERM)
    for proc in workers:
        assert proc.wait(timeout=10) == 0
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(metrics_dir))  # type: ignore[no-untyped-call]
    assert allowed(generate_latest(registry).decode()) == [14.0]


def test_a_worker_file_still_being_created_breaks_neither_start_nor_scrape(tmp_path: Path) -> None:
    # A worker creates its mmap file before sizing it: another worker starting or scraping
    # at that moment used to read the empty file and die of struct.error.
    metrics_dir = tmp_path / "prom"
    metrics_dir.mkdir()
    (metrics_dir / "counter_99999.db").touch()
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir), "PYTHONPATH": str(REPO)}
    script = (
        "from gateway.observability.metrics import GatewayMetrics\n"
        "metrics = GatewayMetrics()\n"
        "metrics.requests.labels('/healthz', 'GET', '200').inc()\n"
        "print(metrics.exposition().decode())\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "nid_gateway_" in result.stdout
