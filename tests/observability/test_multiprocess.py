"""Multiprocess mode: two worker processes, /metrics on either aggregates both."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from gateway.config.model import GatewayConfig
from tests.fixtures.observability import REPO


@pytest.fixture
def workers(tmp_path: Path, write_config: Callable[..., GatewayConfig]) -> Iterator[list[int]]:
    config = write_config()
    metrics_dir = tmp_path / "prom"
    metrics_dir.mkdir()
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir), "PYTHONPATH": str(REPO)}
    procs, port_files = [], []
    for n in range(2):
        port_file = tmp_path / f"port-{n}"
        port_files.append(port_file)
        procs.append(
            subprocess.Popen(
                [
                    sys.executable,
                    str(Path(__file__).with_name("mp_worker.py")),
                    str(config.source),
                    str(port_file),
                ],
                env=env,
                cwd=REPO,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
        )
    try:
        deadline = time.monotonic() + 30
        while not all(p.exists() for p in port_files):
            for proc in procs:
                if proc.poll() is not None:
                    raise AssertionError(proc.stderr.read().decode() if proc.stderr else "")
            assert time.monotonic() < deadline, "workers did not start"
            time.sleep(0.05)
        yield [int(p.read_text()) for p in port_files]
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            proc.wait(timeout=10)


async def test_metrics_on_one_worker_aggregate_all_workers(workers: list[int]) -> None:
    first, second = workers
    async with aiohttp.ClientSession() as session:
        for port, count in ((first, 3), (second, 2)):
            for _ in range(count):
                async with session.post(f"http://127.0.0.1:{port}/emit") as r:
                    assert r.status == 200
        for port in (first, second):
            async with session.get(f"http://127.0.0.1:{port}/metrics") as r:
                assert r.status == 200
                text = await r.text()
            totals = [
                s.value
                for f in text_string_to_metric_families(text)
                for s in f.samples
                if s.name == "nid_gateway_decisions_total" and s.labels["outcome"] == "allow"
            ]
            assert totals == [5.0]


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
