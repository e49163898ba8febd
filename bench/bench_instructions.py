"""Instructions per request (callgrind) of the gateway against the plain aiohttp pass-through.

    .venv/bin/python bench/bench_instructions.py [--seconds 8] [--connections 4]
        [--runs gateway leg ...] [--keep DIR] [--traced]

The wall-clock benchmark (bench_gateway.py) reads CPU time on a shared machine whose speed
drifts by ±30 % between minutes. Instructions executed do not drift: this benchmark runs
each server under ``valgrind --tool=callgrind`` with instrumentation off during start-up
and warm-up (at least 500 answered requests, bounded at 120 s: a fixed 3 s counted nothing
on a loaded host), switches it on for a fixed load from wrk, and divides the instructions
the server executed by the requests wrk completed. The ratio passthrough/gateway is the
throughput the gateway would reach relative to the pass-through if both were CPU-bound and
an instruction cost the same everywhere (it does not quite: cache misses, system calls and
the kernel's share are not counted, so read it beside the wall-clock ratio).

Runs: the pass-through, the gateway (decision log on, the default), the gateway with the
decision log off, the gateway with a parse-cache miss on every request, and the gateway
with ``schema: none``, and the pass-through on the gateway's own forward leg (the gateway
minus it is the PEP's own work). ``--runs`` measures only the runs named (``passthrough``,
``gateway``, ``nolog``, ``miss``, ``noschema``, ``leg``); ``--keep DIR`` keeps each run's
callgrind output there (``DIR/<run>.out``, for ``callgrind_annotate``); ``--traced`` sends
a new ``traceparent`` and ``X-Request-ID`` with every request (a caller in a traced
network), in every run. Needs valgrind
and wrk (installed with apt-get when missing). Bounded: about 6 x (seconds + 12) seconds.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_gateway import (
    REPO,
    ROUTE,
    benchmark_runs,
    ensure_wrk,
    fixed_upstream,
    free_port,
    run_wrk,
    stop,
    wait_for_port,
)


def ensure_valgrind() -> tuple[str, str]:
    """Paths of valgrind and callgrind_control (installed with apt-get when missing)."""
    if not shutil.which("valgrind"):
        print("valgrind not found: installing with apt-get", file=sys.stderr)
        subprocess.run(["apt-get", "update", "-qq"], check=True)
        subprocess.run(
            ["apt-get", "install", "-y", "-qq", "valgrind"],
            check=True,
            env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
        )
    valgrind, control = shutil.which("valgrind"), shutil.which("callgrind_control")
    if not valgrind or not control:
        raise SystemExit("valgrind is required (apt-get install valgrind)")
    return valgrind, control


def callgrind_total(out: Path) -> int:
    """The instruction total of the last dump written under *out* (``out``, ``out.1``, ...)."""
    total = 0
    for dump in sorted(out.parent.glob(out.name + "*")):
        for line in dump.read_text().splitlines():
            if line.startswith(("summary:", "totals:")):
                total = max(total, int(line.split()[1]))
    return total


def measure(
    cmd: list[str],
    port: int,
    url: str,
    script: Path,
    seconds: int,
    connections: int,
    tools: tuple[str, str, str],
    out: Path,
) -> tuple[int, float]:
    """(requests, instructions per request) of the server *cmd* under callgrind."""
    valgrind, control, wrk = tools
    server = subprocess.Popen(
        [
            "taskset",
            "-c",
            "0",
            valgrind,
            "--tool=callgrind",
            "--instr-atstart=no",
            f"--callgrind-out-file={out}",
            *cmd,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=REPO,
    )
    try:
        wait_for_port(port, timeout=180.0)
        warm_up(wrk, url, script, connections)  # not counted
        subprocess.run([control, "--instr=on", str(server.pid)], check=True, capture_output=True)
        requests, _rps, non_2xx = run_wrk(wrk, url, script, seconds, connections)
        subprocess.run([control, "--instr=off", str(server.pid)], check=True, capture_output=True)
        subprocess.run([control, "--dump", str(server.pid)], check=True, capture_output=True)
    finally:
        stop(server)
    if non_2xx:
        raise SystemExit(f"{non_2xx} requests were not answered 2xx: the measurement is not valid")
    if requests < MIN_COUNTED:
        raise SystemExit(
            f"only {requests} requests in the counted {seconds} s: the host is too loaded for "
            "a valid figure (raise --seconds)"
        )
    return requests, callgrind_total(out) / requests


WARM_UP_REQUESTS = 500
"""Requests a server under callgrind answers before counting starts: the parse cache,
token cache and connection pools are warm, and callgrind has translated the hot code."""
WARM_UP_BOUND = 120
"""Seconds of warm-up at most (a fixed 3 s counted 0 requests on a loaded host)."""
MIN_COUNTED = 20
"""Fewer requests in the counted run make the per-request figure mostly noise."""


def warm_up(wrk: str, url: str, script: Path, connections: int) -> int:
    """Load the server in 3-second rounds until it has answered :data:`WARM_UP_REQUESTS`
    (or :data:`WARM_UP_BOUND` seconds passed: then exit, no valid figure is possible)."""
    done = 0
    deadline = time.monotonic() + WARM_UP_BOUND
    while done < WARM_UP_REQUESTS:
        if time.monotonic() > deadline:
            raise SystemExit(
                f"warm-up answered only {done} requests in {WARM_UP_BOUND} s: host too loaded"
            )
        try:
            requests, _rps, _non_2xx = run_wrk(wrk, url, script, 3, connections)
        except subprocess.CalledProcessError:
            # wrk fails outright when no connection got an answer yet (a server under
            # callgrind on a loaded host can take that long): try again until the bound.
            continue
        done += requests
    return done


RUNS = ("passthrough", "gateway", "nolog", "miss", "noschema", "leg")
"""Short names of :func:`bench_gateway.benchmark_runs`' runs, in its order."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=int, default=8, help="counted load per run")
    parser.add_argument("--connections", type=int, default=4, help="wrk connections")
    parser.add_argument(
        "--runs", nargs="+", choices=RUNS, default=list(RUNS), help="the runs to measure"
    )
    parser.add_argument(
        "--keep", type=Path, help="keep each run's callgrind output in this directory"
    )
    parser.add_argument(
        "--traced",
        action="store_true",
        help="a new traceparent and X-Request-ID on every request",
    )
    args = parser.parse_args()
    if args.keep is not None:
        args.keep.mkdir(parents=True, exist_ok=True)
    valgrind, control = ensure_valgrind()
    tools = (valgrind, control, ensure_wrk())
    rows: dict[str, tuple[str, int, float]] = {}
    with (
        tempfile.TemporaryDirectory(prefix="bench-instructions-") as tmp_name,
        fixed_upstream() as upstream_url,
    ):
        tmp = Path(tmp_name)
        port = free_port()
        url = f"http://127.0.0.1:{port}{ROUTE}"
        runs = dict(zip(RUNS, benchmark_runs(tmp, port, upstream_url, args.traced), strict=True))
        for name in RUNS:
            if name not in args.runs:
                continue
            label, cmd, script = runs[name]
            out = (args.keep or tmp) / f"{name}.out"
            for old in out.parent.glob(out.name + "*"):
                old.unlink()
            requests, per_request = measure(
                cmd, port, url, script, args.seconds, args.connections, tools, out
            )
            rows[name] = (label, requests, per_request)

    print(f"{'run':34} {'requests':>9} {'instructions/request':>21}")
    for label, requests, per_request in rows.values():
        print(f"{label:34} {requests:9d} {per_request / 1000:20.0f}k")
    if len(rows) != len(RUNS):
        return
    base, gateway, no_log, miss, no_schema, own_client = (row[2] for row in rows.values())
    print(f"\nratio by instructions (passthrough/gateway): {base / gateway:.2f} (target >= 1.0)")
    print(
        f"gateway's own work: {(gateway - base) / 1000:.0f}k instructions/request "
        f"(decision log {(gateway - no_log) / 1000:.0f}k, "
        f"parse-cache miss adds {(miss - gateway) / 1000:.0f}k, "
        f"schema validation {(gateway - no_schema) / 1000:.0f}k)"
    )
    print(
        f"the PEP's own work (gateway - pass-through on its forward leg): "
        f"{(gateway - own_client) / 1000:.0f}k instructions/request (target <= 200k); "
        f"ratio passthrough/gateway on that leg: {own_client / gateway:.2f}"
    )


if __name__ == "__main__":
    main()
