"""Reliable delivery in the application: the worker starts once the store is open and stops
before it closes; the central notification route gets the async path; ``GET
/deliveries/<id>`` is added. Without a ``store:`` section there is no reliable delivery:
``Prefer: respond-async`` is then ignored and the route answers synchronously."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator

from aiohttp import web

from gateway.config.model import GatewayConfig
from gateway.delivery.accept import Outbox
from gateway.delivery.status import AUDIENCE_PATH, setup_status
from gateway.delivery.worker import DeliveryWorker, RecipientResolver, StaticResolver
from gateway.observability.http import METRICS_KEY
from gateway.pep.setup import Pep
from gateway.store.api import Party
from gateway.store.setup import STORE

WORKER: web.AppKey[DeliveryWorker] = web.AppKey("delivery_worker", DeliveryWorker)
ASYNC_ROUTES = frozenset({AUDIENCE_PATH})
"""The routes that offer ``Prefer: respond-async``: the central notification route."""


def routes_resolver(config: GatewayConfig) -> StaticResolver:
    """Each configured deelnemer's endpoint: its route's upstream."""
    return StaticResolver(
        {Party(r.deelnemer.id_type, r.deelnemer.id): r.upstream for r in config.routes}
    )


def setup_delivery(
    app: web.Application,
    config: GatewayConfig,
    pep: Pep,
    resolver: RecipientResolver | None = None,
) -> None:
    """Wire reliable delivery into *app* (after the store and the PEP are set up)."""
    if config.store is None:
        return
    setup_status(app, config.public_url, pep.verifier)
    found = resolver or routes_resolver(config)

    async def lifetime(app: web.Application) -> AsyncIterator[None]:
        worker = DeliveryWorker(app[STORE], found, config.delivery, metrics=app.get(METRICS_KEY))
        app[WORKER] = worker
        for path in ASYNC_ROUTES & pep.handlers.keys():
            handler = pep.handlers[path]
            handler.plan = dataclasses.replace(
                handler.plan, respond_async=Outbox(app[STORE], worker)
            )
        await worker.start()
        try:
            yield
        finally:
            await worker.stop()

    app.cleanup_ctx.append(lifetime)
