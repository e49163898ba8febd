"""Gateway throughput and CPU per request against a plain aiohttp pass-through proxy.

    .venv/bin/python bench/bench_gateway.py [--duration 6] [--rounds 3]

Runs, in one go and on the same machine state (each server pinned to core 0 with taskset;
wrk and the fixed-response upstream on core 1):

  (a) passthrough     bench/passthrough.py: plain aiohttp proxy, one shared ClientSession
  (b) gateway         the real app: token verification + GraphQL analysis + policy + forward
  (c) gateway, decision log off (observability.decision_log: false)
  (d) gateway, parse-cache miss (a unique comment in every query text)
  (e) gateway, schema: none; (f) the pass-through on the gateway's forward leg

Load: ``wrk -t1 -c32 -d<duration>s`` (keep-alive) posting the seed 003 notification with a
valid token; ``--rounds`` interleaved rounds, the median of each run kept. CPU µs per
request = the server process's utime+stime from /proc/<pid>/stat before/after, divided by
the requests wrk completed. Prints a table and the ratio
gateway/passthrough (target >= 1.0, issue 17). Needs ``wrk`` (installed with apt-get when missing).
Bounded: about rounds x 4 x (duration + 4) seconds (default 3 x 4 x 10 s).
``--nginx`` adds nginx as a plain reverse proxy in the same rounds (one process, keep-alive
to the same upstream): the floor a proxy of this kind costs here.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from gateway.authserver.signing_keys import KeyStore, generate_key  # noqa: E402
from gateway.authserver.tokens import issue_token  # noqa: E402
from gateway.config.loader import load_config  # noqa: E402

PYTHON = sys.executable
ROUTE = "/deelnemers/uzovi/5151/graphql"
SCOPE = "organisaties/zorgkantoor/notificaties/notificatie:create"
SEED_QUERY = (REPO / "tests" / "graphql" / "fixtures" / "seed_003_example.graphql").read_text()
SEED_VARIABLES = json.loads(
    (REPO / "tests" / "graphql" / "fixtures" / "seed_003_variables.json").read_text()
)
CLK_TCK = os.sysconf("SC_CLK_TCK")


@dataclass
class Result:
    name: str
    requests: int
    rps: float
    cpu_us: float
    non_2xx: int


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def ensure_wrk() -> str:
    found = shutil.which("wrk")
    if found:
        return found
    print("wrk not found: installing with apt-get", file=sys.stderr)
    subprocess.run(["apt-get", "update", "-qq"], check=True)
    subprocess.run(
        ["apt-get", "install", "-y", "-qq", "wrk"],
        check=True,
        env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
    )
    found = shutil.which("wrk")
    if not found:
        raise SystemExit("wrk is required (apt-get install wrk)")
    return found


def cpu_seconds(pid: int) -> float:
    """utime + stime of *pid* in seconds (fields 14 and 15 of /proc/<pid>/stat)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def wait_for_port(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise SystemExit(f"server on port {port} did not start")


def start(cmd: list[str], core: int, port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        ["taskset", "-c", str(core), *cmd],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=REPO,
    )
    wait_for_port(port)
    return proc


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def lua_string(text: str) -> str:
    return f"[==[{text}]==]"


def lua_script(path: Path, token: str, unique_queries: bool, traced: bool = False) -> Path:
    """A wrk script posting the seed notification (optionally with a unique query text, and
    with *traced* a new ``traceparent`` and ``X-Request-ID`` per request, as a caller in a
    traced network sends them)."""
    marker = "__BENCH_COUNTER__"
    query = SEED_QUERY + (f"\n# {marker}" if unique_queries else "")
    body = json.dumps(
        {"query": query, "variables": SEED_VARIABLES, "operationName": "zendNotificatie"}
    )
    lines = [
        'wrk.method = "POST"',
        'wrk.headers["Content-Type"] = "application/json"',
        f'wrk.headers["Authorization"] = "Bearer {token}"',
    ]
    if not unique_queries:
        lines.append(f"wrk.body = {lua_string(body)}")
    if unique_queries or traced:
        lines += [
            "local counter = 0",
            # Each wrk run (warm-up, measurement) gets values of its own: a counter restarting
            # at 1 would repeat the warm-up's, which are cache hits by then.
            "local run = os.time()",  # the runs start seconds apart
        ]
        if unique_queries:
            prefix, suffix = body.split(marker)
            lines += [
                f"local prefix = {lua_string(prefix)}",
                f"local suffix = {lua_string(suffix)}",
            ]
        lines += ["request = function()", "  counter = counter + 1"]
        if traced:
            lines += [
                '  wrk.headers["traceparent"] = string.format("00-4bf92f3577b34da6%08x%08x'
                '-00f067aa%08x-01", run % 4294967296, counter, counter)',
                '  wrk.headers["X-Request-ID"] = string.format("bench-%d-%d", run, counter)',
            ]
        if unique_queries:
            lines.append(
                "  return wrk.format(nil, nil, nil, prefix .. run .. '-' .. counter .. suffix)"
            )
        else:
            lines.append("  return wrk.format()")
        lines.append("end")
    path.write_text("\n".join(lines) + "\n")
    return path


def run_wrk(
    wrk: str, url: str, script: Path, duration: int, connections: int = 32
) -> tuple[int, float, int]:
    out = subprocess.run(
        [
            "taskset",
            "-c",
            "1",
            wrk,
            "-t1",
            f"-c{connections}",
            f"-d{duration}s",
            "-s",
            str(script),
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    requests = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    non_2xx_match = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return requests, rps, int(non_2xx_match.group(1)) if non_2xx_match else 0


def measure(name: str, wrk: str, pid: int, url: str, script: Path, duration: int) -> Result:
    run_wrk(wrk, url, script, 2)  # warm-up: caches, keep-alive pools, JIT-free but page-warm
    before = cpu_seconds(pid)
    requests, rps, non_2xx = run_wrk(wrk, url, script, duration)
    used = cpu_seconds(pid) - before
    return Result(name, requests, rps, used / max(requests, 1) * 1e6, non_2xx)


def median_result(name: str, samples: list[Result]) -> Result:
    """The run with the median CPU per request (its own req/s alongside)."""
    ordered = sorted(samples, key=lambda r: r.cpu_us)
    middle = ordered[len(ordered) // 2]
    return Result(
        name,
        sum(r.requests for r in samples),
        middle.rps,
        middle.cpu_us,
        sum(r.non_2xx for r in samples),
    )


def gateway_config(
    tmp: Path, port: int, upstream: str, decision_log: bool, validate: bool = True
) -> Path:
    keys = tmp / "keys"
    if not keys.is_dir():
        generate_key(keys, "ES256")
    shutil.copy(REPO / "config" / "demo" / "clients.yaml", tmp / "clients.yaml")
    public = f"http://127.0.0.1:{port}"
    data: dict[str, Any] = {
        "public_url": public,
        "issuer": public,
        "server": {"host": "127.0.0.1", "port": port},
        "authserver": {
            "enabled": True,
            "signing": {"keys_dir": "keys", "algorithm": "ES256"},
            "clients_file": "clients.yaml",
        },
        "tokens": {"trusted_issuers": [{"builtin": True}]},
        "scopes": {"zendNotificatie": "organisaties/{kind}/notificaties/notificatie:create"},
        "routes": [
            {
                "path": ROUTE,
                "upstream": upstream,
                "deelnemer": {"id_type": "UZOVI", "id": "5151", "kind": "zorgkantoor"},
                "policies": [str(REPO / "policies" / "iwlz")],
                # The default validates against the bundled schema; `none` measures what that
                # costs per request (docs/security.md says why it is on).
                **({} if validate else {"schema": "none"}),
            }
        ],
        "policy": {"watch": False},
        "observability": {"log_format": "json", "log_level": "info", "decision_log": decision_log},
    }
    path = tmp / f"gateway-{'log' if decision_log else 'nolog'}-{validate}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@contextmanager
def fixed_upstream() -> Iterator[str]:
    """The fixed-response upstream (pinned to core 1) for the time of the block: its URL."""
    up_port = free_port()
    upstream = start([PYTHON, "bench/upstream.py", str(up_port)], 1, up_port)
    try:
        yield f"http://127.0.0.1:{up_port}/graphql"
    finally:
        stop(upstream)


def benchmark_runs(
    tmp: Path, port: int, upstream_url: str, traced: bool = False
) -> list[tuple[str, list[str], Path]]:
    """(label, server command, wrk script) of the four runs every gateway benchmark compares:
    the pass-through, the gateway, the gateway with the decision log off, the gateway with a
    parse-cache miss per request, and the gateway with ``schema: none`` (no validation). All
    serve on *port* in front of *upstream_url*; with *traced* every request brings a new
    ``traceparent`` and ``X-Request-ID``."""
    config = load_config(gateway_config(tmp, port, upstream_url, True))
    token = issue_token(
        config, KeyStore.load(config), "ciz", [SCOPE], f"http://127.0.0.1:{port}{ROUTE}"
    )
    same = lua_script(tmp / "same.lua", token, unique_queries=False, traced=traced)
    unique = lua_script(tmp / "unique.lua", token, unique_queries=True, traced=traced)
    runs: list[tuple[str, list[str], Path]] = [
        ("passthrough (aiohttp)", [PYTHON, "bench/passthrough.py", str(port), upstream_url], same),
    ]
    for label, log_on, script, validate in (
        ("gateway (auth+analysis+policy)", True, same, True),
        ("gateway, decision log off", False, same, True),
        ("gateway, parse-cache miss", True, unique, True),
        ("gateway, schema: none", True, same, False),
    ):
        cfg = gateway_config(tmp, port, upstream_url, log_on, validate)
        # The product's own serving path, exactly as operators run it.
        runs.append((label, [PYTHON, "-m", "gateway.cli", "serve", "--config", str(cfg)], script))
    # Last, so the rows above keep their places: gateway minus this = the PEP's own work.
    runs.append(
        (
            "passthrough (gateway's forward leg)",
            [PYTHON, "bench/passthrough.py", str(port), upstream_url, "--client", "gateway"],
            same,
        )
    )
    return runs


NGINX_CONF = """\
daemon off;
master_process off;
worker_processes 1;
error_log {tmp}/nginx-error.log error;
pid {tmp}/nginx.pid;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/nginx-body;
    proxy_temp_path {tmp}/nginx-proxy;
    upstream backend {{ server {upstream}; keepalive 64; }}
    server {{
        listen 127.0.0.1:{port};
        location = {route} {{
            proxy_pass http://backend{path};
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }}
    }}
}}
"""
"""nginx as a plain reverse proxy (issue 17's physical floor): one process (no master, one
worker, like the single-process gateway), keep-alive to the upstream, no access log; the
gateway's route is forwarded to the upstream's path, as the pass-through does."""


def nginx_run(tmp: Path, port: int, upstream_url: str, script: Path) -> tuple[str, list[str], Path]:
    """The ``--nginx`` run: (label, command, wrk script) like :func:`benchmark_runs`'."""
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(nginx).exists():
        raise SystemExit("--nginx needs nginx (apt-get install nginx)")
    upstream, path = upstream_url.split("//", 1)[1].split("/", 1)
    conf = tmp / "nginx.conf"
    conf.write_text(
        NGINX_CONF.format(tmp=tmp, port=port, upstream=upstream, route=ROUTE, path="/" + path)
    )
    return ("nginx (reverse proxy)", [nginx, "-p", str(tmp), "-c", str(conf)], script)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=int, default=6, help="seconds per measurement")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (median)")
    parser.add_argument("--nginx", action="store_true", help="add nginx as a reverse proxy")
    args = parser.parse_args()
    wrk = ensure_wrk()
    with (
        tempfile.TemporaryDirectory(prefix="bench-gateway-") as tmp_name,
        fixed_upstream() as upstream_url,
    ):
        port = free_port()
        runs = benchmark_runs(Path(tmp_name), port, upstream_url)
        if args.nginx:
            runs.append(nginx_run(Path(tmp_name), port, upstream_url, runs[0][2]))
        url = f"http://127.0.0.1:{port}{ROUTE}"
        # Interleaved rounds, median per run: this machine is shared and noisy, and a
        # slow minute must not land on one configuration only.
        samples: dict[str, list[Result]] = {label: [] for label, _, _ in runs}
        for _ in range(args.rounds):
            for label, cmd, script in runs:
                server = start(cmd, 0, port)
                try:
                    samples[label].append(
                        measure(label, wrk, server.pid, url, script, args.duration)
                    )
                finally:
                    stop(server)
        results = [median_result(label, samples[label]) for label, _, _ in runs]

    print(f"{'run':34} {'requests':>9} {'req/s':>9} {'CPU µs/req':>11} {'non-2xx':>8}")
    for r in results:
        print(f"{r.name:34} {r.requests:9d} {r.rps:9.0f} {r.cpu_us:11.0f} {r.non_2xx:8d}")
    base, gateway = results[0], results[1]
    print(f"\nratio gateway/passthrough (req/s): {gateway.rps / base.rps:.2f} (target >= 1.0)")
    print(f"ratio by CPU per request (passthrough/gateway): {base.cpu_us / gateway.cpu_us:.2f}")
    print(f"extra CPU per request in the gateway: {gateway.cpu_us - base.cpu_us:.0f} µs")
    print(f"decision log costs: {results[1].cpu_us - results[2].cpu_us:.0f} µs/request")
    print(f"parse-cache miss costs: {results[3].cpu_us - results[1].cpu_us:.0f} µs/request")
    print(
        f"schema validation (on by default) costs: "
        f"{results[1].cpu_us - results[4].cpu_us:.0f} µs/request"
    )
    own = results[5]
    print(f"ratio gateway/passthrough on the gateway's forward leg: {gateway.rps / own.rps:.2f}")
    print(f"the PEP's own work: {gateway.cpu_us - own.cpu_us:.0f} µs/request (gateway - it)")
    if args.nginx:
        nginx = results[-1]
        print(
            f"nginx: {nginx.cpu_us:.0f} µs CPU/request, {nginx.rps:.0f} req/s; the gateway "
            f"{gateway.cpu_us / nginx.cpu_us:.1f}x its CPU per request"
        )
    if any(r.non_2xx for r in results):
        raise SystemExit("some requests were not answered 2xx: the measurement is not valid")


if __name__ == "__main__":
    main()
