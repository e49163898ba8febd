"""Start the gateway's listeners, serve until SIGINT/SIGTERM, stop gracefully: what one
serving process does, whether it is ``serve``, a ``--workers`` worker or the demo."""

from __future__ import annotations

import asyncio
import errno
import gc
import os
import signal
import socket
import ssl
import sys
from collections.abc import Callable, Coroutine
from typing import Any

from aiohttp import web

from gateway.config.model import GatewayConfig, TlsConfig

ADMIN_CONNECTIONS = 32
"""Connection limit of the admin listener (probes and scrapers, not clients)."""

GC_YOUNG_THRESHOLD = 10_000
"""Net new container objects between young-generation collections (CPython's default: 700)."""


def build_ssl_context(tls: TlsConfig) -> ssl.SSLContext:
    """Server TLS context; requests client certificates when ``client_ca_file`` is set."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(str(tls.cert_file), str(tls.key_file))
    if tls.client_ca_file is not None:
        context.load_verify_locations(cafile=str(tls.client_ca_file))
        context.verify_mode = ssl.CERT_REQUIRED if tls.require_client_cert else ssl.CERT_OPTIONAL
    return context


class ListenError(Exception):
    """A listen address cannot be bound (in use, not local, privileged): one line for the
    operator instead of a traceback. ``fix`` says what to change when the command's own
    advice (another ``--port``) does not apply."""

    def __init__(self, message: str, fix: str | None = None) -> None:
        super().__init__(message)
        self.fix = fix

    @classmethod
    def of(cls, exc: OSError, host: str, port: int, fix: str | None = None) -> ListenError:
        if exc.errno == errno.EADDRINUSE:
            return cls(f"port {port} is in use", fix)
        return cls(f"cannot listen on {host}:{port}: {exc.strerror}", fix)


def listen_socket(host: str, port: int) -> socket.socket:
    """The public listener's socket, bound before the gateway is built: a busy port is
    reported at once (:class:`ListenError`), and with port 0 the bound port is known before
    the configuration that derives its public URL from the port is loaded."""
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        return socket.create_server((host, port), family=family)
    except OSError as exc:
        raise ListenError.of(exc, host, port) from None


def run(main: Callable[[], Coroutine[Any, Any, int]]) -> int:
    """Run *main* in a new event loop; its exit code, or 130 on Ctrl-C before the handlers."""
    try:
        return asyncio.run(main())
    except KeyboardInterrupt:
        return 130


async def wait_for_stop() -> None:
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
    config: GatewayConfig,
    host: str,
    port: int,
    *,
    reuse_port: bool = False,
    sock: socket.socket | None = None,
) -> list[web.AppRunner]:
    """Build the gateway app for *config* and start listening (on *sock* when given: see
    :func:`listen_socket`).

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
    ssl_context = build_ssl_context(tls) if tls else None
    reuse = reuse_port or None
    site: web.BaseSite = (
        web.SockSite(runner, sock, ssl_context=ssl_context)
        if sock is not None
        else web.TCPSite(runner, host, port, ssl_context=ssl_context, reuse_port=reuse)
    )
    await _start_site(site, host, port)
    admin = config.server.admin
    if admin is not None:
        admin_runner = make_runner(create_admin_app(app), config, max_connections=ADMIN_CONNECTIONS)
        await admin_runner.setup()
        runners.append(admin_runner)
        admin_site = web.TCPSite(admin_runner, admin.host, admin.port, reuse_port=reuse)
        await _start_site(admin_site, admin.host, admin.port, "change server.admin.port")
    settle_heap()
    return runners


async def _start_site(site: web.BaseSite, host: str, port: int, fix: str | None = None) -> None:
    try:
        await site.start()
    except OSError as exc:
        raise ListenError.of(exc, host, port, fix) from None


def settle_heap() -> None:
    """Once serving: freeze what start-up built and collect the young generation less often.

    Everything loaded at start (config, compiled policies, schema, keys, libraries: ~70,000
    objects) lives as long as the process; ``gc.freeze`` takes it out of every later full
    collection. A request allocates and frees a few hundred objects without reference
    cycles, so CPython's default young threshold (700) ran a collection every ~20 requests
    for nothing. Measured under load: GC time fell from ~30 µs to ~1 µs per request.

    The collector is switched on here: ``nid-gateway`` starts with it off
    (:func:`gateway.cli.main`). No collection before the freeze: it walked every tracked
    object (~116,000; ~50 ms CPU of every start, measured on the loaded 2-core host) to
    free ~1,900 objects of libraries' reference cycles (argparse, graphql-core's schema
    validation), which now stay frozen; the gateway's own YAML reader leaves none
    (tests/config/test_yamlsource.py).
    """
    gc.freeze()
    _young, middle, old = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, middle, old)
    gc.enable()
    release_free_heap()


def release_free_heap() -> None:
    """Give the C heap's free pages back to the system (glibc's ``malloc_trim``).

    Start-up frees what reading the configuration and policies built (YAML nodes, schema
    checks, pydantic's intermediate data) in the middle of the heap, where glibc keeps it:
    ~3 MB of RSS a process would otherwise carry while serving. Elsewhere (musl, macOS)
    there is no such call and nothing is done.
    """
    import ctypes

    try:
        trim = ctypes.CDLL(None).malloc_trim
    except (AttributeError, OSError):
        return
    trim(0)


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


async def serve_until_stopped(
    config: GatewayConfig, host: str, *, reuse_port: bool, sock: socket.socket | None = None
) -> int:
    """Start the gateway, announce its listeners on stderr (with the port actually bound),
    serve until SIGINT/SIGTERM, then stop gracefully; returns the exit code (0)."""
    runners = await start_gateway(
        config, host, config.server.port, reuse_port=reuse_port, sock=sock
    )
    scheme = "https" if config.server.tls else "http"
    port = runners[0].addresses[0][1]  # the port bound (--port 0 asked for any)
    # One write per line: the workers share stderr, and print() writes the text and the
    # newline separately, so lines of two workers could run together.
    lines = f"nid-gateway listening on {scheme}://{host}:{port} (pid {os.getpid()})\n"
    if config.server.admin is not None:
        admin = config.server.admin
        lines += f"nid-gateway admin listener on http://{admin.host}:{admin.port}\n"
    sys.stderr.write(lines)
    sys.stderr.flush()
    try:
        await wait_for_stop()
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
