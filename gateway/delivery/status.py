"""``GET /deliveries/<id>``: a sender sees how its own accepted notification fares.

The caller needs a token of a trusted issuer whose audience is the public URL of
``/notificaties/graphql`` (no scope). Another client's delivery and an unknown id are the
same ``404``: a sender cannot learn which ids exist.
"""

from __future__ import annotations

import uuid
from typing import Any

from aiohttp import web

from gateway.observability.http import counted
from gateway.pep.readonly import read_only
from gateway.pep.responses import refusal_response
from gateway.refusals import OutboxUnavailable
from gateway.store.api import Delivery, StoreUnavailable
from gateway.store.setup import STORE
from gateway.tokens.verifier import TokenVerifier, VerifiedToken

PATH = "/deliveries/{delivery_id}"
AUDIENCE_PATH = "/notificaties/graphql"


def public_view(delivery: Delivery) -> dict[str, Any]:
    """What the contract shows of a delivery: id, state, attempts so far, last error."""
    last = delivery.attempts[-1] if delivery.attempts else None
    return {
        "deliveryId": delivery.delivery_id,
        "state": delivery.state,
        "attempts": len(delivery.attempts),
        "lastError": last.error if last is not None else None,
    }


def setup_status(app: web.Application, public_url: str, verifier: TokenVerifier) -> None:
    """Add ``GET /deliveries/{id}`` to *app*, reading the store the app opens."""

    async def answer(request: web.Request, token: VerifiedToken) -> web.StreamResponse:
        try:
            delivery = await request.app[STORE].get(request.match_info["delivery_id"])
        except StoreUnavailable:
            refusal = OutboxUnavailable(reason="outbox_unavailable")
            accept = request.headers.get("Accept", "")
            return refusal_response(
                refusal, decision_id=str(uuid.uuid4()), accept=accept, headers={}
            )
        if delivery is None or delivery.sender != token.facts.client_id:
            return web.json_response({"error": "no such delivery"}, status=404)
        return web.json_response(public_view(delivery))

    handler = read_only(verifier, public_url.rstrip("/") + AUDIENCE_PATH, answer)
    app.router.add_get(PATH, counted(app, handler))
