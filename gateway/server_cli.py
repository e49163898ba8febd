"""``nid-gateway serve`` and ``nid-gateway demo``: run the gateway (and, for the demo, the
bundled example resource servers) until Ctrl-C / SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import gc
import json
import os
import shlex
import shutil
import signal
import ssl
import sys
import tempfile
import traceback
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from aiohttp import web

from gateway.config import ConfigError, load_config
from gateway.config.model import GatewayConfig, TlsConfig

DEMO_CONFIG = Path("config") / "demo" / "gateway.yaml"
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
"""= gateway.observability.metrics.MULTIPROC_ENV; not imported from there, because that
imports prometheus_client, which reads the variable when first imported."""


def register(sub: Any) -> None:
    """Add ``serve`` and ``demo`` to the ``nid-gateway`` parser."""
    serve = sub.add_parser("serve", help="run the gateway and authorization server as configured")
    serve.add_argument("--config", required=True, type=Path, help="gateway.yaml")
    serve.add_argument("--host", help="listen address (default: server.host)")
    serve.add_argument("--port", type=int, help="listen port (default: server.port)")
    serve.add_argument(
        "--workers", type=int, default=1, help="processes sharing the port (SO_REUSEPORT)"
    )
    serve.add_argument("--log-format", choices=("json", "console"), help="override log_format")
    serve.set_defaults(handler=_serve)

    demo = sub.add_parser(
        "demo", help="run the demo: gateway + example resource servers on 127.0.0.1"
    )
    demo.add_argument("--port", type=int, default=8080, help="gateway port (default 8080)")
    demo.add_argument(
        "--upstream", help="forward every demo route to URL instead of the example servers"
    )
    demo.add_argument("--config", type=Path, help=argparse.SUPPRESS)
    demo.set_defaults(handler=_demo)


# -- shared -------------------------------------------------------------------------------
def build_ssl_context(tls: TlsConfig) -> ssl.SSLContext:
    """Server TLS context; requests client certificates when ``client_ca_file`` is set."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(str(tls.cert_file), str(tls.key_file))
    if tls.client_ca_file is not None:
        context.load_verify_locations(cafile=str(tls.client_ca_file))
        context.verify_mode = ssl.CERT_REQUIRED if tls.require_client_cert else ssl.CERT_OPTIONAL
    return context


async def _wait_for_stop() -> None:
    """Return on SIGINT or SIGTERM (Ctrl-C stops everything cleanly)."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


async def start_gateway(
    config: GatewayConfig, host: str, port: int, *, reuse_port: bool = False
) -> list[web.AppRunner]:
    """Build the gateway app for *config* and start listening.

    Returns the runners to clean up, in order of start: the public listener, then the admin
    listener when ``server.admin`` is set. Clean them up in reverse order.
    """
    from gateway.app import create_app  # after PROMETHEUS_MULTIPROC_DIR is set
    from gateway.observability.http import create_admin_app

    app = await create_app(config)
    runner = make_runner(app, config)
    await runner.setup()
    runners: list[web.AppRunner] = [runner]
    tls = config.server.tls
    site = web.TCPSite(
        runner,
        host,
        port,
        ssl_context=build_ssl_context(tls) if tls else None,
        reuse_port=reuse_port or None,
    )
    await site.start()
    admin = config.server.admin
    if admin is not None:
        admin_runner = make_runner(create_admin_app(app), config, max_connections=ADMIN_CONNECTIONS)
        await admin_runner.setup()
        runners.append(admin_runner)
        reuse = reuse_port or None
        await web.TCPSite(admin_runner, admin.host, admin.port, reuse_port=reuse).start()
    settle_heap()
    return runners


ADMIN_CONNECTIONS = 32
"""Connection limit of the admin listener (probes and scrapers, not clients)."""


GC_YOUNG_THRESHOLD = 10_000
"""Net new container objects between young-generation collections (CPython's default: 700)."""


def settle_heap() -> None:
    """Once serving: freeze what start-up built and collect the young generation less often.

    Everything loaded at start (config, compiled policies, schema, keys, libraries: ~70,000
    objects) lives as long as the process; ``gc.freeze`` takes it out of every later full
    collection. A request allocates and frees a few hundred objects without reference
    cycles, so CPython's default young threshold (700) ran a collection every ~20 requests
    for nothing. Measured under load: GC time fell from ~30 µs to ~1 µs per request.
    """
    gc.collect()
    gc.freeze()
    _young, middle, old = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, middle, old)


def make_runner(
    app: web.Application, config: GatewayConfig, *, max_connections: int | None = None
) -> web.AppRunner:
    """The runner for *app*: client deadlines and the connection limit of ``server``, the
    shutdown grace, and :class:`GatewayAccessLogger` when ``observability.access_log`` is on
    (else no access log: the decision events already record every PEP request)."""
    from gateway.server.runner import GatewayRunner, connection_limit

    access_log_class = None
    if config.observability.access_log:
        from gateway.observability.http import GatewayAccessLogger

        access_log_class = GatewayAccessLogger
    server = config.server
    return GatewayRunner(
        app,
        deadlines=server.timeouts,
        max_connections=max_connections or connection_limit(config),
        shutdown_timeout=server.shutdown_grace_seconds,
        access_log_class=access_log_class,
    )


def _run(main: Callable[[], Coroutine[Any, Any, int]]) -> int:
    try:
        return asyncio.run(main())
    except KeyboardInterrupt:
        return 130


# -- serve ----------------------------------------------------------------------------------
def _load(args: argparse.Namespace, **overrides: Any) -> GatewayConfig | None:
    try:
        config = load_config(args.config, **overrides)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return None
    fmt = getattr(args, "log_format", None)
    if fmt:
        config = dataclasses.replace(
            config, observability=dataclasses.replace(config.observability, log_format=fmt)
        )
    return config


def _serve(args: argparse.Namespace) -> int:
    if args.workers < 1:
        print("error: --workers must be at least 1", file=sys.stderr)
        return 2
    if args.workers == 1:
        return _serve_config(args)
    # Metrics of all workers are aggregated by prometheus_client's multiprocess mode. The
    # directory is set before the configuration (and anything that imports
    # prometheus_client) is loaded, and removed when the last worker has exited. TMPDIR
    # moves it (e.g. to a tmpfs volume when the root file system is read-only).
    metrics_dir = tempfile.mkdtemp(prefix="nid-gateway-metrics-")
    os.environ[MULTIPROC_ENV] = metrics_dir
    try:
        return _serve_config(args)
    finally:
        # Only the parent gets here: workers leave through os._exit.
        shutil.rmtree(metrics_dir, ignore_errors=True)


def _serve_config(args: argparse.Namespace) -> int:
    config = _load(args, port=args.port)
    if config is None:
        return 2
    if args.workers > 1 and config.server.port == 0:
        print("error: --workers needs a fixed port (server.port or --port)", file=sys.stderr)
        return 2
    host = args.host or config.server.host
    from gateway.authserver.keys import KeyStore, KeyStoreError

    try:
        # Load (and in the demo, generate) keys once before any fork, so workers agree.
        KeyStore.load(config)
    except KeyStoreError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.workers == 1:
        return _run(lambda: _serve_one(config, host, reuse_port=False))
    return _serve_many(config, host, args.workers)


async def _serve_one(config: GatewayConfig, host: str, *, reuse_port: bool) -> int:
    runners = await start_gateway(config, host, config.server.port, reuse_port=reuse_port)
    scheme = "https" if config.server.tls else "http"
    # One write per line: the workers share stderr, and print() writes the text and the
    # newline separately, so lines of two workers could run together.
    lines = f"nid-gateway listening on {scheme}://{host}:{config.server.port} (pid {os.getpid()})\n"
    if config.server.admin is not None:
        admin = config.server.admin
        lines += f"nid-gateway admin listener on http://{admin.host}:{admin.port}\n"
    sys.stderr.write(lines)
    sys.stderr.flush()
    try:
        await _wait_for_stop()
    finally:
        await stop_gateway(runners, config.server.shutdown_grace_seconds)
    return 0


async def stop_gateway(runners: list[web.AppRunner], grace: float) -> None:
    """Graceful stop: stop listening, let in-flight requests finish within *grace* seconds
    (then cancel them), run the apps' clean-up (audit file flushed and closed), and write
    the log lines still queued."""
    from gateway.observability.logs import flush_pending, get_logger

    log = get_logger("gateway.server")
    log.info("shutdown_started", grace_seconds=grace)
    for runner in reversed(runners):
        await runner.cleanup()
    log.info("shutdown_complete")
    flush_pending()


_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def _serve_many(config: GatewayConfig, host: str, workers: int) -> int:
    """Fork *workers* processes that share the port through SO_REUSEPORT and supervise them.

    SIGINT/SIGTERM to this process is forwarded to every worker; it returns when all have
    exited. A worker that dies on its own stops the others and makes the exit code 1, so
    the service manager (systemd, Docker, Kubernetes) restarts the whole service instead of
    running on with fewer workers.
    """
    children: set[int] = set()
    stopping = False

    def forward(_signum: int, _frame: Any) -> None:
        nonlocal stopping
        stopping = True
        for child in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signal.SIGTERM)

    previous = {sig: signal.signal(sig, forward) for sig in _STOP_SIGNALS}
    parent = os.getpid()
    try:
        for _ in range(workers):
            if stopping:
                break
            # Blocked across the fork: the worker must never run the parent's handler, and
            # a signal arriving now is delivered to the parent once the pid is recorded.
            signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)
            pid = os.fork()
            if pid == 0:
                _worker(config, host, parent)  # never returns
            children.add(pid)
            signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOP_SIGNALS)
        status = 0
        while children:
            pid, wait_status = os.wait()
            children.discard(pid)
            code = os.waitstatus_to_exitcode(wait_status)
            if not stopping:
                print(
                    f"error: worker {pid} exited unexpectedly ({code}); stopping the others",
                    file=sys.stderr,
                    flush=True,
                )
                status = 1
                forward(signal.SIGTERM, None)
            elif code not in (0, 130, -signal.SIGTERM, -signal.SIGINT):
                status = 1
        return status
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _worker(config: GatewayConfig, host: str, parent: int) -> None:
    """Body of one forked worker: serve until SIGTERM, then leave with ``os._exit``."""
    code = 1
    try:
        for sig in _STOP_SIGNALS:
            signal.signal(sig, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOP_SIGNALS)
        _exit_with_parent(parent)
        code = _run(lambda: _serve_one(config, host, reuse_port=True))
    except BaseException:
        traceback.print_exc()
    finally:
        # os._exit skips interpreter shutdown: write the log lines still queued first.
        from gateway.observability.logs import flush_pending

        with contextlib.suppress(Exception):
            flush_pending()
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)


def _exit_with_parent(parent: int) -> None:
    """Linux: have the kernel send SIGTERM to this worker when the parent dies, so a killed
    (SIGKILL) parent leaves no orphan workers holding the port."""
    if sys.platform != "linux":
        return
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, int(signal.SIGTERM), 0, 0, 0)
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)


# -- demo -----------------------------------------------------------------------------------
def find_demo_config() -> Path | None:
    """``config/demo/gateway.yaml`` of the source tree (or of the current directory)."""
    for base in (Path(__file__).resolve().parents[1], Path.cwd()):
        candidate = base / DEMO_CONFIG
        if candidate.is_file():
            return candidate
    return None


def _demo(args: argparse.Namespace) -> int:
    path = args.config or find_demo_config()
    if path is None:
        print(f"error: {DEMO_CONFIG} not found (run from the source tree)", file=sys.stderr)
        return 2
    try:
        config = load_config(path, port=args.port, upstream=args.upstream)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return _run(lambda: _demo_main(config, bundled=args.upstream is None))


async def start_example_servers(config: GatewayConfig) -> tuple[GatewayConfig, list[web.AppRunner]]:
    """Start one example resource server per route on a free loopback port and point the
    routes at them; returns the new configuration and the runners to clean up."""
    from gateway.examples.resource_server import create_resource_server_app

    runners: list[web.AppRunner] = []
    routes = []
    for route in config.routes:
        name = route.deelnemer.name or f"{route.deelnemer.id_type} {route.deelnemer.id}"
        runner = web.AppRunner(
            create_resource_server_app(name), access_log=None, handle_signals=False
        )
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        runners.append(runner)
        port = runner.addresses[0][1]
        routes.append(dataclasses.replace(route, upstream=f"http://127.0.0.1:{port}/graphql"))
    return dataclasses.replace(config, routes=tuple(routes)), runners


async def _demo_main(config: GatewayConfig, *, bundled: bool) -> int:
    runners: list[web.AppRunner] = []
    try:
        if bundled:
            config, runners = await start_example_servers(config)
        runners += await start_gateway(config, config.server.host, config.server.port)
        print(demo_instructions(config), flush=True)
        await _wait_for_stop()
        print("\nstopping", file=sys.stderr)
    finally:
        for runner in reversed(runners):
            await runner.cleanup()
    return 0


SEED_003_EXAMPLE = Path(__file__).resolve().parent / "examples" / "seed_003_example.graphql"
"""The example of seed 003 (RFC0008) section 3.5, exactly as written (also a test fixture)."""
SEED_003_VARIABLES = SEED_003_EXAMPLE.with_name("seed_003_variables.json")


def seed_003_request(afzender_id: str = "62253778") -> dict[str, Any]:
    """Seed 003 example request: NIEUWE_INDICATIE_ZORGKANTOOR from KVK 62253778 to UZOVI 5151."""
    variables = json.loads(SEED_003_VARIABLES.read_text(encoding="utf-8"))
    variables["afzenderID"] = afzender_id
    return {
        "query": SEED_003_EXAMPLE.read_text(encoding="utf-8"),
        "operationName": "zendNotificatie",
        "variables": variables,
    }


def demo_instructions(config: GatewayConfig) -> str:
    """Paste-ready curl commands for the running demo."""
    base = config.public_url
    audience = f"{base}/deelnemers/uzovi/5151/graphql"
    scope = "organisaties/zorgkantoor/notificaties/notificatie:create"
    allowed = shlex.quote(json.dumps(seed_003_request()))
    refused = shlex.quote(json.dumps(seed_003_request(afzender_id="99999999")))
    lines = [
        f"nid-gateway demo on {base}  (Ctrl-C stops)",
        "",
        "routes:",
        *(f"  {r.path} -> {r.upstream}" for r in config.routes),
        "",
        "# 1. a token for the CIZ (client_secret_basic), to notify zorgkantoor 5151:",
        f"TOKEN=$(curl -s -u ciz:ciz-demo-secret {base}/auth/token \\",
        "  -d grant_type=client_credentials \\",
        f"  -d scope={scope} \\",
        f"  -d audience={audience} \\",
        "  | python3 -c 'import json,sys; print(json.load(sys.stdin)[\"access_token\"])')",
        "",
        "# 2. allowed: NIEUWE_INDICATIE_ZORGKANTOOR from KVK 62253778 to UZOVI 5151 (seed 003):",
        f'curl -s {audience} -H "Authorization: Bearer $TOKEN" \\',
        f"  -H 'Content-Type: application/json' -d {allowed}",
        "",
        "# 3. refused (400 afzender_id is not valid): afzenderID is not the caller's own KVK:",
        f'curl -s {audience} -H "Authorization: Bearer $TOKEN" \\',
        f"  -H 'Content-Type: application/json' -d {refused}",
        "",
    ]
    return "\n".join(lines)
