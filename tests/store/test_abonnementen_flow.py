"""Issue 14's subscription flow through the running gateway, on SQLite and PostgreSQL:
subscribe at a bronhouder (recorded from its confirmed answer) -> a voluntary notification
with that ``ontvangerKenmerk`` passes -> unsubscribe (or the bronhouder revokes, with a
reason) -> the same notification is refused. The bronhouders are the bundled example
resource server; every refusal is checked to have reached none of them."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer, unused_port
from pytest_aiohttp import AiohttpClient

from gateway.app import create_app
from gateway.appkeys import KEYSTORE
from gateway.authserver.tokens import issue_token
from gateway.config.model import GatewayConfig
from gateway.examples.resource_server import create_resource_server_app
from gateway.store.api import Party
from gateway.store.setup import STORE
from tests.fixtures.gateway import (
    ZA_AGB,
    ZK_5151,
    ZK_5152,
    gateway_yaml,
    write_config,
)
from tests.fixtures.store import Backend

ABONNEMENT_ZK = "organisaties/zorgkantoor/abonnementen/abonnement:write"
NOTIFICATIE_AGB = "organisaties/zorgaanbieder/notificaties/notificatie:create"
SCOPES = {
    "zendNotificatie": "organisaties/{kind}/notificaties/notificatie:create",
    "createAbonnement": "organisaties/{kind}/abonnementen/abonnement:write",
    "deleteAbonnement": "organisaties/{kind}/abonnementen/abonnement:write",
}
TYPE = "GEWIJZIGDE_DOSSIERHOUDER_CZT_VOOR_ZORGAANBIEDER"
ORGANISATIE = "c40b3669-1b06-4c99-8c84-f4fac1264b39"
DEMO_URL = "http://127.0.0.1:8080"
REFUSE = "bronhouder-weigert"
"""An organisatieId the test bronhouder refuses (its answer carries errors)."""
CREATE = """mutation createAbonnement($abonnementInput: AbonnementInput!) {
  createAbonnement(abonnementInput: $abonnementInput) { abonnementId }
}"""
DELETE = """mutation deleteAbonnement($abonnementId: ID!, $reden: String) {
  deleteAbonnement(abonnementId: $abonnementId, reden: $reden)
}"""
NOTIFY = """mutation zendNotificatie($notificatieInput: NotificatieInput!) {
  zendNotificatie(notificatieInput: $notificatieInput) { notificatieID }
}"""


def subscribe_body(type_id: str = TYPE) -> dict[str, Any]:
    variables = {
        "organisatieId": ORGANISATIE,
        "abonnementTypeId": type_id,
        "idTypeAbonnee": "AGB",
        "idAbonnee": "12345678",
    }
    return {"query": CREATE, "variables": {"abonnementInput": variables}}


def delete_body(abonnement_id: str, reden: str | None = None) -> dict[str, Any]:
    return {"query": DELETE, "variables": {"abonnementId": abonnement_id, "reden": reden}}


def notification(kenmerk: str | None, sender: str = "5151") -> dict[str, Any]:
    notificatie = {
        "afzenderIDType": "UZOVI",
        "afzenderID": sender,
        "ontvangerIDType": "AGB",
        "ontvangerID": "12345678",
        "eventType": TYPE,
        "timestamp": "2024-07-02T00:00:00Z",
        "subjectList": [{"subject": "Bemiddeling/1", "recordID": "Bemiddeling/1"}],
    }
    if kenmerk is not None:
        notificatie["ontvangerKenmerk"] = kenmerk
    return {"query": NOTIFY, "variables": {"notificatieInput": notificatie}}


@dataclass
class Bronhouders:
    """The example resource server behind every route, counting what reaches it."""

    url: str
    received: list[str] = field(default_factory=list)
    """The root field of every request that reached it."""


@pytest.fixture
async def bronhouders() -> AsyncIterator[Bronhouders]:
    seen = Bronhouders(url="")

    @web.middleware
    async def count(request: web.Request, handler: Any) -> web.StreamResponse:
        body = await request.json()
        seen.received.append(body["query"].split("(")[0].split()[-1])
        if REFUSE in json.dumps(body):
            return web.json_response({"data": None, "errors": [{"message": "geweigerd"}]})
        response: web.StreamResponse = await handler(request)
        return response

    app = create_resource_server_app("bronhouder")
    app.middlewares.append(count)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    seen.url = str(server.make_url("")).rstrip("/")
    yield seen
    await server.close()


@dataclass
class Node:
    """One running gateway (a replica, or the same gateway after a restart)."""

    client: TestClient[Any, Any]
    config: GatewayConfig

    def token(self, client_id: str, scopes: list[str], path: str) -> str:
        keystore = self.client.app[KEYSTORE]
        audience = self.config.public_url.rstrip("/") + path
        return issue_token(self.config, keystore, client_id, scopes, audience)

    async def post(self, path: str, body: Any, token: str) -> tuple[int, Any]:
        response = await self.client.post(
            path, json=body, headers={"Authorization": f"Bearer {token}"}
        )
        return response.status, await response.json()

    async def subscribe(self) -> str:
        za = self.token("zorgaanbieder-12345678", [ABONNEMENT_ZK], ZK_5151)
        status, answer = await self.post(ZK_5151, subscribe_body(), za)
        assert status == 200, answer
        abonnement_id: str = answer["data"]["createAbonnement"]["abonnementId"]
        return abonnement_id

    async def notify(self, kenmerk: str | None, sender: str = "5151") -> tuple[int, Any]:
        token = self.token(f"zorgkantoor-{sender}", [NOTIFICATIE_AGB], ZA_AGB)
        return await self.post(ZA_AGB, notification(kenmerk, sender), token)

    async def delete(self, client_id: str, abonnement_id: str, **kw: Any) -> tuple[int, Any]:
        path = kw.pop("path", ZK_5151)
        token = self.token(client_id, [ABONNEMENT_ZK], path)
        return await self.post(path, delete_body(abonnement_id, **kw), token)


Start = Callable[..., Awaitable[Node]]


def store_section(backend: Backend) -> dict[str, Any]:
    if backend.name == "sqlite":
        return {"backend": "sqlite", "path": backend.location, "timeout": 0.5}
    return {"backend": "postgresql", "dsn": backend.location, "timeout": 2}


@pytest.fixture
def start(
    tmp_path: Path,
    aiohttp_client: AiohttpClient,
    bronhouders: Bronhouders,
    store_backend: Backend,
) -> Start:
    """Start a gateway on the test's store; each call is another app on the same data
    (keyword arguments override sections of gateway.yaml)."""
    down = f"http://127.0.0.1:{unused_port()}/graphql"

    async def make(**overrides: Any) -> Node:
        data = gateway_yaml(
            bronhouders.url, down, scopes=SCOPES, store=store_section(store_backend), **overrides
        )
        config = write_config(tmp_path, data)
        return Node(await aiohttp_client(await create_app(config)), config)

    return make


def refusal(status: int, answer: Any) -> str:
    assert status == 400, answer
    error = answer["errors"][0]
    assert error["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    message: str = error["message"]
    return message


async def test_subscribe_notify_unsubscribe_then_the_notification_is_refused(
    start: Start, bronhouders: Bronhouders, store_backend: Backend
) -> None:
    node = await start()
    status, answer = await node.notify("not-a-subscription")
    assert refusal(status, answer) == "ZendNotificatie mutation: ontvangerKenmerk is not valid"
    assert bronhouders.received == []

    abonnement_id = await node.subscribe()
    assert bronhouders.received == ["createAbonnement"]
    rows = await store_backend.raw(
        "SELECT subscriber_id_type, subscriber_id, bronhouder_id_type, bronhouder_id,"
        " notificatietype, organisatie_id, ended_at FROM abonnementen"
        f" WHERE abonnement_id = '{abonnement_id}'"
    )
    assert rows == [("AGB", "12345678", "UZOVI", "5151", TYPE, ORGANISATIE, None)]

    status, answer = await node.notify(abonnement_id)
    assert status == 200, answer
    assert bronhouders.received[-1] == "zendNotificatie"
    # The subscription is at 5151: zorgkantoor 5152 cannot use it.
    forwarded = len(bronhouders.received)
    status, answer = await node.notify(abonnement_id, sender="5152")
    assert refusal(status, answer).endswith("ontvangerKenmerk is not valid")
    # Nobody else ends it: not another zorgkantoor, not at another bronhouder's route.
    status, answer = await node.delete("zorgkantoor-5152", abonnement_id, path=ZK_5152)
    assert refusal(status, answer).endswith("abonnementId is not a subscription of the caller")
    status, answer = await node.delete("zorgaanbieder-12345678", abonnement_id, path=ZK_5152)
    assert refusal(status, answer).endswith("abonnementId is not placed with this bronhouder")
    assert len(bronhouders.received) == forwarded

    status, answer = await node.delete("zorgaanbieder-12345678", abonnement_id)
    assert (status, answer) == (200, {"data": {"deleteAbonnement": True}})
    assert bronhouders.received[-1] == "deleteAbonnement"
    [(ended_by, by_id, reason)] = await store_backend.raw(
        "SELECT ended_by_id_type, ended_by_id, end_reason FROM abonnementen"
    )
    assert (ended_by, by_id, reason) == ("AGB", "12345678", None)

    forwarded = len(bronhouders.received)
    status, answer = await node.notify(abonnement_id)
    assert refusal(status, answer) == "ZendNotificatie mutation: ontvangerKenmerk is not valid"
    status, answer = await node.delete("zorgaanbieder-12345678", abonnement_id)
    assert refusal(status, answer).endswith("abonnementId is not an active subscription")
    assert len(bronhouders.received) == forwarded


async def test_the_bronhouder_revokes_a_subscription_only_with_a_reason(
    start: Start, bronhouders: Bronhouders, store_backend: Backend
) -> None:
    node = await start()
    abonnement_id = await node.subscribe()
    status, answer = await node.delete("zorgkantoor-5151", abonnement_id)
    message = refusal(status, answer)
    assert message.endswith("reden is required when the bronhouder ends a subscription")
    assert bronhouders.received == ["createAbonnement"]
    status, answer = await node.delete("zorgkantoor-5151", abonnement_id, reden="geen zorg meer")
    assert status == 200, answer
    rows = await store_backend.raw(
        "SELECT ended_by_id_type, ended_by_id, end_reason, ended_at IS NOT NULL FROM abonnementen"
    )
    assert [tuple(row) for row in rows] == [("UZOVI", "5151", "geen zorg meer", True)]
    status, answer = await node.notify(abonnement_id)
    assert refusal(status, answer).endswith("ontvangerKenmerk is not valid")


async def test_get_abonnementen_lists_own_and_placed_subscriptions_without_a_scope(
    start: Start, store_backend: Backend
) -> None:
    node = await start(public_url=DEMO_URL, issuer=DEMO_URL)  # the demo clients' audiences
    abonnement_id = await node.subscribe()

    async def listed(client_id: str) -> Any:
        token = node.token(client_id, [], "/abonnementen")
        response = await node.client.get(
            "/abonnementen", headers={"Authorization": f"Bearer {token}"}
        )
        assert response.status == 200, await response.text()
        return await response.json()

    [own] = await listed("zorgaanbieder-12345678")
    assert own["abonnementId"] == abonnement_id and own["rol"] == "abonnee"
    assert own["bronhouder"] == {"idType": "UZOVI", "id": "5151"}
    assert own["actief"] is True and own["organisatieId"] == ORGANISATIE
    [placed] = await listed("zorgkantoor-5151")
    assert placed["rol"] == "bronhouder" and placed["abonnee"] == {
        "idType": "AGB",
        "id": "12345678",
    }
    assert await listed("zorgkantoor-5152") == []
    # A route's token is not a token for /abonnementen.
    wrong = node.token("zorgaanbieder-12345678", [ABONNEMENT_ZK], ZK_5151)
    response = await node.client.get("/abonnementen", headers={"Authorization": f"Bearer {wrong}"})
    assert response.status == 401


async def test_a_subscription_survives_a_restart(
    start: Start, bronhouders: Bronhouders, store_backend: Backend
) -> None:
    first = await start()
    abonnement_id = await first.subscribe()
    await first.client.close()
    again = await start()
    status, answer = await again.notify(abonnement_id)
    assert status == 200, answer


async def test_two_gateways_on_one_store_see_each_others_subscriptions_at_once(
    start: Start, store_backend: Backend
) -> None:
    a, b = await start(), await start()
    abonnement_id = await a.subscribe()
    assert (await b.notify(abonnement_id))[0] == 200
    status, _ = await b.delete("zorgaanbieder-12345678", abonnement_id)
    assert status == 200
    status, answer = await a.notify(abonnement_id)
    assert refusal(status, answer).endswith("ontvangerKenmerk is not valid")


async def test_an_answer_that_is_not_a_confirmation_changes_nothing(
    start: Start, bronhouders: Bronhouders, store_backend: Backend
) -> None:
    node = await start()
    za = node.token("zorgaanbieder-12345678", [ABONNEMENT_ZK], ZK_5151)
    body = subscribe_body()
    body["variables"]["abonnementInput"]["organisatieId"] = REFUSE
    status, answer = await node.post(ZK_5151, body, za)
    assert status == 200 and answer["errors"][0]["message"] == "geweigerd", answer
    assert bronhouders.received == ["createAbonnement"]
    assert await store_backend.raw("SELECT count(*) FROM abonnementen") == [(0,)]
    abonnement_id = await node.subscribe()
    status, answer = await node.delete("zorgkantoor-5151", abonnement_id, reden=REFUSE)
    assert status == 200 and "errors" in answer
    assert await store_backend.raw("SELECT count(*) FROM abonnementen WHERE ended_at IS NULL") == [
        (1,)
    ]


@pytest.mark.parametrize("store_backend", ["sqlite"], indirect=True)
async def test_a_locked_store_refuses_subscription_changes_with_503_never_forwarded(
    start: Start, bronhouders: Bronhouders, store_backend: Backend
) -> None:
    node = await start()
    abonnement_id = await node.subscribe()
    other_writer = sqlite3.connect(store_backend.location, isolation_level=None)
    other_writer.execute("BEGIN IMMEDIATE")
    try:
        za = node.token("zorgaanbieder-12345678", [ABONNEMENT_ZK], ZK_5151)
        status, answer = await node.post(ZK_5151, subscribe_body(), za)
        assert status == 503, answer
        assert answer["errors"][0]["extensions"]["code"] == "SERVICE_UNAVAILABLE"
        status, answer = await node.delete("zorgaanbieder-12345678", abonnement_id)
        assert status == 503, answer
    finally:
        other_writer.execute("ROLLBACK")
        other_writer.close()
    assert bronhouders.received == ["createAbonnement"]
    assert await node.client.app[STORE].list_for(Party("AGB", "12345678")) != []
    assert json.dumps(answer)  # the refusal is a GraphQL error document
