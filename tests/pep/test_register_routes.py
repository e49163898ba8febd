"""Routes in front of the iWlz registers, through the real running gateway.

Each register route validates against its register's schema (``config/schemas/``),
requires the register's read scope (the deprecated Indicatieregister scope stands for the
current one: ``scope_aliases`` in ``nid_claims.yaml``) and forwards what its policy
allows to an example register on a real port. The policies here are a stand-in
(``tests/examples/policies/``); the matrices' rules have their own tests.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestServer

from gateway.examples.register import create_register_app
from tests.fixtures import registers
from tests.fixtures.gateway import REPO, Gateway, GatewayFactory
from tests.fixtures.registers import (
    BEMIDDELING_READ,
    BEMIDDELINGEN,
    FIXTURES,
    INDICATIE_READ,
    INDICATIES,
    SCHEMAS,
    template,
)

STAND_IN = REPO / "tests" / "examples" / "policies"
INDICATIES_READ_OLD = "registers/wlzindicatieregister/indicaties:read"
S1 = "51000000-0000-4000-8000-000000000001"
I1 = "a1000000-0000-4000-8000-000000000001"


def register_route(path: str, name: str, url: str, scope: str) -> dict[str, Any]:
    return registers.register_route(path, name, url, scope, STAND_IN)


@pytest.fixture
async def register_urls() -> AsyncIterator[dict[str, str]]:
    """The two example registers on real loopback ports."""
    servers = {
        name: TestServer(
            create_register_app(SCHEMAS / f"{name}.graphql", FIXTURES / f"{name}.yaml"),
            host="127.0.0.1",
        )
        for name in ("bemiddelingsregister", "indicatieregister")
    }
    for server in servers.values():
        await server.start_server()
    yield {name: str(server.make_url("/graphql")) for name, server in servers.items()}
    for server in servers.values():
        await server.close()


@pytest.fixture
async def gateway(make_gateway: GatewayFactory, register_urls: dict[str, str]) -> Gateway:
    return await make_gateway(
        routes=[
            register_route(
                BEMIDDELINGEN,
                "bemiddelingsregister",
                register_urls["bemiddelingsregister"],
                BEMIDDELING_READ,
            ),
            register_route(
                INDICATIES, "indicatieregister", register_urls["indicatieregister"], INDICATIE_READ
            ),
        ]
    )


async def test_a_published_template_the_policy_allows_gets_the_registers_answer(
    gateway: Gateway,
) -> None:
    token = gateway.token("zorgaanbieder-12345678", [BEMIDDELING_READ], BEMIDDELINGEN)
    response = await gateway.post(BEMIDDELINGEN, template("QBR-0001-ZA"), token=token)
    assert response.status == 200
    (found,) = (await response.json())["data"]["bemiddelingspecificatie"]
    assert found["bemiddelingspecificatieID"] == S1
    assert found["bemiddeling"]["client"]["bsn"] == "999990019"


async def test_a_binding_to_another_caller_is_refused(gateway: Gateway) -> None:
    token = gateway.token("zorgaanbieder-12345678", [BEMIDDELING_READ], BEMIDDELINGEN)
    response = await gateway.post(
        BEMIDDELINGEN, template("QBR-0001-ZA", instelling="87654321"), token=token
    )
    assert response.status == 403
    (error,) = (await response.json())["errors"]
    assert error["extensions"]["reason"] == "instelling is not the caller's own AGB"


async def test_a_raadpleging_is_validated_against_the_registers_schema(gateway: Gateway) -> None:
    token = gateway.token("zorgaanbieder-12345678", [BEMIDDELING_READ], BEMIDDELINGEN)
    # wlzIndicatie is a root of the Indicatieregister, not of the Bemiddelingsregister.
    response = await gateway.post(BEMIDDELINGEN, template("QIR-0002-ZA"), token=token)
    assert response.status == 400
    (error,) = (await response.json())["errors"]
    assert error["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    assert error["extensions"]["reason"] == "Cannot query field 'wlzIndicatie' on type 'Query'."


async def test_the_register_route_needs_the_registers_read_scope(gateway: Gateway) -> None:
    token = gateway.token("zorgkantoor-5151", [BEMIDDELING_READ], INDICATIES)
    response = await gateway.post(INDICATIES, template("QIR-0001-ZKi"), token=token)
    assert response.status == 403
    (error,) = (await response.json())["errors"]
    assert error["extensions"]["reason"] == f"scope {INDICATIE_READ} required"


@pytest.mark.parametrize("scope", [INDICATIE_READ, INDICATIES_READ_OLD])
async def test_the_current_and_the_deprecated_indicatieregister_scope_read_a_wlzindicatie(
    gateway: Gateway, scope: str
) -> None:
    token = gateway.token("zorgkantoor-5151", [scope], INDICATIES)
    response = await gateway.post(INDICATIES, template("QIR-0001-ZKi"), token=token)
    assert response.status == 200
    (found,) = (await response.json())["data"]["wlzIndicatie"]
    assert found["wlzindicatieID"] == I1
    assert found["client"]["contactGegevens"][0]["adres"]["postcode"] == "1234AB"
