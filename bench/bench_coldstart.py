"""Cold start: time from process start to the first ``200`` on ``/healthz``.

    .venv/bin/python bench/bench_coldstart.py [--runs 7] [--what serve demo]
    .venv/bin/python bench/bench_coldstart.py --instructions [--what serve]

Issue 17 targets a median of at most 1.0 s. For each run a fresh process is started
(``nid-gateway serve`` with bench_gateway.py's production-like configuration: one GraphQL
route, the authorization server, JSON decision log; or ``nid-gateway demo`` with all its
routes and example servers; both on a free port) and ``/healthz`` is polled every 5 ms over a new
connection until it answers 200; the time from just before ``Popen`` to that answer is one
sample, with the CPU time the process had used by then (user + system, from
``/proc/PID/stat``): on a shared, loaded host the wall time mostly measures the other
tenants, the CPU time much less so. The process is then stopped with SIGTERM. Kinds are
interleaved run by run, so a load change on the host hits both alike. Prints every sample
and the medians per kind.

The gateway's bytecode is compiled first (``compileall``), as ``pip install`` compiles an
installed package: with ``PYTHONDONTWRITEBYTECODE`` set (the container image sets it, and so
may a developer's shell) an editable checkout is otherwise compiled anew at every start,
~0.4 s that no deployment pays.

``--instructions`` runs each kind once under ``valgrind --tool=callgrind`` and prints the
instructions it executed from process start to the first ``200`` on ``/healthz`` (a dump
is taken at that answer; the polling costs the process nothing until it listens, then one
request). Unlike wall or CPU seconds this does not move with the host's load: two runs of
the same code differ by well under 1 %, so decide start-up changes by it.

Where the time goes: ``.venv/bin/python -X importtime -m gateway.cli serve ...`` (stderr)
lists every import with its own and cumulative microseconds.
"""

from __future__ import annotations

import argparse
import http.client
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_gateway import gateway_config

REPO = Path(__file__).resolve().parent.parent
CLI = str(Path(sys.executable).with_name("nid-gateway"))


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def command(what: str, port: int, data_dir: Path, config: Path) -> list[str]:
    """The command line of one *what* (serve or demo) on *port*."""
    if what == "serve":
        return [CLI, "serve", "--config", str(config), "--port", str(port)]
    return [CLI, "demo", "--port", str(port), "--log-format", "json", "--data-dir", str(data_dir)]


def healthz(port: int) -> bool:
    """True when ``GET /healthz`` answers 200 now."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
    try:
        conn.request("GET", "/healthz")
        return conn.getresponse().status == 200
    except OSError:
        return False
    finally:
        conn.close()


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds *pid* has used so far (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_for_healthz(
    proc: subprocess.Popen[bytes], what: str, port: int, started: float, timeout: float, poll: float
) -> None:
    """Poll /healthz every *poll* seconds until it answers 200; stop the benchmark with a
    message when *proc* exits first or *timeout* seconds pass since *started*."""
    while not healthz(port):
        if proc.poll() is not None:
            raise SystemExit(f"{what} exited with {proc.returncode} before /healthz")
        if time.perf_counter() - started > timeout:
            raise SystemExit(f"{what}: no 200 on /healthz within {timeout} s")
        time.sleep(poll)


def stop(proc: subprocess.Popen[bytes], grace: float) -> None:
    """SIGTERM, then SIGKILL when *proc* has not exited within *grace* seconds."""
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def one_run(what: str, config: Path, timeout: float = 30.0) -> tuple[float, float]:
    """(wall seconds, CPU seconds) from start to the first 200 on /healthz for one fresh
    *what* process."""
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="coldstart-") as tmp:
        started = time.perf_counter()
        proc = subprocess.Popen(
            command(what, port, Path(tmp), config),
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={**os.environ, "TMPDIR": tmp},
        )
        try:
            wait_for_healthz(proc, what, port, started, timeout, 0.005)
            return time.perf_counter() - started, cpu_seconds(proc.pid)
        finally:
            stop(proc, 15)


def one_instructions_run(what: str, config: Path, timeout: float = 300.0) -> int:
    """Instructions *what* executed from its start to the first 200 on /healthz, counted by
    callgrind (a dump taken at that answer)."""
    from bench_instructions import callgrind_total, ensure_valgrind

    valgrind, control = ensure_valgrind()
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="coldstart-") as tmp:
        out = Path(tmp) / "callgrind.out"
        proc = subprocess.Popen(
            [
                valgrind,
                "--tool=callgrind",
                f"--callgrind-out-file={out}",
                *command(what, port, Path(tmp), config),
            ],
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={**os.environ, "TMPDIR": tmp},
        )
        started = time.perf_counter()
        try:
            wait_for_healthz(proc, what, port, started, timeout, 0.05)
            # callgrind_control finds the process by the vgdb pipes in its TMPDIR.
            dumped = subprocess.run(
                [control, "--dump", str(proc.pid)],
                capture_output=True,
                text=True,
                env={**os.environ, "TMPDIR": tmp},
            )
            total = callgrind_total(out)
            if dumped.returncode or not total:
                raise SystemExit(f"callgrind_control --dump failed: {dumped.stdout}{dumped.stderr}")
            return total
        finally:
            stop(proc, 60)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--what", nargs="+", choices=("serve", "demo"), default=["serve", "demo"])
    parser.add_argument(
        "--instructions",
        action="store_true",
        help="one run of each under callgrind: instructions to the first 200 (load-independent)",
    )
    args = parser.parse_args()
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(REPO / "gateway")], check=True)
    if args.instructions:
        with tempfile.TemporaryDirectory(prefix="coldstart-config-") as tmp:
            config = gateway_config(Path(tmp), free_port(), "http://127.0.0.1:9/graphql", True)
            for what in args.what:
                total = one_instructions_run(what, config)
                print(f"{what:6} instructions to the first 200: {total / 1e6:,.0f}M")
        return
    samples: dict[str, list[tuple[float, float]]] = {what: [] for what in args.what}
    with tempfile.TemporaryDirectory(prefix="coldstart-config-") as tmp:
        # The upstream is never called: /healthz does not depend on it.
        config = gateway_config(Path(tmp), free_port(), "http://127.0.0.1:9/graphql", True)
        for _ in range(args.runs):
            for what in args.what:
                samples[what].append(one_run(what, config))
    load = os.getloadavg()[0]
    for what, runs in samples.items():
        wall = statistics.median(w for w, _ in runs)
        cpu = statistics.median(c for _, c in runs)
        shown = " ".join(f"{w:.2f}/{c:.2f}" for w, c in runs)
        print(f"{what:6} median wall {wall:.3f} s, CPU {cpu:.3f} s  runs (wall/CPU): {shown}")
    print(f"load average at the end: {load:.2f}")


if __name__ == "__main__":
    main()
