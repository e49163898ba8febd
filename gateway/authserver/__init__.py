"""The authorization server: OAuth2 client_credentials issuing nID access tokens (RFC0014)."""

from __future__ import annotations

from aiohttp import web

from gateway.authserver.keys import KeyStore
from gateway.config.model import GatewayConfig
from gateway.observability.events import Observer


def setup_authserver(
    app: web.Application, config: GatewayConfig, keystore: KeyStore, observer: Observer
) -> None:
    """Add ``POST /auth/token``, ``/.well-known/jwks.json`` and RFC 8414 metadata to *app*."""
    # PLACEHOLDER: replaced by the authorization-server room.
