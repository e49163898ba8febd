"""The policy information point through the real running gateway, in front of the demo's
example registers (``config/demo/registers/``) on real ports, each recording what it gets.

A rule that needs context (UCBR-0012/0013, IRA0002-IRA0004) makes the gateway ask the
Bemiddelingsregister first, with its own token; what the looked-up facts allow is forwarded
unchanged, what they refuse never reaches the register asked (only the PIP query does); a
register that cannot answer refuses with 503; a second identical request within the TTL
costs no second round trip.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer, unused_port

from gateway.appkeys import KEYSTORE
from gateway.examples.register import create_register_app
from gateway.facts import OperationFacts
from gateway.pep import PEP
from gateway.pep.pip import PipLookups
from tests.fixtures.gateway import PUBLIC_URL, REPO, Gateway, GatewayFactory
from tests.fixtures.registers import (
    BEMIDDELING_READ,
    BEMIDDELINGEN,
    FIXTURES,
    INDICATIE_READ,
    INDICATIES,
    SCHEMAS,
    register_route,
    template,
)

IWLZ = REPO / "policies" / "iwlz"
S1 = "51000000-0000-4000-8000-000000000001"
S2 = "51000000-0000-4000-8000-000000000002"
S3 = "51000000-0000-4000-8000-000000000003"
I2 = "a1000000-0000-4000-8000-000000000002"


@dataclass
class Register:
    """An example register on a real port, and the GraphQL requests it received."""

    url: str
    received: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)

    def operations(self) -> list[str]:
        """The operation name of each request received (``query Name(...)``)."""
        return [r["query"].split("query ", 1)[1].split("(")[0].strip() for r in self.received]


def recording_register(name: str, register: Register) -> web.Application:
    app = create_register_app(SCHEMAS / f"{name}.graphql", FIXTURES / f"{name}.yaml")

    @web.middleware
    async def record(request: web.Request, handler: Any) -> web.StreamResponse:
        register.received.append(json.loads(await request.read()))
        register.headers.append(dict(request.headers))
        response: web.StreamResponse = await handler(request)
        return response

    app.middlewares.append(record)
    return app


@pytest.fixture
async def registers() -> AsyncIterator[dict[str, Register]]:
    """The two example registers, recording."""
    found: dict[str, Register] = {}
    servers = []
    for name in ("bemiddelingsregister", "indicatieregister"):
        register = Register("")
        server = TestServer(recording_register(name, register), host="127.0.0.1")
        await server.start_server()
        register.url = str(server.make_url("/graphql"))
        found[name] = register
        servers.append(server)
    yield found
    for server in servers:
        await server.close()


StartGateway = Callable[..., Awaitable[Gateway]]


@pytest.fixture
def start(make_gateway: GatewayFactory, registers: dict[str, Register]) -> StartGateway:
    """A gateway with the two register routes (the Bemiddelingsregister's URL replaceable)."""

    async def make(bemiddelingen: str | None = None, **overrides: Any) -> Gateway:
        return await make_gateway(
            routes=[
                register_route(
                    BEMIDDELINGEN,
                    "bemiddelingsregister",
                    bemiddelingen or registers["bemiddelingsregister"].url,
                    BEMIDDELING_READ,
                    IWLZ,
                ),
                register_route(
                    INDICATIES,
                    "indicatieregister",
                    registers["indicatieregister"].url,
                    INDICATIE_READ,
                    IWLZ,
                ),
            ],
            **overrides,
        )

    return make


async def ask(gateway: Gateway, client: str, path: str, body: dict[str, Any]) -> Any:
    scope = BEMIDDELING_READ if path == BEMIDDELINGEN else INDICATIE_READ
    return await gateway.post(path, body, token=gateway.token(client, [scope], path))


async def test_an_informatieve_specificatie_with_an_overlapping_own_one_is_forwarded(
    start: StartGateway, registers: dict[str, Register]
) -> None:
    gateway = await start()
    body = template("QBR-0012-ZKu")
    response = await ask(gateway, "zorgkantoor-5151", BEMIDDELINGEN, body)
    assert response.status == 200, await response.text()
    (found,) = (await response.json())["data"]["bemiddelingspecificatie"]
    assert found["bemiddelingspecificatieID"] == S2
    register = registers["bemiddelingsregister"]
    # First the PIP query (the gateway's own), then the caller's template, unchanged.
    assert register.operations() == ["PipInformatieveSpecificatie", "Bemiddelingspecificatie"]
    assert register.received[0]["variables"] == {"bemiddelingspecificatieID": S2, "uzovi": "5151"}
    assert register.received[1] == body


async def test_the_pip_asks_with_the_gateways_own_token(
    start: StartGateway, registers: dict[str, Register]
) -> None:
    gateway = await start()
    response = await ask(gateway, "zorgkantoor-5151", BEMIDDELINGEN, template("QBR-0012-ZKu"))
    assert response.status == 200
    headers = registers["bemiddelingsregister"].headers[0]
    scheme, token = headers["Authorization"].split(" ")
    assert scheme == "Bearer"
    header = jwt.get_unverified_header(token)
    key = gateway.client.app[KEYSTORE].verification_key(header["kid"])
    assert key is not None
    claims = jwt.decode(
        token, key.key, algorithms=[header["alg"]], audience=PUBLIC_URL + BEMIDDELINGEN
    )
    assert claims["sub"] == "nid-gateway-pip"
    assert claims["iss"] == gateway.config.issuer
    assert claims["scope"] == BEMIDDELING_READ
    assert json.loads(headers["claims"]) == claims
    # Not the caller's token: the caller is zorgkantoor-5151.
    assert "uzovi" not in claims


@pytest.mark.parametrize(
    ("client", "asked", "why"),
    [
        # S3 is on B2, where zorgkantoor 5151 executes nothing.
        ("zorgkantoor-5151", S3, "no own bemiddelingspecificatie"),
        # 5152's own S2 ended 2025-12-31: its access to S1 lasted until 2026-05-31.
        ("zorgkantoor-5152", S1, "ended on 31 May"),
    ],
)
async def test_an_informatieve_specificatie_the_facts_do_not_allow_is_refused(
    start: StartGateway, registers: dict[str, Register], client: str, asked: str, why: str
) -> None:
    gateway = await start()
    body = template("QBR-0012-ZKu", bemiddelingspecificatieID=asked)
    response = await ask(gateway, client, BEMIDDELINGEN, body)
    assert response.status == 403
    (error,) = (await response.json())["errors"]
    assert error["extensions"]["code"] == "FORBIDDEN"
    assert why in error["message"]
    # The register saw the PIP query only, never the refused template.
    assert registers["bemiddelingsregister"].operations() == ["PipInformatieveSpecificatie"]


async def test_a_regiehouder_for_an_executing_zorgkantoor_with_overlap_is_forwarded(
    start: StartGateway, registers: dict[str, Register]
) -> None:
    gateway = await start()
    response = await ask(gateway, "zorgkantoor-5151", BEMIDDELINGEN, template("QBR-0013-ZKu"))
    assert response.status == 200, await response.text()
    assert registers["bemiddelingsregister"].operations() == ["PipRegiehouder", "Regiehouder"]


@pytest.mark.parametrize(
    ("name", "client"),
    [("QIR-0002-ZA", "zorgaanbieder-12345678"), ("QIR-0003-ZKn", "zorgkantoor-5152")],
)
async def test_an_indicatie_the_bemiddelingsregister_vouches_for_is_forwarded(
    start: StartGateway, registers: dict[str, Register], name: str, client: str
) -> None:
    gateway = await start()
    body = template(name)
    response = await ask(gateway, client, INDICATIES, body)
    assert response.status == 200, await response.text()
    (found,) = (await response.json())["data"]["wlzIndicatie"]
    assert found["wlzindicatieID"] == body["variables"]["wlzIndicatieID"]
    assert len(registers["bemiddelingsregister"].received) == 1  # the PIP query
    assert registers["indicatieregister"].received == [body]


async def test_an_indicatie_of_someone_elses_client_is_refused_and_never_forwarded(
    start: StartGateway, registers: dict[str, Register]
) -> None:
    gateway = await start()
    # I2's bemiddeling B2 has only S3, whose instelling is 87654321.
    body = template("QIR-0002-ZA", wlzIndicatieID=I2)
    response = await ask(gateway, "zorgaanbieder-12345678", INDICATIES, body)
    assert response.status == 403
    (error,) = (await response.json())["errors"]
    assert "IRA0003" in error["message"]
    assert registers["bemiddelingsregister"].operations() == ["PipIndicatieZorgaanbieder"]
    assert registers["indicatieregister"].received == []


async def test_register_down_refuses_with_503_and_forwards_nothing(
    start: StartGateway, registers: dict[str, Register]
) -> None:
    gateway = await start(bemiddelingen=f"http://127.0.0.1:{unused_port()}/graphql")
    response = await ask(gateway, "zorgaanbieder-12345678", INDICATIES, template("QIR-0002-ZA"))
    assert response.status == 503
    (error,) = (await response.json())["errors"]
    assert error["extensions"]["code"] == "SERVICE_UNAVAILABLE"
    assert registers["indicatieregister"].received == []


@pytest.mark.parametrize(
    ("endpoint", "settings"),
    [
        ("/graphql", {}),  # answers every query with its own data: not the shape asked for
        ("/slow", {"timeout": 0.3}),  # answers after 5 s
    ],
)
async def test_a_register_without_a_usable_answer_in_time_refuses_with_503(
    start: StartGateway,
    registers: dict[str, Register],
    upstream: Any,
    endpoint: str,
    settings: dict[str, Any],
) -> None:
    gateway = await start(bemiddelingen=upstream.url + endpoint, pip=settings)
    response = await ask(gateway, "zorgkantoor-5152", INDICATIES, template("QIR-0004-ZKu"))
    assert response.status == 503
    assert len(upstream.received) == 1
    assert registers["indicatieregister"].received == []


async def test_a_second_identical_decision_within_the_ttl_costs_no_round_trip(
    start: StartGateway, registers: dict[str, Register]
) -> None:
    gateway = await start(pip={"cache_ttl": 60})
    for _ in range(3):
        response = await ask(gateway, "zorgkantoor-5152", INDICATIES, template("QIR-0004-ZKu"))
        assert response.status == 200
    assert registers["bemiddelingsregister"].operations() == ["PipIndicatieZorgkantoor"]
    assert len(registers["indicatieregister"].received) == 3
    # Another caller's facts are another key: one more round trip.
    response = await ask(gateway, "zorgkantoor-5151", INDICATIES, template("QIR-0004-ZKu"))
    assert response.status == 403
    assert len(registers["bemiddelingsregister"].received) == 2


async def test_without_a_cache_every_decision_asks_the_register(
    start: StartGateway, registers: dict[str, Register]
) -> None:
    gateway = await start(pip={"cache_ttl": 0})
    for _ in range(2):
        response = await ask(gateway, "zorgkantoor-5152", INDICATIES, template("QIR-0004-ZKu"))
        assert response.status == 200
    assert len(registers["bemiddelingsregister"].received) == 2


async def test_concurrent_identical_decisions_share_one_round_trip(
    start: StartGateway, registers: dict[str, Register]
) -> None:
    gateway = await start(pip={"cache_ttl": 60})
    body = template("QIR-0004-ZKu")
    responses = await asyncio.gather(
        *(ask(gateway, "zorgkantoor-5152", INDICATIES, body) for _ in range(4))
    )
    assert [r.status for r in responses] == [200] * 4
    assert registers["bemiddelingsregister"].operations() == ["PipIndicatieZorgkantoor"]


async def test_a_lookup_a_hot_reload_adds_is_asked_without_a_restart(
    make_gateway: GatewayFactory, registers: dict[str, Register], tmp_path: Path
) -> None:
    """The reloaded regiehouder policy declares its lookup under a name the running gateway
    has never seen: the very next request asks the register for it and is decided on it."""
    policies = tmp_path / "iwlz"
    shutil.copytree(IWLZ, policies, ignore=shutil.ignore_patterns("*.test.yaml"))
    gateway = await make_gateway(
        routes=[
            register_route(
                BEMIDDELINGEN,
                "bemiddelingsregister",
                registers["bemiddelingsregister"].url,
                BEMIDDELING_READ,
                policies,
            )
        ]
    )
    regiehouder = policies / "raadplegingen" / "regiehouder.yaml"
    regiehouder.write_text(regiehouder.read_text().replace("UCBR-0013", "UCBR-0013-herzien"))
    gateway.client.app[PEP].reload_policies()  # what SIGHUP and the watcher call
    store = gateway.client.app[PEP].policies[(policies,)]
    [policy] = [p for p in store.active.policies if p.policy_id == "iwlz-regiehouder"]
    assert [lk.name for lk in policy.lookups] == ["UCBR-0013-herzien"]

    response = await ask(gateway, "zorgkantoor-5151", BEMIDDELINGEN, template("QBR-0013-ZKu"))
    assert response.status == 200, await response.text()
    assert registers["bemiddelingsregister"].operations() == ["PipRegiehouder", "Regiehouder"]


def operation_on(root_field: str) -> OperationFacts:
    return OperationFacts(
        operation_type="query", operation_name=None, root_field=root_field, arguments={}
    )


async def test_declared_lookups_follow_a_reload_and_differ_per_operation(
    make_gateway: GatewayFactory, registers: dict[str, Register], tmp_path: Path
) -> None:
    """The declared lookups are remembered per operation and per active set: another root
    field gets its own answer, and a reloaded set (another object) never the old set's."""
    policies = tmp_path / "iwlz"
    shutil.copytree(IWLZ, policies, ignore=shutil.ignore_patterns("*.test.yaml"))
    gateway = await make_gateway(
        routes=[
            register_route(
                BEMIDDELINGEN,
                "bemiddelingsregister",
                registers["bemiddelingsregister"].url,
                BEMIDDELING_READ,
                policies,
            )
        ]
    )
    pep = gateway.client.app[PEP]
    lookups = PipLookups(pep.policies[(policies,)], pep.pip)
    regiehouder, other = operation_on("regiehouder"), operation_on("geenPolicyHiervoor")

    assert [lk.name for lk in lookups.declared(regiehouder)] == ["UCBR-0013"]
    assert lookups.declared(other) == ()
    assert [lk.name for lk in lookups.declared(regiehouder)] == ["UCBR-0013"]

    regiehouder_yaml = policies / "raadplegingen" / "regiehouder.yaml"
    regiehouder_yaml.write_text(regiehouder_yaml.read_text().replace("UCBR-0013", "UCBR-0013-x"))
    pep.reload_policies()  # what SIGHUP and the watcher call
    assert [lk.name for lk in lookups.declared(regiehouder)] == ["UCBR-0013-x"]
    assert lookups.declared(other) == ()
