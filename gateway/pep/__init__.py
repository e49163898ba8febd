"""The policy enforcement point: authenticate -> analyse -> decide -> forward (PLACEHOLDER)."""

from __future__ import annotations

from aiohttp import web

from gateway.authserver.keys import KeyStore
from gateway.config.model import GatewayConfig
from gateway.observability.events import Observer


def setup_pep(
    app: web.Application, config: GatewayConfig, keystore: KeyStore, observer: Observer
) -> None:
    """Add one PEP route per configured route to *app*."""
