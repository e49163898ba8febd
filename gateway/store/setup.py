"""The store in the application: opened at start (the gateway does not start without it),
closed at clean-up, reported by ``/readyz``; handlers find it under :data:`STORE`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from gateway.config.model import GatewayConfig
from gateway.observability.health import add_check
from gateway.store.api import Store, StoreUnavailable
from gateway.store.open import open_store

STORE: web.AppKey[Store] = web.AppKey("store")


def setup_store(app: web.Application, config: GatewayConfig) -> None:
    """Open the configured store with the app and register its readiness check."""

    async def lifetime(app: web.Application) -> AsyncIterator[None]:
        app[STORE] = await open_store(config)
        try:
            yield
        finally:
            await app[STORE].close()

    async def ready() -> tuple[bool, dict[str, Any]]:
        try:
            return True, await app[STORE].ping()
        except StoreUnavailable as exc:
            return False, {"error": str(exc)}

    app.cleanup_ctx.append(lifetime)
    add_check(app, "store", ready)
