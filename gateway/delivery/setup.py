"""Reliable delivery in the application: the worker starts once the store is open and stops
before it closes; the central notification route gets the async path; ``GET
/deliveries/<id>`` is added. Without a ``store:`` section (or without the central route)
there is no reliable delivery: ``Prefer: respond-async`` is then ignored and the route
answers synchronously.

Each attempt resolves the recipient in the adresboek again, through the same
:meth:`~gateway.adresboek.AdresboekSource.resolve` the central route forwards with, so a
reloaded adresboek is used from the next attempt on."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator

from aiohttp import web

from gateway.adresboek import AdresboekSource
from gateway.config.model import GatewayConfig
from gateway.delivery.accept import Outbox
from gateway.delivery.status import setup_status
from gateway.delivery.worker import DeliveryWorker, RecipientResolver
from gateway.observability.http import METRICS_KEY
from gateway.pep.setup import Pep
from gateway.store.api import Party
from gateway.store.setup import STORE

WORKER: web.AppKey[DeliveryWorker] = web.AppKey("delivery_worker", DeliveryWorker)


class AdresboekResolver:
    """A recipient's endpoint in the adresboek as loaded now (reloads included)."""

    def __init__(self, adresboek: AdresboekSource) -> None:
        self.adresboek = adresboek

    async def resolve(self, recipient: Party) -> str | None:
        found = self.adresboek.resolve(recipient.id_type, recipient.id)
        return None if found is None else found.endpoint


def setup_delivery(
    app: web.Application,
    config: GatewayConfig,
    pep: Pep,
    resolver: RecipientResolver | None = None,
) -> None:
    """Wire reliable delivery into *app* (after the store and the PEP are set up)."""
    central = pep.central
    if config.store is None or central is None or pep.adresboek is None:
        return
    setup_status(app, config.public_url, pep.verifier)
    found = resolver or AdresboekResolver(pep.adresboek)

    async def lifetime(app: web.Application) -> AsyncIterator[None]:
        worker = DeliveryWorker(app[STORE], found, config.delivery, metrics=app.get(METRICS_KEY))
        app[WORKER] = worker
        central.plan = dataclasses.replace(central.plan, respond_async=Outbox(app[STORE], worker))
        await worker.start()
        try:
            yield
        finally:
            await worker.stop()

    app.cleanup_ctx.append(lifetime)
