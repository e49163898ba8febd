"""An example deelnemer resource server: a small real GraphQL API behind the gateway.

It executes requests with graphql-core against the bundled network schema
(:data:`gateway.graphql.schema.BUNDLED_SCHEMA`, package data), answers
``zendNotificatie`` with a fresh ``notificatieID`` and ``zendMelding`` with a fresh
``meldingID``, ``createAbonnement`` with a fresh ``abonnementId`` and ``deleteAbonnement``
with ``true`` (a bronhouder's subscriptions, seed 001 section 5), keeps the last received
items in memory for the ``notificatie``/``notificaties`` queries, and logs what it received
together with the ``claims`` header the gateway adds (the verified token payload).
Used by ``nid-gateway demo``, by tests and by benchmarks.
"""

from __future__ import annotations

import uuid
from collections import deque
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

import orjson
import structlog
from aiohttp import web
from graphql import GraphQLSchema, build_schema, graphql

from gateway.graphql.schema import BUNDLED_SCHEMA

SCHEMA_FILE = BUNDLED_SCHEMA
RECEIVED_LIMIT = 1_000

log = structlog.get_logger("gateway.examples.resource_server")

RECEIVED: web.AppKey[deque[dict[str, Any]]] = web.AppKey("received", deque)
NAME: web.AppKey[str] = web.AppKey("name", str)


@cache
def network_schema(path: Path = SCHEMA_FILE) -> GraphQLSchema:
    """The network schema with this server's resolvers attached (built once)."""
    schema = build_schema(path.read_text(encoding="utf-8"))
    mutation = schema.mutation_type
    query = schema.query_type
    assert mutation is not None and query is not None
    mutation.fields["zendNotificatie"].resolve = _zend_notificatie
    mutation.fields["zendMelding"].resolve = _zend_melding
    mutation.fields["createAbonnement"].resolve = _create_abonnement
    mutation.fields["deleteAbonnement"].resolve = _delete_abonnement
    query.fields["notificatie"].resolve = _notificatie
    query.fields["notificaties"].resolve = _notificaties
    return schema


def _store(info: Any, kind: str, id_field: str, data: Mapping[str, Any]) -> dict[str, Any]:
    context: dict[str, Any] = info.context
    item = {id_field: str(uuid.uuid4()), **data, "kind": kind}
    context["received"].append(item)
    log.info(
        "received",
        server=context["name"],
        kind=kind,
        id=item[id_field],
        event_type=data.get("eventType"),
        afzender=f"{data.get('afzenderIDType')}:{data.get('afzenderID')}",
        ontvanger=f"{data.get('ontvangerIDType')}:{data.get('ontvangerID')}",
        subjects=[s.get("subject") for s in data.get("subjectList") or ()],
        claims=context["claims"],
    )
    return item


def _zend_notificatie(_root: Any, info: Any, notificatieInput: dict[str, Any]) -> dict[str, Any]:
    return _store(info, "notificatie", "notificatieID", notificatieInput)


def _zend_melding(_root: Any, info: Any, meldingInput: dict[str, Any]) -> dict[str, Any]:
    return _store(info, "melding", "meldingID", meldingInput)


def _create_abonnement(_root: Any, info: Any, abonnementInput: dict[str, Any]) -> dict[str, Any]:
    return _store(info, "abonnement", "abonnementId", abonnementInput)


def _delete_abonnement(_root: Any, info: Any, abonnementId: str, reden: str | None = None) -> bool:
    """Ends the subscription; ``true`` also for one this server forgot (a restart): the
    subscription does not exist afterwards either way."""
    received: deque[dict[str, Any]] = info.context["received"]
    known = any(item.get("abonnementId") == abonnementId for item in received)
    log.info(
        "abonnement_ended", server=info.context["name"], id=abonnementId, known=known, reden=reden
    )
    return True


def _notificatie(_root: Any, info: Any, notificatieID: str) -> dict[str, Any] | None:
    received: deque[dict[str, Any]] = info.context["received"]
    return next((n for n in received if n.get("notificatieID") == notificatieID), None)


def _notificaties(
    _root: Any, info: Any, where: dict[str, Any] | None = None, first: int = 20
) -> list[dict[str, Any]]:
    received: deque[dict[str, Any]] = info.context["received"]
    found = [
        n
        for n in reversed(received)
        if n["kind"] == "notificatie" and all(n.get(k) == v for k, v in (where or {}).items())
    ]
    return found[: max(first, 0)]


def _json(status: int, body: Any) -> web.Response:
    return web.Response(status=status, body=orjson.dumps(body), content_type="application/json")


async def _graphql(request: web.Request) -> web.Response:
    try:
        body = orjson.loads(await request.read())
    except orjson.JSONDecodeError:
        return _json(400, {"errors": [{"message": "request body is not JSON"}]})
    if not isinstance(body, dict) or not isinstance(body.get("query"), str):
        return _json(400, {"errors": [{"message": "expected a JSON object with a query"}]})
    variables = body.get("variables")
    operation = body.get("operationName")
    if variables is not None and not isinstance(variables, dict):
        return _json(400, {"errors": [{"message": "variables must be an object"}]})
    claims: Any = None
    if "claims" in request.headers:
        try:
            claims = orjson.loads(request.headers["claims"])
        except orjson.JSONDecodeError:
            claims = {"unparsable": True}
    result = await graphql(
        network_schema(),
        body["query"],
        variable_values=variables,
        operation_name=operation if isinstance(operation, str) else None,
        context_value={
            "name": request.app[NAME],
            "received": request.app[RECEIVED],
            "claims": claims,
        },
    )
    return _json(200 if result.data is not None else 400, result.formatted)


def create_resource_server_app(name: str) -> web.Application:
    """A resource server app answering ``POST /graphql`` (any path works) for deelnemer *name*."""
    app = web.Application()
    app[NAME] = name
    app[RECEIVED] = deque(maxlen=RECEIVED_LIMIT)
    app.router.add_post("/graphql", _graphql)
    app.router.add_post("/{tail:.*}", _graphql)
    return app


def from_argv(argv: list[str]) -> web.Application:
    """The resource server for aiohttp's own runner, named by the remaining arguments:
    ``python -m aiohttp.web -H HOST -P PORT gateway.examples.resource_server:from_argv NAME``
    (docker-compose.yml's ``resource-server``)."""
    return create_resource_server_app(" ".join(argv) or "example resource server")
