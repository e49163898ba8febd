"""``setup_observability``: the one entry point ``create_app`` calls first.

Every other room reports through the :class:`~gateway.observability.events.Observer` it returns
and registers readiness checks with :func:`~gateway.observability.health.add_check`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING

from aiohttp import web

from gateway.config.model import GatewayConfig
from gateway.observability.audit_trail import AuditWriter, per_process_path
from gateway.observability.events import Observer
from gateway.observability.http import METRICS_KEY, add_routes, count_unmatched
from gateway.observability.logs import configure_logging, get_logger
from gateway.observability.metrics import FLUSH_SECONDS, GatewayMetrics
from gateway.observability.observer import GatewayObserver

if TYPE_CHECKING:
    from gateway.observability.otel import DecisionSpanExporter


def setup_observability(
    app: web.Application, config: GatewayConfig, observer: Observer | None = None
) -> Observer:
    """Configure logging, add ``/metrics``, ``/healthz``, ``/readyz``; return the observer.

    Builds a :class:`GatewayObserver` (decision log, audit file when configured, metrics on a
    per-app registry or the multiprocess one, OTLP spans when configured) unless *observer*
    is given, in which case that one is returned and only logging, routes and request
    metrics are set up. Opening the audit file happens here: a bad path fails start-up.
    """
    obs = config.observability
    configure_logging(obs.log_format, obs.log_level)
    log = get_logger("gateway.observability")

    metrics = GatewayMetrics(
        routes=frozenset(r.path for r in config.routes),
        clients=frozenset(c.client_id for c in config.authserver.clients)
        if config.authserver is not None
        else frozenset(),
        issuers=frozenset(i.issuer for i in config.tokens.trusted_issuers),
    )
    app[METRICS_KEY] = metrics
    # Request metrics without a middleware (it would cost every request, issue 17): each
    # route's handler counts (http.counted, or the PEP's own counter), and this the rest.
    app.on_response_prepare.append(count_unmatched(metrics))
    add_routes(app, metrics=config.server.admin is None)

    if observer is None:
        audit = None
        if obs.audit is not None:
            path = obs.audit.path
            if metrics.multiprocess_dir is not None:
                path = per_process_path(path)
            audit = AuditWriter(obs.audit, path=path)
        observer = GatewayObserver(
            metrics, decision_log=obs.decision_log, audit=audit, spans=_span_exporter(config)
        )
        built = observer

        async def close_observer(_app: web.Application) -> None:
            built.close()

        app.on_cleanup.append(close_observer)

    if metrics.multiprocess_dir is not None:
        app.cleanup_ctx.append(_periodic_flush(metrics))

    async def mark_dead(_app: web.Application) -> None:
        metrics.mark_process_dead()  # writes the last tallies first

    app.on_cleanup.append(mark_dead)
    log.info(
        "observability_ready",
        log_format=obs.log_format,
        metrics_mode="multiprocess" if metrics.multiprocess_dir else "per-app",
        audit=str(obs.audit.path) if obs.audit is not None else None,
        decision_log=obs.decision_log,
    )
    return observer


def _periodic_flush(
    metrics: GatewayMetrics,
) -> Callable[[web.Application], AsyncIterator[None]]:
    """Multiprocess mode: write this worker's tallies to its metrics file every
    :data:`FLUSH_SECONDS`, so a scrape answered by another worker sees them within about a
    second (the flush at shutdown is :meth:`GatewayMetrics.mark_process_dead`'s)."""

    async def flush_loop() -> None:
        while True:
            await asyncio.sleep(FLUSH_SECONDS)
            metrics.flush()

    async def ctx(_app: web.Application) -> AsyncIterator[None]:
        task = asyncio.create_task(flush_loop(), name="metrics-flush")
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    return ctx


def _span_exporter(config: GatewayConfig) -> DecisionSpanExporter | None:
    endpoint = config.observability.otel_endpoint
    if not endpoint:
        return None
    try:
        from gateway.observability.otel import DecisionSpanExporter
    except ImportError as exc:
        get_logger("gateway.observability").warning(
            "otel_unavailable",
            detail="observability.otel_endpoint is set but OpenTelemetry is not installed; "
            "install the 'otel' extra (pip install 'nid-gateway[otel]'). Spans are not exported.",
            missing=exc.name,
        )
        return None
    return DecisionSpanExporter(endpoint)
