"""Issue 14, items 1 and 2 through the real app over HTTP: ``GET /catalogus/notificatietypen``
serves the rows the policies decide with (reloaded with them), and ``createAbonnement`` is
decided by ``policies/iwlz/abonnement.yaml`` before anything reaches the bronhouder."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from gateway.appkeys import KEYSTORE
from gateway.authserver.tokens import issue_token
from gateway.pep import PEP
from tests.fixtures.gateway import (
    POLICIES,
    ZA_AGB,
    ZK_5151,
    Gateway,
    GatewayFactory,
)

CATALOGUS = "/catalogus/notificatietypen"
ABONNEMENT_ZK = "organisaties/zorgkantoor/abonnementen/abonnement:write"
SCOPES = {
    "zendNotificatie": "organisaties/{kind}/notificaties/notificatie:create",
    "createAbonnement": "organisaties/{kind}/abonnementen/abonnement:write",
    "deleteAbonnement": "organisaties/{kind}/abonnementen/abonnement:write",
}
CREATE = """
mutation createAbonnement($abonnementInput: AbonnementInput!) {
  createAbonnement(abonnementInput: $abonnementInput) { abonnementId }
}
"""


DEMO_URL = "http://127.0.0.1:8080"
"""The demo's public URL: the demo clients may ask for the catalogue's audience there."""


async def demo_url_gateway(make_gateway: GatewayFactory, **overrides: Any) -> Gateway:
    return await make_gateway(public_url=DEMO_URL, issuer=DEMO_URL, **overrides)


def catalogue_token(gateway: Gateway, audience: str = DEMO_URL + CATALOGUS) -> str:
    """A demo client's token for *audience* (the authorization server still wants a scope;
    the catalogue asks for none)."""
    keystore = gateway.client.app[KEYSTORE]
    scope = ["organisaties/zorgkantoor/abonnementen/abonnement:write"]
    return issue_token(gateway.config, keystore, "zorgaanbieder-12345678", scope, audience)


async def get_catalogue(gateway: Gateway, token: str | None) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return await gateway.client.get(CATALOGUS, headers=headers)


async def test_catalogue_lists_every_type_with_the_seed_fields(
    make_gateway: GatewayFactory,
) -> None:
    gateway = await demo_url_gateway(make_gateway)
    response = await get_catalogue(gateway, catalogue_token(gateway))
    assert response.status == 200, await response.text()
    types = {t["notificatieTypeID"]: t for t in await response.json()}
    policy_rows = next(iter(gateway.client.app[PEP].policies.values())).active.data.tables
    assert set(types) == {row["code"] for row in policy_rows["notificatietypen"]}
    dossierhouder = types["GEWIJZIGDE_DOSSIERHOUDER_CZT_VOOR_ZORGAANBIEDER"]
    assert dossierhouder["notificatieType"] == "IWLZ_VRIJWILLIG"
    assert dossierhouder["idTypeAbonnee"] == "AGB"
    assert dossierhouder["eventType"] == "create"
    assert dossierhouder["notificatieOmschrijving"].startswith("Bij de registratie")
    assert types["GEWIJZIGDE_ZORGINNATURA_BIJ_ANDERE_ZORGAANBIEDER"]["objectIDType"] == (
        "zorgInNaturaID"
    )
    assert types["NIEUWE_INDICATIE_ZORGKANTOOR"]["notificatieType"] == "IWLZ_VERPLICHT"


async def test_catalogue_refuses_a_missing_token_and_a_route_audience(
    make_gateway: GatewayFactory,
) -> None:
    gateway = await demo_url_gateway(make_gateway)
    missing = await get_catalogue(gateway, None)
    assert missing.status == 401
    route_token = catalogue_token(gateway, DEMO_URL + ZK_5151)
    wrong = await get_catalogue(gateway, route_token)
    assert wrong.status == 401
    body = await wrong.json()
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_catalogue_follows_a_policy_reload(
    make_gateway: GatewayFactory, tmp_path: Path
) -> None:
    policies = tmp_path / "policies" / "iwlz"
    shutil.copytree(POLICIES, policies)
    route = {
        "path": ZK_5151,
        "upstream": "http://127.0.0.1:9/graphql",
        "deelnemer": {"id_type": "UZOVI", "id": "5151", "kind": "zorgkantoor"},
        "policies": [str(policies)],
    }
    gateway = await demo_url_gateway(make_gateway, routes=[route])
    catalogue = policies / "catalogus" / "notificatietypen.yaml"
    lines = catalogue.read_text().splitlines(keepends=True)
    kept = [line for line in lines if "code: GEWIJZIGDE_DOSSIERHOUDER_CZT" not in line]
    assert len(kept) == len(lines) - 1
    catalogue.write_text("".join(kept))
    assert next(iter(gateway.client.app[PEP].policies.values())).reload()
    response = await get_catalogue(gateway, catalogue_token(gateway))
    codes = {t["notificatieTypeID"] for t in await response.json()}
    assert "GEWIJZIGDE_DOSSIERHOUDER_CZT_VOOR_ZORGAANBIEDER" not in codes
    assert "GEWIJZIGDE_ZORGINNATURA_BIJ_ANDERE_ZORGAANBIEDER" in codes


def abonnement(**overrides: str) -> dict[str, Any]:
    variables = {
        "organisatieId": "c40b3669-1b06-4c99-8c84-f4fac1264b39",
        "abonnementTypeId": "GEWIJZIGDE_DOSSIERHOUDER_CZT_VOOR_ZORGAANBIEDER",
        "idTypeAbonnee": "AGB",
        "idAbonnee": "12345678",
        **overrides,
    }
    return {"query": CREATE, "variables": {"abonnementInput": variables}}


async def test_own_subscription_to_a_vrijwillig_type_is_forwarded(
    make_gateway: GatewayFactory,
) -> None:
    # A subscription is forwarded only where the gateway can record it (a store).
    gateway = await make_gateway(scopes=SCOPES, store={"backend": "sqlite"})
    token = gateway.token("zorgaanbieder-12345678", [ABONNEMENT_ZK])
    body = abonnement()
    response = await gateway.post(ZK_5151, body, token=token)
    assert response.status == 200, await response.text()
    [received] = gateway.upstream.received
    assert json.loads(received.body) == body
    assert gateway.observer.decisions[-1].rule == "iwlz-abonnement"


async def refused(gateway: Gateway, path: str, token: str, body: dict[str, Any]) -> str:
    response = await gateway.post(path, body, token=token)
    payload = await response.json()
    assert response.status == 400, payload
    error = payload["errors"][0]
    assert error["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    assert gateway.upstream.received == []
    message: str = error["message"]
    return message


async def test_each_subscription_refusal_names_what_is_wrong(
    make_gateway: GatewayFactory,
) -> None:
    gateway = await make_gateway(scopes=SCOPES)
    za = gateway.token("zorgaanbieder-12345678", [ABONNEMENT_ZK])
    cases = [
        (abonnement(idAbonnee="87654321"), "idAbonnee is not the caller's identifier"),
        (abonnement(idTypeAbonnee="UZOVI"), "idTypeAbonnee is not the caller's identifier type"),
        (
            abonnement(abonnementTypeId="NIEUWE_BEMIDDELINGSPECIFICATIE_ZORGAANBIEDER"),
            "abonnementTypeId is not an iWlz-vrijwillig notificatietype",
        ),
    ]
    for body, reason in cases:
        assert await refused(gateway, ZK_5151, za, body) == f"CreateAbonnement mutation: {reason}"
    zk = gateway.token(
        "zorgkantoor-5151", ["organisaties/zorgaanbieder/abonnementen/abonnement:write"], ZA_AGB
    )
    body = abonnement(idTypeAbonnee="UZOVI", idAbonnee="5151")
    message = await refused(gateway, ZA_AGB, zk, body)
    assert message.endswith("abonnementTypeId is not offered by this bronhouder")


async def test_without_a_store_a_subscription_is_refused_with_503_never_forwarded(
    make_gateway: GatewayFactory,
) -> None:
    gateway = await make_gateway(scopes=SCOPES)
    token = gateway.token("zorgaanbieder-12345678", [ABONNEMENT_ZK])
    response = await gateway.post(ZK_5151, abonnement(), token=token)
    assert response.status == 503, await response.text()
    assert (await response.json())["errors"][0]["extensions"]["reason"].startswith(
        "store unavailable: no subscription store is configured"
    )
    assert gateway.upstream.received == []


async def test_subscription_without_the_abonnement_scope_is_forbidden(
    make_gateway: GatewayFactory,
) -> None:
    gateway = await make_gateway(scopes=SCOPES)
    token = gateway.token(
        "zorgaanbieder-12345678", ["organisaties/zorgkantoor/notificaties/notificatie:create"]
    )
    response = await gateway.post(ZK_5151, abonnement(), token=token)
    assert response.status == 403
    assert gateway.upstream.received == []


DEMO_CLIENTS = ("ciz", "zorgkantoor-5151", "zorgkantoor-5152", "zorgaanbieder-12345678")
READ_ONLY = ("/catalogus/notificatietypen", "/adresboek", "/abonnementen")


async def ask_token(gateway: Gateway, client_id: str, audience: str, scope: str = "") -> Any:
    form = {
        "grant_type": "client_credentials",
        "client_id": client_id,
        "client_secret": f"{client_id}-demo-secret",
        "audience": audience,
    }
    if scope:
        form["scope"] = scope
    response = await gateway.client.post("/auth/token", data=form)
    return response.status, await response.json()


async def test_every_demo_client_gets_a_scopeless_token_for_the_read_only_endpoints(
    make_gateway: GatewayFactory,
) -> None:
    gateway = await demo_url_gateway(make_gateway)
    for client_id in (*DEMO_CLIENTS, "no-instantie"):
        for path in READ_ONLY:
            status, answer = await ask_token(gateway, client_id, DEMO_URL + path)
            assert status == 200, (client_id, path, answer)
            assert answer["scope"] == ""
        # The central route is not read-only: its token needs the notification scope.
        central = DEMO_URL + "/notificaties/graphql"
        status, answer = await ask_token(gateway, client_id, central)
        assert (status, answer["error"]) == (400, "invalid_scope")
        scope = "organisaties/zorgaanbieder/notificaties/notificatie:create"
        status, answer = await ask_token(gateway, client_id, central, scope)
        assert status == 200, answer
        # A route's token still needs a scope; the abonnement scope is granted for any route.
        status, answer = await ask_token(gateway, client_id, DEMO_URL + ZK_5151)
        assert (status, answer["error"]) == (400, "invalid_scope")
        status, _ = await ask_token(gateway, client_id, DEMO_URL + ZA_AGB, ABONNEMENT_ZK)
        assert status == 200
