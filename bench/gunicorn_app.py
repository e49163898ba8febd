"""The gateway as gunicorn would serve it: ``gunicorn bench.gunicorn_app:runner
-k aiohttp.GunicornWebWorker`` (for bench/bench_workers.py only; not a supported way to run).

aiohttp's worker accepts an async factory returning an ``AppRunner`` (aiohttp 3.14), so each
worker serves through our ``GatewayRunner``: the same ``GatewayRequestHandler`` (header and
body deadlines), connection limit and shutdown grace as ``serve``. What it does not get: the
admin listener, TLS from gateway.yaml, keys loaded once before the fork.
"""

from __future__ import annotations

import os
from pathlib import Path

from aiohttp import web

from gateway.config.loader import load_config
from gateway.serving.lifecycle import make_runner, settle_heap


async def runner() -> web.AppRunner:
    """Build the app from ``$NID_GATEWAY_CONFIG`` in this worker; our runner serves it."""
    from gateway.app import create_app  # after PROMETHEUS_MULTIPROC_DIR is set

    config = load_config(Path(os.environ["NID_GATEWAY_CONFIG"]))
    app = await create_app(config)
    settle_heap()  # as serve does once listening: measure the serving model, not GC tuning
    return make_runner(app, config)
