"""Wires the rooms into one aiohttp application: authorization server, PEP routes,
health and metrics. Each room owns its setup function; this module only orders them."""

from __future__ import annotations

from aiohttp import web

from gateway.appkeys import CONFIG, KEYSTORE, OBSERVER
from gateway.authserver.setup import setup_authserver
from gateway.authserver.signing_keys import KeyStore
from gateway.config.model import GatewayConfig
from gateway.delivery.setup import setup_delivery
from gateway.observability.events import Observer
from gateway.observability.setup import setup_observability
from gateway.pep import setup_pep
from gateway.store.setup import setup_store


async def create_app(config: GatewayConfig, *, observer: Observer | None = None) -> web.Application:
    """Build the gateway application for a loaded configuration.

    Order matters: observability first (so every later room can report), then the key
    store, the durable store (when configured) and the authorization server, then the
    policy store and the PEP routes, then reliable delivery (it needs both).
    """
    app = web.Application(client_max_size=config.server.max_body_bytes)
    app[CONFIG] = config
    app[OBSERVER] = setup_observability(app, config, observer)
    keystore = KeyStore.load(config)
    app[KEYSTORE] = keystore
    if config.store is not None:
        setup_store(app, config)
    if config.authserver is not None and config.authserver.enabled:
        setup_authserver(app, config, keystore, app[OBSERVER])
    pep = setup_pep(app, config, keystore, app[OBSERVER])
    setup_delivery(app, config, pep)
    return app
