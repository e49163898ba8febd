"""Logs, audit trail, metrics, health (PLACEHOLDER: observability room)."""

from __future__ import annotations

from aiohttp import web

from gateway.config.model import GatewayConfig
from gateway.observability.events import NullObserver, Observer


def setup_observability(
    app: web.Application, config: GatewayConfig, observer: Observer | None = None
) -> Observer:
    """Configure logging, add ``/metrics``, ``/healthz``, ``/readyz``; return the observer."""
    return observer or NullObserver()
