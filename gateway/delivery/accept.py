"""The async path: an allowed notification with ``Prefer: respond-async`` is written to the
outbox (committed, fsynced) before ``202 Accepted`` goes out; the worker delivers it.

What is stored is exactly what the synchronous path would have forwarded: the original body
bytes and the headers decided on (the ``claims`` header among them), with the decision, its
``decision_id`` and the trace id. A store that cannot be written answers ``503`` here; the
synchronous path does not need the store and keeps working.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping

from aiohttp import web

from gateway.delivery.worker import DeliveryWorker
from gateway.pep.pipeline import Allowed
from gateway.refusals import OutboxUnavailable
from gateway.store.api import Delivery, DeliveryStore, Party, StoreUnavailable, now

NOT_STORED = frozenset(
    {"content-length", "transfer-encoding", "host", "connection", "prefer", "idempotency-key"}
)
"""Headers that belong to one HTTP message, not to the notification (set per attempt), and
the two of reliable delivery itself: ``Prefer`` was for the gateway, and the recipient's
``Idempotency-Key`` is the deliveryId, never one the sender chose."""

RecipientOf = Callable[[Allowed], Party]
"""Who an allowed notification is for."""


def route_recipient(allowed: Allowed) -> Party:
    """The deelnemer the decision was made for: on the central route the body's recipient
    (``ontvangerIDType``/``ontvangerID``), on a deelnemer's route that deelnemer."""
    return Party(allowed.facts.deelnemer_id_type, allowed.facts.deelnemer_id)


def decision_record(allowed: Allowed) -> dict[str, object]:
    """The decision kept with the delivery: enough to find the rule and policy again."""
    d = allowed.decision
    return {
        "allow": d.allow,
        "rule": d.rule,
        "location": d.location,
        "policy_version": d.policy_version,
    }


class Outbox:
    """The :data:`~gateway.pep.pipeline.AsyncPath` of one route."""

    def __init__(
        self,
        store: DeliveryStore,
        worker: DeliveryWorker,
        recipient_of: RecipientOf = route_recipient,
    ) -> None:
        self.store = store
        self.worker = worker
        self.recipient_of = recipient_of

    async def __call__(self, allowed: Allowed) -> web.StreamResponse:
        moment = now()
        delivery = Delivery(
            delivery_id=str(uuid.uuid4()),
            state="pending",
            sender=allowed.token.facts.client_id or "",
            recipient=self.recipient_of(allowed),
            body=allowed.body,
            headers=_stored(allowed.headers),
            decision_id=allowed.decision_id,
            trace_id=allowed.trace_id,
            attempts=(),
            next_attempt_at=moment,
            lease_until=None,
            created_at=moment,
            finished_at=None,
            decision=decision_record(allowed),
        )
        try:
            await self.store.enqueue(delivery)
        except StoreUnavailable as exc:
            raise OutboxUnavailable(reason="outbox_unavailable") from exc
        self.worker.wake()
        location = f"/deliveries/{delivery.delivery_id}"
        return web.json_response(
            {"deliveryId": delivery.delivery_id},
            status=202,
            headers={**allowed.trace_headers, "Location": location},
        )


def _stored(headers: Mapping[str, str]) -> dict[str, str]:
    return {k: v for k, v in headers.items() if k.lower() not in NOT_STORED}
