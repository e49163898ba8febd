"""``serve --workers N``: a pre-fork supervisor. N forked processes share the port through
SO_REUSEPORT; their metrics are aggregated by prometheus_client's multiprocess mode.

Why not gunicorn with aiohttp's ``GunicornWebWorker``: docs/operations.md, "Why not gunicorn
with aiohttp's worker" (the decision record). Measured (bench/bench_workers.py, 2026-12-03,
median req/s, gunicorn serving our GatewayRunner): 2 workers 737 ours, 695 gunicorn, 649
gunicorn --reuse-port; 4 workers 547, 451, 671; the rounds of one server spread ±40 %, so
throughput is a tie and the admin listener, TLS from gateway.yaml and keys loaded once
before the fork decide.
"""

from __future__ import annotations

import contextlib
import gc
import os
import shutil
import signal
import sys
import tempfile
import traceback
from collections.abc import Iterator
from typing import Any

from gateway.config.model import GatewayConfig
from gateway.serving.lifecycle import release_free_heap, run, serve_until_stopped

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
"""= gateway.observability.metrics.MULTIPROC_ENV; not imported from there, because that
imports prometheus_client, which reads the variable when first imported."""

_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextlib.contextmanager
def multiprocess_metrics_dir() -> Iterator[str]:
    """A fresh directory for prometheus_client's multiprocess mode, named in
    ``PROMETHEUS_MULTIPROC_DIR`` for this process and the workers it forks, and removed
    when the block ends (after the last worker has exited).

    Enter it before the configuration (and anything that imports prometheus_client) is
    loaded. TMPDIR moves it (e.g. to a tmpfs volume when the root file system is read-only).
    """
    metrics_dir = tempfile.mkdtemp(prefix="nid-gateway-metrics-")
    os.environ[MULTIPROC_ENV] = metrics_dir
    try:
        yield metrics_dir
    finally:
        # Only the parent gets here: workers leave through os._exit.
        shutil.rmtree(metrics_dir, ignore_errors=True)


def serve_workers(config: GatewayConfig, host: str, workers: int) -> int:
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

    share_before_fork(config)
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


def share_before_fork(config: GatewayConfig) -> None:
    """Import, in the supervisor, the modules every worker would import after the fork, load
    the GraphQL schemas its routes validate against (the largest objects a worker builds:
    each worker's :func:`~gateway.graphql.schema.load_schema` then finds them cached), then
    freeze the heap (no collection first: see
    :func:`gateway.serving.lifecycle.settle_heap`).

    The workers inherit the modules' pages copy-on-write instead of each importing its own
    copy (~220 modules: the app, the authorization server, metrics), and ``gc.freeze`` keeps
    the collector of every worker from writing to those objects' headers, which would copy
    the pages anyway. Measured in docs/benchmarks.md ("Workers").
    """
    import gateway.app
    import gateway.observability.http
    import gateway.server.runner  # noqa: F401  (imported for the workers)
    from gateway.graphql.schema import BUNDLED_SCHEMA, load_schema, route_schema

    load_schema(BUNDLED_SCHEMA)  # the central notification route's too
    for route in config.routes:
        if route.rest is None:
            route_schema(route)
    release_free_heap()
    gc.freeze()


def _worker(config: GatewayConfig, host: str, parent: int) -> None:
    """Body of one forked worker: serve until SIGTERM, then leave with ``os._exit``."""
    code = 1
    try:
        for sig in _STOP_SIGNALS:
            signal.signal(sig, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOP_SIGNALS)
        _exit_with_parent(parent)
        code = run(lambda: serve_until_stopped(config, host, reuse_port=True))
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
