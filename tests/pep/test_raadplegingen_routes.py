"""The registers' authorisation matrices (``policies/iwlz/raadplegingen``) through the real
running gateway, in front of a recording upstream: what the matrices allow is forwarded as
sent; a broken binding and a forbidden field are refused with 403 and never reach the
register. The rules decided on facts of the policy information point: ``test_pip.py``."""

from __future__ import annotations

import json
import re
from typing import Any

from tests.fixtures.gateway import REPO, Gateway, GatewayFactory, RecordingUpstream
from tests.fixtures.registers import BEMIDDELING_READ as READ
from tests.fixtures.registers import BEMIDDELINGEN, template

S1 = "51000000-0000-4000-8000-000000000001"


async def register_gateway(make_gateway: GatewayFactory, upstream: RecordingUpstream) -> Gateway:
    return await make_gateway(
        routes=[
            {
                "path": BEMIDDELINGEN,
                "upstream": upstream.url + "/graphql",
                "deelnemer": {
                    "id_type": "REGISTER",
                    "id": "bemiddelingsregister",
                    "kind": "register",
                },
                "schema": str(REPO / "config" / "schemas" / "bemiddelingsregister.graphql"),
                "policies": [str(REPO / "policies" / "iwlz")],
                "scope_default": READ,
            }
        ]
    )


async def refusal(gateway: Gateway, client: str, body: dict[str, Any]) -> dict[str, Any]:
    token = gateway.token(client, [READ], BEMIDDELINGEN)
    response = await gateway.post(BEMIDDELINGEN, body, token=token)
    assert response.status == 403
    (error,) = (await response.json())["errors"]
    assert error["extensions"]["code"] == "FORBIDDEN"
    result: dict[str, Any] = error
    return result


async def test_a_template_the_matrix_allows_is_forwarded_as_sent(
    make_gateway: GatewayFactory, upstream: RecordingUpstream
) -> None:
    gateway = await register_gateway(make_gateway, upstream)
    token = gateway.token("zorgaanbieder-12345678", [READ], BEMIDDELINGEN)
    body = template("QBR-0002-ZA")
    response = await gateway.post(BEMIDDELINGEN, body, token=token)
    assert response.status == 200
    (received,) = upstream.received
    assert json.loads(received.body)["query"] == body["query"]


async def test_a_broken_binding_is_refused_naming_it_and_never_forwarded(
    make_gateway: GatewayFactory, upstream: RecordingUpstream
) -> None:
    gateway = await register_gateway(make_gateway, upstream)
    error = await refusal(
        gateway, "zorgaanbieder-12345678", template("QBR-0001-ZA", instelling="87654321")
    )
    assert error["message"] == (
        "Bemiddelingspecificatie query: where.instelling.eq must be the caller's own AGB (BRA0001)"
    )
    assert upstream.received == []


async def test_pgb_percentage_for_a_zorgaanbieder_is_refused_naming_the_path(
    make_gateway: GatewayFactory, upstream: RecordingUpstream
) -> None:
    gateway = await register_gateway(make_gateway, upstream)
    query = (
        "query Bemiddelingspecificatie($id: UUID!, $agb: String!) { b: "
        "bemiddelingspecificatie(where: {bemiddelingspecificatieID: {eq: $id}, "
        "instelling: {eq: $agb}}) { p: pgbPercentage } }"
    )
    error = await refusal(
        gateway,
        "zorgaanbieder-12345678",
        {"query": query, "variables": {"id": S1, "agb": "12345678"}},
    )
    assert error["message"] == (
        "Bemiddelingspecificatie query: pgbPercentage is never readable by a zorgaanbieder (POL103)"
    )
    assert upstream.received == []


SPECIFICATIES_WINDOW = (
    "Bemiddelingspecificatie query: bemiddeling.bemiddelingspecificatie needs its date window: "
    "where {or: [{toewijzingEinddatum: {eq: null}}, "
    "{toewijzingEinddatum: {gte: <toewijzingIngangsdatum>}}]} "
    "(BRA0002, BRA0007)"
)


async def test_a_nested_list_without_its_date_window_is_refused_and_never_forwarded(
    make_gateway: GatewayFactory, upstream: RecordingUpstream
) -> None:
    gateway = await register_gateway(make_gateway, upstream)
    body = template("QBR-0002-ZA")
    # The overlapping specificaties (indented six spaces) lose their where: all of them.
    body["query"], dropped = re.subn(
        r"\n      bemiddelingspecificatie\(.*?\n      \) \{",
        "\n      bemiddelingspecificatie {",
        body["query"],
        flags=re.S,
    )
    assert dropped == 1
    error = await refusal(gateway, "zorgaanbieder-12345678", body)
    assert error["message"] == SPECIFICATIES_WINDOW
    assert upstream.received == []


async def test_an_aliased_second_selection_without_the_window_is_refused(
    make_gateway: GatewayFactory, upstream: RecordingUpstream
) -> None:
    gateway = await register_gateway(make_gateway, upstream)
    body = template("QBR-0002-ZA")
    # The template as published, plus the same list under an alias and without a filter.
    body["query"] = body["query"].replace(
        "bemiddeling {", "bemiddeling {\n      alle: bemiddelingspecificatie { instelling }", 1
    )
    error = await refusal(gateway, "zorgaanbieder-12345678", body)
    assert error["message"] == SPECIFICATIES_WINDOW
    assert upstream.received == []
