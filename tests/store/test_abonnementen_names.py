"""The subscription mutations' names come from ``abonnementen:`` in gateway.yaml: a network
whose schema calls them otherwise (here ``startAbonnement``/``stopAbonnement``, the id
``kenmerk``, the reason ``toelichting``) gets the whole flow - recorded from the
bronhouder's confirmed answer, a voluntary notification let through, the end recorded with
its reason - without a line of Python changed."""

from __future__ import annotations

import json
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer, unused_port
from pytest_aiohttp import AiohttpClient

from gateway.app import create_app
from gateway.appkeys import KEYSTORE
from gateway.authserver.tokens import issue_token
from gateway.store.api import Party
from gateway.store.setup import STORE
from tests.fixtures.gateway import (
    POLICIES,
    REPO,
    ZA_AGB,
    ZK_5151,
    gateway_yaml,
    route,
    write_config,
)
from tests.store.test_abonnementen_flow import ABONNEMENT_ZK, NOTIFICATIE_AGB, notification

RENAMED = {
    "createAbonnement": "startAbonnement",
    "deleteAbonnement": "stopAbonnement",
    "abonnementId": "kenmerk",
    "reden": "toelichting",
}
START = """mutation startAbonnement($abonnementInput: AbonnementInput!) {
  startAbonnement(abonnementInput: $abonnementInput) { kenmerk }
}"""
STOP = """mutation stopAbonnement($kenmerk: ID!, $toelichting: String) {
  stopAbonnement(kenmerk: $kenmerk, toelichting: $toelichting)
}"""


def renamed(text: str) -> str:
    for old, new in RENAMED.items():
        text = text.replace(old, new)
    return text


@pytest.fixture
async def bronhouder() -> AsyncIterator[tuple[str, list[str]]]:
    """A bronhouder speaking the renamed schema; keeps the root field of every request."""
    received: list[str] = []

    async def graphql(request: web.Request) -> web.Response:
        query = (await request.json())["query"]
        field = query.split("{", 1)[1].split("(")[0].strip()
        received.append(field)
        answers = {"startAbonnement": {"kenmerk": "ab-1"}, "stopAbonnement": True}
        return web.json_response({"data": {field: answers.get(field, {"notificatieID": "n"})}})

    app = web.Application()
    app.router.add_post("/graphql", graphql)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    yield str(server.make_url("/graphql")), received
    await server.close()


async def test_renamed_subscription_mutations_work_end_to_end_from_configuration(
    tmp_path: Path, aiohttp_client: AiohttpClient, bronhouder: tuple[str, list[str]]
) -> None:
    url, received = bronhouder
    schema = tmp_path / "netwerkpunt.graphql"
    schema.write_text(renamed((REPO / "config/schemas/netwerkpunt.graphql").read_text()))
    policies = tmp_path / "policies"
    shutil.copytree(POLICIES, policies, ignore=shutil.ignore_patterns("*.test.yaml"))
    for name in ("abonnement.yaml", "abonnement-opzeggen.yaml"):
        (policies / name).write_text(renamed((POLICIES / name).read_text()))
    scope = "organisaties/{kind}/abonnementen/abonnement:write"
    data = gateway_yaml(
        url,
        f"http://127.0.0.1:{unused_port()}/graphql",
        scopes={
            "zendNotificatie": "organisaties/{kind}/notificaties/notificatie:create",
            "startAbonnement": scope,
            "stopAbonnement": scope,
        },
        routes=[
            route(path, url, *who, policies=[str(policies)], schema=str(schema))
            for path, who in (
                (ZK_5151, ("UZOVI", "5151", "zorgkantoor")),
                (ZA_AGB, ("AGB", "12345678", "zorgaanbieder")),
            )
        ],
        store={"backend": "sqlite", "path": str(tmp_path / "store.sqlite3")},
        **{
            "abonnementen": {
                "create": {"field": "startAbonnement", "answer_id": "kenmerk"},
                "delete": {"field": "stopAbonnement", "id": "kenmerk", "reason": "toelichting"},
            }
        },
    )
    config = write_config(tmp_path, data)
    client = await aiohttp_client(await create_app(config))

    async def post(path: str, client_id: str, scope: str, body: Any) -> tuple[int, Any]:
        token = issue_token(
            config, client.app[KEYSTORE], client_id, [scope], config.public_url + path
        )
        response = await client.post(path, json=body, headers={"Authorization": f"Bearer {token}"})
        return response.status, await response.json()

    subscribe = {
        "organisatieId": "org-1",
        "abonnementTypeId": "GEWIJZIGDE_DOSSIERHOUDER_CZT_VOOR_ZORGAANBIEDER",
        "idTypeAbonnee": "AGB",
        "idAbonnee": "12345678",
    }
    za = "zorgaanbieder-12345678"
    body = {"query": START, "variables": {"abonnementInput": subscribe}}
    assert await post(ZK_5151, za, ABONNEMENT_ZK, body) == (
        200,
        {"data": {"startAbonnement": {"kenmerk": "ab-1"}}},
    )
    [recorded] = await client.app[STORE].list_for(Party("AGB", "12345678"))
    assert (recorded.abonnement_id, recorded.organisatie_id) == ("ab-1", "org-1")

    status, answer = await post(ZA_AGB, "zorgkantoor-5151", NOTIFICATIE_AGB, notification("ab-1"))
    assert status == 200, answer

    # The bronhouder ends it: the renamed reason argument is the one its policy requires.
    variables = {"kenmerk": "ab-1"}
    stop = {"query": STOP, "variables": variables}
    status, answer = await post(ZK_5151, "zorgkantoor-5151", ABONNEMENT_ZK, stop)
    assert status == 400 and "toelichting is required" in json.dumps(answer), answer
    variables["toelichting"] = "geen zorg meer"
    assert await post(ZK_5151, "zorgkantoor-5151", ABONNEMENT_ZK, stop) == (
        200,
        {"data": {"stopAbonnement": True}},
    )
    [ended] = await client.app[STORE].list_for(Party("AGB", "12345678"), include_ended=True)
    assert (ended.is_active, ended.end_reason) == (False, "geen zorg meer")
    assert received == ["startAbonnement", "zendNotificatie", "stopAbonnement"]
