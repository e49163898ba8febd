"""Typed keys for what the application shares between rooms."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from gateway.authserver.keys import KeyStore
    from gateway.config.model import GatewayConfig
    from gateway.observability.events import Observer

CONFIG: web.AppKey[GatewayConfig] = web.AppKey("config")
KEYSTORE: web.AppKey[KeyStore] = web.AppKey("keystore")
OBSERVER: web.AppKey[Observer] = web.AppKey("observer")
