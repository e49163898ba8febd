"""Where the gateway's per-request CPU goes, by Python function (py-spy, sampled).

    .venv/bin/python bench/profile_gateway.py [--run gateway] [--seconds 20] [--rate 500]
        [--top 40] [--prefix gateway/]

bench_instructions.py says how much one request costs in total; this says where. The
server runs as in bench_gateway.py (the same configuration and wrk script, wrk -c4 pinned
to core 1, the server to core 0) while ``py-spy record --nonblocking`` samples its stacks.
Samples whose innermost frame waits in the event loop's ``select`` are idle and dropped;
every other sample is the server working. Printed: per function, its share of the busy
samples *inclusive* (the function and everything it called) and *self* (its own lines), and
the same as microseconds per request (busy samples / rate x share / requests answered while
sampled). Time in system calls (the socket writes) counts here, unlike in callgrind's
instruction counts. Sampling is statistical: at 500 Hz for 20 s a 1 % share is ±0.2 %.
py-spy's sampling slows the server a little but evenly, so the shares hold.

``--run`` picks the server: ``gateway`` (the default), ``passthrough`` (plain aiohttp),
``leg`` (the pass-through on the gateway's forward leg), ``nolog`` (decision log off).
``--prefix`` keeps only frames whose file starts with it in the inclusive table (e.g.
``gateway/`` for our own code); the self table always lists all.
"""

from __future__ import annotations

import argparse
import collections
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from bench_gateway import (
    REPO,
    ROUTE,
    benchmark_runs,
    ensure_wrk,
    fixed_upstream,
    free_port,
    run_wrk,
    start,
    stop,
)

RUNS = {
    "gateway": "gateway (auth+analysis+policy)",
    "passthrough": "passthrough (aiohttp)",
    "leg": "passthrough (gateway's forward leg)",
    "nolog": "gateway, decision log off",
}
IDLE = ("EpollSelector.select (selectors.py)", "select (selectors.py)")
"""Innermost frames of a server waiting for work."""
LINE = re.compile(r":\d+\)$")


def py_spy() -> str:
    """py-spy next to this Python (the bench extra installs it)."""
    path = Path(sys.executable).with_name("py-spy")
    if not path.exists():
        raise SystemExit("py-spy not found: make venv (it is in the bench extra)")
    return str(path)


def record(run: str, seconds: int, rate: int, out: Path) -> tuple[int, float]:
    """Profile *run* under wrk for *seconds*; py-spy's raw stacks go to *out*."""
    wrk = ensure_wrk()
    with tempfile.TemporaryDirectory() as tmp, fixed_upstream() as upstream:
        port = free_port()
        label, cmd, script = next(
            r for r in benchmark_runs(Path(tmp), port, upstream) if r[0] == RUNS[run]
        )
        server = start(cmd, 0, port)
        try:
            url = f"http://127.0.0.1:{port}{ROUTE}"
            run_wrk(wrk, url, script, 3, 4)  # warm-up: caches and pools filled
            command = [py_spy(), "record", "-p", str(server.pid), "-r", str(rate)]
            command += ["-d", str(seconds), "--nonblocking", "-f", "raw", "-o", str(out)]
            spy = subprocess.Popen(
                command,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
            requests, rps, _ = run_wrk(wrk, url, script, seconds, 4)
            _, err = spy.communicate(timeout=seconds + 30)
            if spy.returncode != 0:
                raise SystemExit(f"py-spy failed: {err.decode(errors='replace')}")
        finally:
            stop(server)
    print(f"{label}: {requests} requests, {rps:.0f} req/s while sampled")
    return requests, rps


def shares(raw: Path) -> tuple[int, collections.Counter[str], collections.Counter[str]]:
    """(busy samples, inclusive counts, self counts) by function from py-spy's raw output."""
    inclusive: collections.Counter[str] = collections.Counter()
    own: collections.Counter[str] = collections.Counter()
    busy = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        frames = [LINE.sub(")", frame) for frame in stack.split(";")]
        if frames[-1] in IDLE:
            continue
        n = int(count)
        busy += n
        own[frames[-1]] += n
        for frame in set(frames):
            inclusive[frame] += n
    return busy, inclusive, own


def table(
    title: str, counts: collections.Counter[str], busy: int, per_request: float, top: int
) -> None:
    print(f"\n{title}\n  share  µs/req  function (file)")
    for frame, n in counts.most_common(top):
        print(f"{100 * n / busy:6.1f}%  {per_request * n / busy:6.1f}  {frame}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--run", choices=sorted(RUNS), default="gateway")
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--rate", type=int, default=500, help="samples per second")
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--prefix", default="", help="inclusive table: only files under this")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "stacks.txt"
        requests, _ = record(args.run, args.seconds, args.rate, raw)
        busy, inclusive, own = shares(raw)
    if not busy or not requests:
        raise SystemExit("no busy samples: did the server answer?")
    per_request = busy / args.rate / requests * 1e6
    print(f"{busy} busy samples: {per_request:.0f} µs of busy time per request")
    if args.prefix:
        inclusive = collections.Counter(
            {f: n for f, n in inclusive.items() if f"({args.prefix}" in f}
        )
    table("inclusive (the function and its callees)", inclusive, busy, per_request, args.top)
    table("self (the function's own lines)", own, busy, per_request, args.top)


if __name__ == "__main__":
    sys.path.insert(0, str(REPO / "bench"))
    main()
