"""Subscriptions (abonnementen) at the PEP: facts from the store before the policy decides,
the store changed only by the bronhouder's confirmed answer, and ``GET /abonnementen``.

Three pieces, each a narrow seam of the pipeline (docs/abonnementen.md):

The mutations' and arguments' names are configuration (``abonnementen:`` in gateway.yaml,
:class:`~gateway.config.model.AbonnementenConfig`; the iWlz names are its defaults).

- :class:`SubscriptionLookup` is a :class:`~gateway.pep.lookups.FactLookup`: for a
  ``deleteAbonnement`` or a ``zendNotificatie`` that carries an ``ontvangerKenmerk`` it
  reads the one subscription that id names (primary key: one indexed read) and hands it to
  the policy as ``extra.abonnement``. What passes is the policy's business
  (``policies/iwlz/abonnement-opzeggen.yaml``, ``notificatie.yaml``), not this module's.
- :class:`SubscriptionRecorder` runs around the forward of an allowed ``createAbonnement``
  / ``deleteAbonnement``: before, the store must be writable (else 503, never forwarded);
  after, it records what the bronhouder confirmed (``data.createAbonnement.abonnementId``;
  a delete answered ``data.deleteAbonnement: true`` without errors). An answer that is not
  a confirmation changes nothing.
- :func:`setup_abonnementen` serves ``GET /abonnementen``: the caller's own subscriptions
  and those placed with it as bronhouder.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Mapping
from typing import Any

import structlog
from aiohttp import web

from gateway.config.model import AbonnementenConfig, GatewayConfig
from gateway.facts import OperationFacts, RouteFacts, TokenFacts
from gateway.observability.http import counted
from gateway.pep.authenticate import authenticate
from gateway.pep.responses import refusal_response
from gateway.refusals import FactsUnavailable, PolicyDenied, Refusal
from gateway.store.api import Party, Store, StoreUnavailable, Subscription, now
from gateway.store.setup import STORE
from gateway.tokens.verifier import TokenVerifier

log = structlog.get_logger("gateway.pep")

PATH = "/abonnementen"
StoreRef = Callable[[], Store]
"""The application's store, opened at start-up (after the routes are built)."""


def _party(id_type: str | None, ident: str | None) -> Party | None:
    return Party(id_type, ident) if id_type and ident else None


def caller(token: TokenFacts) -> Party | None:
    """The caller as the network names it (``AGB``/``12345678``), from the claim mapping."""
    return _party(token.identifier_type, token.identifier)


def subscription_facts(found: Subscription | None) -> dict[str, Any]:
    """``extra.abonnement``: the subscription as flat facts (``found: false`` if unknown)."""
    if found is None:
        return {"found": False, "active": False}
    return {
        "found": True,
        "active": found.is_active,
        "abonnementId": found.abonnement_id,
        "type": found.notificatietype,
        "subscriber_id_type": found.subscriber.id_type,
        "subscriber_id": found.subscriber.id,
        "bronhouder_id_type": found.bronhouder.id_type,
        "bronhouder_id": found.bronhouder.id,
    }


class SubscriptionLookup:
    """``extra.abonnement``: the subscription named by the request, read by primary key."""

    name = "abonnement"

    def __init__(self, store: StoreRef, names: AbonnementenConfig) -> None:
        self._store = store
        self._keys = names.key_arguments

    def key(self, operation: OperationFacts) -> str | None:
        path = self._keys.get(operation.root_field)
        value = operation.argument(path) if path is not None else None
        return value if isinstance(value, str) and value else None

    def wanted(self, token: TokenFacts, operation: OperationFacts, route: RouteFacts) -> bool:
        return operation.operation_type == "mutation" and self.key(operation) is not None

    async def facts(
        self, token: TokenFacts, operation: OperationFacts, route: RouteFacts
    ) -> dict[str, Any]:
        key = self.key(operation)
        assert key is not None  # wanted() said so
        return subscription_facts(await self._store().get_subscription(key))


def _confirmed(status: int, body: bytes) -> Mapping[str, Any] | None:
    """The answer's ``data`` when it is a 2xx JSON answer without errors, else None."""
    if not 200 <= status < 300:
        return None
    try:
        answer = json.loads(body)
    except ValueError:
        return None
    if not isinstance(answer, dict) or answer.get("errors"):
        return None
    data = answer.get("data")
    return data if isinstance(data, dict) else None


def _at(value: Any, path: str) -> Any:
    """The value at a dotted *path* in a JSON object, or None."""
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


class SubscriptionRecorder:
    """Keeps the store in step with what bronhouders confirm (seed 002, step 6)."""

    def __init__(self, store: StoreRef, names: AbonnementenConfig) -> None:
        self._store = store
        self._create = names.create
        self._delete = names.delete

    def wanted(self, operation: OperationFacts) -> bool:
        """Whether the answer to this (allowed) request must be read and recorded."""
        return operation.operation_type == "mutation" and operation.root_field in (
            self._create.field,
            self._delete.field,
        )

    async def check(self) -> None:
        """Before forwarding: the store must be writable, or nothing is forwarded (503)."""
        try:
            await self._store().ping()
        except StoreUnavailable as exc:
            raise FactsUnavailable(reason=f"store unavailable: {exc}") from exc

    async def record(
        self,
        token: TokenFacts,
        operation: OperationFacts,
        route: RouteFacts,
        status: int,
        body: bytes,
    ) -> None:
        """After the bronhouder answered: record a confirmed subscription or its end.

        Raises :class:`FactsUnavailable` (503) when the store fails now: the caller must not
        take the bronhouder's answer for a subscription the gateway does not know."""
        data = _confirmed(status, body)
        if data is None:
            return
        try:
            if operation.root_field == self._create.field:
                await self._created(token, operation, route, data)
            else:
                await self._deleted(token, operation, data)
        except StoreUnavailable as exc:
            log.error("subscription_not_recorded", route=route.path, error=str(exc))
            raise FactsUnavailable(reason=f"store unavailable: {exc}") from exc

    async def _created(
        self,
        token: TokenFacts,
        operation: OperationFacts,
        route: RouteFacts,
        data: Mapping[str, Any],
    ) -> None:
        names = self._create
        answer = data.get(names.field)
        abonnement_id = _at(answer, names.answer_id)
        subscriber = caller(token)
        if not isinstance(abonnement_id, str) or not abonnement_id or subscriber is None:
            return
        recorded = await self._store().record(
            Subscription(
                abonnement_id=abonnement_id,
                bronhouder=Party(route.deelnemer_id_type, route.deelnemer_id),
                subscriber=subscriber,
                notificatietype=str(operation.argument(names.type)),
                created_at=now(),
                organisatie_id=operation.argument(names.organisatie),
            )
        )
        log.info("subscription_recorded", abonnement_id=abonnement_id, new=recorded)

    async def _deleted(
        self, token: TokenFacts, operation: OperationFacts, data: Mapping[str, Any]
    ) -> None:
        by = caller(token)
        if data.get(self._delete.field) is not True or by is None:
            return
        abonnement_id = str(operation.argument(self._delete.id))
        reason = operation.argument(self._delete.reason)
        ended = await self._store().end(
            abonnement_id, by=by, reason=reason if isinstance(reason, str) else None
        )
        log.info("subscription_ended", abonnement_id=abonnement_id, ended=ended)


def published(sub: Subscription, me: Party) -> dict[str, Any]:
    """One subscription as ``GET /abonnementen`` answers it."""
    return {
        "abonnementId": sub.abonnement_id,
        "abonnementTypeId": sub.notificatietype,
        "rol": "abonnee" if sub.subscriber == me else "bronhouder",
        "abonnee": {"idType": sub.subscriber.id_type, "id": sub.subscriber.id},
        "bronhouder": {"idType": sub.bronhouder.id_type, "id": sub.bronhouder.id},
        "organisatieId": sub.organisatie_id,
        "actief": sub.is_active,
        "aangemaakt": sub.created_at.isoformat(),
        "beeindigd": sub.ended_at.isoformat() if sub.ended_at else None,
        "beeindigdDoor": (
            {"idType": sub.ended_by.id_type, "id": sub.ended_by.id} if sub.ended_by else None
        ),
        "reden": sub.end_reason,
    }


def setup_abonnementen(
    app: web.Application, config: GatewayConfig, verifier: TokenVerifier
) -> None:
    """Add ``GET`` :data:`PATH`: the caller's subscriptions (``?alle=1``: ended ones too)."""
    audience = config.public_url.rstrip("/") + PATH

    def refuse(request: web.Request, refusal: Refusal) -> web.Response:
        accept = request.headers.get("Accept", "")
        return refusal_response(refusal, decision_id=str(uuid.uuid4()), accept=accept, headers={})

    async def handle(request: web.Request) -> web.Response:
        try:
            token = await authenticate(
                request.headers, verifier, audience=audience, allow_plain_jwt=False
            )
            me = caller(token.facts)
            if me is None:
                raise PolicyDenied(reason="the token names no identifier of the caller")
            store = app.get(STORE)
            if store is None:
                raise FactsUnavailable(reason="no store configured")
            subscriptions = await store.list_for(me, include_ended="alle" in request.query)
        except StoreUnavailable as exc:
            return refuse(request, FactsUnavailable(reason=f"store unavailable: {exc}"))
        except Refusal as refusal:
            return refuse(request, refusal)
        return web.json_response([published(s, me) for s in subscriptions])

    app.router.add_get(PATH, counted(app, handle))
