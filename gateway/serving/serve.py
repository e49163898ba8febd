"""``nid-gateway serve``: run the gateway and authorization server as configured, in one
process or, with ``--workers N``, in N forked workers (:mod:`gateway.serving.workers`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from gateway.config.errors import ConfigError, LocatedError
from gateway.config.loader import load_config
from gateway.config.model import GatewayConfig
from gateway.observability.logs import LogFormat
from gateway.serving.lifecycle import ListenError, listen_socket, run, serve_until_stopped
from gateway.serving.workers import multiprocess_metrics_dir, serve_workers


def register(sub: Any) -> None:
    """Add ``serve`` to the ``nid-gateway`` parser."""
    serve = sub.add_parser("serve", help="run the gateway and authorization server as configured")
    serve.add_argument("--config", required=True, type=Path, help="gateway.yaml")
    serve.add_argument("--host", help="listen address (default: server.host)")
    serve.add_argument("--port", type=int, help="listen port (default: server.port)")
    serve.add_argument(
        "--workers", type=int, default=1, help="processes sharing the port (SO_REUSEPORT)"
    )
    serve.add_argument("--log-format", choices=("json", "console"), help="override log_format")
    serve.set_defaults(handler=_serve)


def _serve(args: argparse.Namespace) -> int:
    if args.workers < 1:
        print("error: --workers must be at least 1", file=sys.stderr)
        return 2
    if args.workers == 1:
        return _serve_config(args)
    # Set before the configuration (and anything that imports prometheus_client) is loaded.
    with multiprocess_metrics_dir():
        return _serve_config(args)


def _load(args: argparse.Namespace, **overrides: Any) -> GatewayConfig | None:
    try:
        config = load_config(args.config, **overrides)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return None
    return with_log_format(config, args.log_format)


def with_log_format(config: GatewayConfig, fmt: LogFormat | None) -> GatewayConfig:
    """*config* with ``observability.log_format`` set to *fmt* (``--log-format``), if given."""
    if not fmt:
        return config
    observability = config.observability.model_copy(update={"log_format": fmt})
    return config.model_copy(update={"observability": observability})


def _serve_config(args: argparse.Namespace) -> int:
    config = _load(args, port=args.port)
    if config is None:
        return 2
    if args.workers > 1 and config.server.port == 0:
        print("error: --workers needs a fixed port (server.port or --port)", file=sys.stderr)
        return 2
    host = args.host or config.server.host
    from gateway.authserver.signing_keys import KeyStore, KeyStoreError

    try:
        # Load (and in the demo, generate) keys once before any fork, so workers agree.
        KeyStore.load(config)
    except KeyStoreError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        if args.workers > 1:  # the supervisor loads the routes' schemas before the fork
            return serve_workers(config, host, args.workers)
        sock = listen_socket(host, config.server.port)
        if config.server.port == 0:  # public_url and audiences follow the port bound
            config = _load(args, port=sock.getsockname()[1])
            if config is None:
                return 2
        return run(lambda: serve_until_stopped(config, host, reuse_port=False, sock=sock))
    except LocatedError as exc:  # a policy set or the adresboek that does not load
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except ListenError as exc:
        print(f"error: {exc}: {exc.fix or 'pass --port N (or set server.port)'}", file=sys.stderr)
        return 2
