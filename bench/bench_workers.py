"""``serve --workers N`` against gunicorn with aiohttp's ``GunicornWebWorker``, same app.

    .venv/bin/python bench/bench_workers.py [--duration 5] [--rounds 3] [--workers 2 4]

Issue 11 asked whether gunicorn should replace the hand-made pre-fork supervisor unless a
measurement shows ours matters. For each worker count, three servers of the same gateway
configuration (decision log on, in front of the fixed-response upstream):

  ours                 ``nid-gateway serve --workers N`` (a SO_REUSEPORT socket per worker)
  gunicorn             ``gunicorn -k aiohttp.GunicornWebWorker -w N`` (one shared socket)
  gunicorn reuse-port  the same with ``--reuse-port`` (a socket per worker)

gunicorn's workers build the app with bench/gunicorn_app.py, which returns our
``GatewayRunner``: the request handler, deadlines and limits are the same in all three.
Load: ``wrk -t2 -c64`` (keep-alive) posting the seed notification with a valid token;
nothing is pinned (the workers need every core; wrk and the upstream share them).
Each server is measured once all its workers answer (see :func:`wait_for_workers`).
``--rounds`` interleaved rounds, median req/s per server, ratio to ``ours`` at the same N.
For ``ours`` it also prints each worker's cores during the run (how the kernel spread the
connections), the largest worker's RSS and PSS after it, the cores wrk and the upstream
used, and the ceiling: what two processes of a pure CPU loop get here over one.
Needs wrk. Bounded: about rounds x 3 x len(workers) x (duration + 10) seconds.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import statistics
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

from bench_gateway import (
    PYTHON,
    REPO,
    ROUTE,
    SCOPE,
    cpu_seconds,
    ensure_wrk,
    free_port,
    gateway_config,
    lua_script,
    start,
    stop,
    wait_for_port,
)

from gateway.authserver.signing_keys import KeyStore
from gateway.authserver.tokens import issue_token
from gateway.config.loader import load_config

GUNICORN = str(Path(PYTHON).with_name("gunicorn"))


def commands(config: Path, port: int, workers: int) -> dict[str, list[str]]:
    gunicorn = [
        GUNICORN,
        "bench.gunicorn_app:runner",
        "-k",
        "aiohttp.GunicornWebWorker",
        "-w",
        str(workers),
        "-b",
        f"127.0.0.1:{port}",
        "--graceful-timeout",
        "10",
    ]
    return {
        "ours": [
            PYTHON,
            "-m",
            "gateway.cli",
            "serve",
            "--config",
            str(config),
            "--workers",
            str(workers),
        ],
        "gunicorn": gunicorn,
        "gunicorn reuse-port": [*gunicorn, "--reuse-port"],
    }


def wrk_rps(wrk: str, url: str, script: Path, duration: int) -> tuple[float, int]:
    """(req/s, non-2xx answers) of one wrk run; its CPU time is added to :data:`WRK_CPU`."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run(
        [wrk, "-t2", "-c64", f"-d{duration}s", "-s", str(script), url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    WRK_CPU.append((after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime) / duration)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return rps, int(bad.group(1)) if bad else 0


RSS: dict[str, list[float]] = {}
"""Largest worker RSS (MB) after each measured run of ``ours``, by worker count."""
PSS: dict[str, list[float]] = {}
"""Largest worker PSS (MB: shared pages divided among their sharers), likewise."""
SPLIT: dict[str, list[list[float]]] = {}
"""Cores each worker of ``ours`` used during each measured run: the request split."""
CONNECTIONS: dict[str, list[list[int]]] = {}
"""wrk's connections each worker of ``ours`` held during each measured run."""
PER_REQUEST: dict[str, list[tuple[float, float]]] = {}
"""(worker CPU ms, upstream CPU ms) per request in each measured run of ``ours``."""
UPSTREAM_PID: list[int] = []
WRK_CPU: list[float] = []
"""Cores wrk used per run (CPU seconds / duration), warm-ups included."""


def workers_of(pid: int) -> list[int]:
    """*pid*'s worker processes, or *pid* itself without any."""
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [int(c) for c in children] or [pid]


def memory_mb(pid: int) -> dict[str, float]:
    """Rss and Pss (MB) of *pid*, from ``/proc/PID/smaps_rollup``."""
    result = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
        key, value = line.split(":", 1)
        if key in ("Rss", "Pss"):
            result[key] = int(value.split()[0]) / 1024
    return result


def cpu_ceiling(seconds: float = 2.0) -> float:
    """What a second process of a pure CPU loop adds here, now: iterations of two processes
    running at once / those of one alone. 2.0 on two idle cores; the scaling that no server
    can beat on this host while wrk and the upstream also need the cores is lower still."""

    def spin(count: int) -> int:
        procs = [
            subprocess.Popen([PYTHON, "-c", SPIN, str(seconds)], stdout=subprocess.PIPE, text=True)
            for _ in range(count)
        ]
        return sum(int(p.communicate()[0]) for p in procs)

    return spin(2) / spin(1)


SPIN = (
    "import sys, time\n"
    "end, n = time.perf_counter() + float(sys.argv[1]), 0\n"
    "while time.perf_counter() < end:\n"
    "    n += 1\n"
    "print(n)\n"
)


def wait_for_workers(port: int, workers: int, timeout: float = 120.0) -> None:
    """Until 4 x *workers* fresh connections in a row get ``/healthz`` answered within 1 s.

    gunicorn binds (reuse-port: each worker at fork) before a worker has built the app, and
    its workers build it one by one after the fork (``serve`` builds it once, before): a
    connection the kernel gives a booting worker waits. Consecutive answers on fresh
    connections (spread over the sockets by the kernel's hash) mean every worker serves.
    """
    deadline = time.monotonic() + timeout
    streak = 0
    while streak < 4 * workers:
        if time.monotonic() > deadline:
            raise SystemExit(f"workers on port {port} did not all start")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1.0) as r:
                streak = streak + 1 if r.status == 200 else 0
        except OSError:
            streak = 0


def serve_and_measure(
    cmd: list[str],
    env: dict[str, str],
    port: int,
    workers: int,
    wrk: str,
    url: str,
    script: Path,
    duration: int,
) -> tuple[float, int]:
    with tempfile.TemporaryDirectory(prefix="bench-metrics-") as metrics_dir:
        # gunicorn: the operator names the multiprocess directory (serve makes its own).
        server = subprocess.Popen(
            cmd,
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={**env, "PROMETHEUS_MULTIPROC_DIR": metrics_dir} if "gunicorn" in cmd[0] else env,
        )
        try:
            wait_for_port(port, timeout=60.0)
            wait_for_workers(port, workers)
            wrk_rps(wrk, url, script, 3)  # warm-up: caches filled, pools open
            pids = workers_of(server.pid)
            before = [cpu_seconds(pid) for pid in pids]
            upstream_before = cpu_seconds(UPSTREAM_PID[0])
            started = time.monotonic()
            counting = subprocess.Popen(
                ["sh", "-c", f"sleep {duration / 2}; ss -tnpH state established sport = :{port}"],
                stdout=subprocess.PIPE,
                text=True,
            )
            measured = wrk_rps(wrk, url, script, duration)
            sockets = counting.communicate()[0]
            if cmd[0] == PYTHON:  # ours: its last argument is the worker count
                elapsed = time.monotonic() - started
                split = [(cpu_seconds(p) - b) / elapsed for p, b in zip(pids, before, strict=True)]
                SPLIT.setdefault(cmd[-1], []).append(split)
                held = [sockets.count(f"pid={pid},") for pid in pids]
                CONNECTIONS.setdefault(cmd[-1], []).append(held)
                upstream = (cpu_seconds(UPSTREAM_PID[0]) - upstream_before) / elapsed
                rps = measured[0]
                PER_REQUEST.setdefault(cmd[-1], []).append(
                    (1000 * sum(split) / rps, 1000 * upstream / rps)
                )
                memory = [memory_mb(pid) for pid in pids]
                RSS.setdefault(cmd[-1], []).append(max(m["Rss"] for m in memory))
                PSS.setdefault(cmd[-1], []).append(max(m["Pss"] for m in memory))
            return measured
        finally:
            stop(server)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--workers", type=int, nargs="+", default=[2, 4])
    parser.add_argument(
        "--servers",
        nargs="+",
        choices=("ours", "gunicorn", "gunicorn reuse-port"),
        default=["ours", "gunicorn", "gunicorn reuse-port"],
        help="e.g. --servers ours --workers 1 2: the scaling of serve --workers alone",
    )
    args = parser.parse_args()
    wrk = ensure_wrk()
    up_port = free_port()
    upstream = start([PYTHON, "bench/upstream.py", str(up_port)], 1, up_port)
    upstream_url = f"http://127.0.0.1:{up_port}/graphql"
    upstream_cpu = cpu_seconds(upstream.pid)
    UPSTREAM_PID.append(upstream.pid)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="bench-workers-") as tmp_name:
        tmp = Path(tmp_name)
        port = free_port()
        config_path = gateway_config(tmp, port, upstream_url, True)
        config = load_config(config_path)
        token = issue_token(
            config, KeyStore.load(config), "ciz", [SCOPE], f"http://127.0.0.1:{port}{ROUTE}"
        )
        script = lua_script(tmp / "same.lua", token, unique_queries=False)
        url = f"http://127.0.0.1:{port}{ROUTE}"
        env = {**os.environ, "NID_GATEWAY_CONFIG": str(config_path)}
        env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        samples: dict[tuple[int, str], list[float]] = {}
        bad = 0
        for _ in range(args.rounds):
            for workers in args.workers:
                for name, cmd in commands(config_path, port, workers).items():
                    if name not in args.servers:
                        continue
                    rps, non_2xx = serve_and_measure(
                        cmd, env, port, workers, wrk, url, script, args.duration
                    )
                    samples.setdefault((workers, name), []).append(rps)
                    bad += non_2xx
    upstream_cores = (cpu_seconds(upstream.pid) - upstream_cpu) / (time.monotonic() - started)
    stop(upstream)
    print(f"{'workers':>7} {'server':22} {'req/s (median)':>15} {'rounds':>24} {'vs ours':>8}")
    for workers in args.workers:
        ours = statistics.median(samples[(workers, "ours")])
        for (n, name), values in samples.items():
            if n != workers:
                continue
            med = statistics.median(values)
            rounds = " ".join(f"{v:.0f}" for v in values)
            print(f"{workers:7d} {name:22} {med:15.0f} {rounds:>24} {med / ours:8.2f}")
    if "ours" in args.servers and len(args.workers) > 1:
        low, high = min(args.workers), max(args.workers)
        scaling = statistics.median(samples[(high, "ours")]) / statistics.median(
            samples[(low, "ours")]
        )
        print(f"ours: {high} workers / {low}: {scaling:.2f}x")
    for count, values in RSS.items():
        print(
            f"ours --workers {count}: largest worker RSS after the run {max(values):.0f} MB, "
            f"PSS {max(PSS[count]):.0f} MB; cores per worker (the request split) "
            + ", ".join("/".join(f"{c:.2f}" for c in split) for split in SPLIT[count])
            + "; wrk connections per worker "
            + ", ".join("/".join(str(n) for n in held) for held in CONNECTIONS[count])
        )
        worker_ms = statistics.median(w for w, _ in PER_REQUEST[count])
        upstream_ms = statistics.median(u for _, u in PER_REQUEST[count])
        print(
            f"ours --workers {count}: CPU per request {worker_ms:.3f} ms in the workers, "
            f"{upstream_ms:.3f} ms in the upstream (medians)"
        )
    print(
        f"ceiling: 2 processes of a pure CPU loop do {cpu_ceiling():.2f}x the work of one, "
        "on this host as loaded now"
    )
    print(
        f"cores used: wrk {statistics.median(WRK_CPU):.2f} (median per run), upstream "
        f"{upstream_cores:.2f} (average over the whole benchmark, pauses included); "
        f"host has {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}"
    )
    if bad:
        raise SystemExit(f"{bad} requests were not answered 2xx: the measurement is not valid")


if __name__ == "__main__":
    main()
