"""Typed keys for what the application shares between rooms."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from gateway.config.appkey import CONFIG

if TYPE_CHECKING:
    from gateway.authserver.signing_keys import KeyStore
    from gateway.observability.events import Observer

__all__ = ["CONFIG", "KEYSTORE", "OBSERVER"]

KEYSTORE: web.AppKey[KeyStore] = web.AppKey("keystore")
OBSERVER: web.AppKey[Observer] = web.AppKey("observer")
