"""``serve --workers N`` against gunicorn with aiohttp's ``GunicornWebWorker``, same app.

    .venv/bin/python bench/bench_workers.py [--duration 5] [--rounds 3] [--workers 2 4]
    .venv/bin/python bench/bench_workers.py --servers ours --workers 1 2 [--pin-wrk]

Issue 11 asked whether gunicorn should replace the hand-made pre-fork supervisor unless a
measurement shows ours matters. For each worker count, three servers of the same gateway
configuration (decision log on, in front of a fixed-response upstream):

  ours                 ``nid-gateway serve --workers N`` (a SO_REUSEPORT socket per worker)
  gunicorn             ``gunicorn -k aiohttp.GunicornWebWorker -w N`` (one shared socket)
  gunicorn reuse-port  the same with ``--reuse-port`` (a socket per worker)

gunicorn's workers build the app with bench/gunicorn_app.py, which returns our
``GatewayRunner``: the request handler, deadlines and limits are the same in all three.
Load: ``wrk -t2 -c64`` (keep-alive) posting the seed notification with a valid token.

The upstream is nginx answering a fixed JSON body (one process, pinned to the last core):
~0.03 ms CPU per request, so the workers are what the load measures. ``--upstream
aiohttp`` keeps the earlier one (bench/upstream.py, ~0.2 ms per request: on 2 cores it takes
a third of a core the second worker needs). The workers are not pinned (they need every
core); wrk is not either, unless ``--pin-wrk`` puts it on the upstream's core.
Each server is measured once all its workers answer (see :func:`wait_for_workers`).
``--rounds`` interleaved rounds, median req/s per server, ratio to ``ours`` at the same N.
For ``ours`` it also prints each worker's cores during the run (how the kernel spread the
connections), the largest worker's RSS and PSS after it, the cores wrk and the upstream
used, and two ceilings: what two processes of a pure CPU loop get here over one (the host's
load), and what the CPU per request allows on the host's cores, with wrk and the upstream
on the same cores: with W ms in a worker and O ms in wrk + upstream per request, one worker
runs at most 1/W req/s (one core) and any number at most C/(W + O) on C cores, so on 2 cores
two workers reach at most 2W/(W + O) times one.
Needs wrk. Bounded: about rounds x 3 x len(workers) x (duration + 10) seconds.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import shutil
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


UPSTREAM_ANSWER = '{"data":{"zendNotificatie":{"notificatieID":"bench-1"}}}'
"""What bench/upstream.py answers: the same for both upstreams."""

NGINX_UPSTREAM_CONF = """\
daemon off;
master_process off;
worker_processes 1;
error_log {tmp}/nginx-upstream-error.log error;
pid {tmp}/nginx-upstream.pid;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    keepalive_requests 10000000;
    client_body_temp_path {tmp}/nginx-upstream-body;
    server {{
        listen 127.0.0.1:{port};
        location = /graphql {{
            default_type application/json;
            return 200 '{answer}';
        }}
    }}
}}
"""
"""nginx as the fixed-response upstream: one process, keep-alive without a request limit
(the gateway's pool would otherwise reconnect every 1,000 requests), no access log."""


def upstream_command(kind: str, tmp: Path, port: int) -> list[str]:
    """The command of the *kind* upstream (``nginx`` or ``aiohttp``) on *port*."""
    if kind == "aiohttp":
        return [PYTHON, "bench/upstream.py", str(port)]
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(nginx).exists():
        raise SystemExit(
            "the nginx upstream needs nginx (apt-get install nginx), or --upstream aiohttp"
        )
    conf = tmp / "nginx-upstream.conf"
    conf.write_text(NGINX_UPSTREAM_CONF.format(tmp=tmp, port=port, answer=UPSTREAM_ANSWER))
    return [nginx, "-p", str(tmp), "-c", str(conf)]


WRK_PREFIX: list[str] = []
"""``taskset -c CORE`` with ``--pin-wrk``."""


def wrk_rps(wrk: str, url: str, script: Path, duration: int) -> tuple[float, int]:
    """(req/s, non-2xx answers) of one wrk run; its CPU time is added to :data:`WRK_CPU`."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run(
        [*WRK_PREFIX, wrk, "-t2", "-c64", f"-d{duration}s", "-s", str(script), url],
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
PER_REQUEST: dict[str, list[tuple[float, float, float]]] = {}
"""(worker, upstream, wrk) CPU ms per request in each measured run of ``ours``."""
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
                    (1000 * sum(split) / rps, 1000 * upstream / rps, 1000 * WRK_CPU[-1] / rps)
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
    parser.add_argument(
        "--upstream",
        choices=("nginx", "aiohttp"),
        default="nginx",
        help="the fixed-response upstream (default nginx: the cheaper, so the workers are "
        "the bottleneck; aiohttp: bench/upstream.py, as measured before 2026-12-04)",
    )
    parser.add_argument(
        "--pin-wrk", action="store_true", help="run wrk on the upstream's core (the last one)"
    )
    args = parser.parse_args()
    wrk = ensure_wrk()
    last_core = (os.cpu_count() or 1) - 1
    if args.pin_wrk:
        WRK_PREFIX.extend(["taskset", "-c", str(last_core)])
    with tempfile.TemporaryDirectory(prefix="bench-workers-") as tmp_name:
        tmp = Path(tmp_name)
        up_port = free_port()
        upstream = start(upstream_command(args.upstream, tmp, up_port), last_core, up_port)
        upstream_url = f"http://127.0.0.1:{up_port}/graphql"
        upstream_cpu = cpu_seconds(upstream.pid)
        UPSTREAM_PID.append(upstream.pid)
        started = time.monotonic()
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
        worker_ms = statistics.median(w for w, _, _ in PER_REQUEST[count])
        upstream_ms = statistics.median(u for _, u, _ in PER_REQUEST[count])
        wrk_ms = statistics.median(k for _, _, k in PER_REQUEST[count])
        print(
            f"ours --workers {count}: CPU per request {worker_ms:.3f} ms in the workers, "
            f"{upstream_ms:.3f} ms in the {args.upstream} upstream, {wrk_ms:.3f} ms in wrk "
            "(medians)"
        )
    if "1" in PER_REQUEST:
        # One worker's run: the worker alone on its core (the figure the ceiling is made of).
        worker_ms = statistics.median(w for w, _, _ in PER_REQUEST["1"])
        other_ms = statistics.median(u + k for _, u, k in PER_REQUEST["1"])
        cores = os.cpu_count() or 1
        bound = min(float(cores), cores * worker_ms / (worker_ms + other_ms))
        print(
            f"ceiling by CPU per request: wrk + upstream {other_ms:.3f} ms = "
            f"{other_ms / worker_ms:.2f}x a worker's {worker_ms:.3f} ms; on {cores} cores "
            f"shared with them, workers can reach at most {bound:.2f}x one worker"
        )
    print(
        f"ceiling: 2 processes of a pure CPU loop do {cpu_ceiling():.2f}x the work of one, "
        "on this host as loaded now"
    )
    print(
        f"cores used: wrk {statistics.median(WRK_CPU):.2f} (median per run"
        f"{', pinned to core ' + str(last_core) if args.pin_wrk else ''}), "
        f"{args.upstream} upstream {upstream_cores:.2f} "
        "(average over the whole benchmark, pauses included); "
        f"host has {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}"
    )
    if bad:
        raise SystemExit(f"{bad} requests were not answered 2xx: the measurement is not valid")


if __name__ == "__main__":
    main()
