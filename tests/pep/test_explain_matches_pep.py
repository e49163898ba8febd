"""``nid-gateway policy explain`` gives the running gateway's answer.

Each case mints a real token with the real app's authorization server, posts the request
over real HTTP to the real gateway, then runs the console script as documented
(``policy explain --config gateway.yaml --claims ... --request ... --route ... --format
json``) on that token's payload, the same body and the gateway's own ``gateway.yaml``, and
compares status, code, message and allow.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt
import pytest

from tests.fixtures.gateway import (
    CIZ,
    MELDING_5151,
    NOTIFICATIE_5151,
    NOTIFICATIE_AGB,
    ZK_5151,
    ZK_5152,
    Gateway,
    fixture_text,
    seed_notification,
)

NID_GATEWAY = str(Path(sys.executable).with_name("nid-gateway"))
TWO_OPERATIONS = (
    "mutation a { zendNotificatie(notificatieInput: {}) { notificatieID } } "
    "mutation b { zendNotificatie(notificatieInput: {}) { notificatieID } }"
)
TWO_ROOT_FIELDS = (
    "mutation { a: zendNotificatie(notificatieInput: {}) { notificatieID } "
    "b: zendNotificatie(notificatieInput: {}) { notificatieID } }"
)


def zorgaanbieder_melding() -> dict[str, Any]:
    variables = json.loads(fixture_text("melding_rfc0018_variables.json"))
    variables.update(
        afzenderIDType="AGB", afzenderID="12345678", ontvangerIDType="UZOVI", ontvangerID="5151"
    )
    return {"query": fixture_text("melding_rfc0018.graphql"), "variables": variables}


@dataclass
class Case:
    client: str
    scopes: list[str]
    body: dict[str, Any] = field(default_factory=seed_notification)
    route: str = ZK_5151
    token_route: str | None = None
    """The route the token was minted for (default: the route posted to)."""
    expect: tuple[int, str | None] = (200, None)
    """The gateway's status and message, so a case cannot pass on two equal wrong answers."""


CASES = {
    "allowed": Case("ciz", [NOTIFICATIE_5151]),
    "scope-missing": Case("ciz", [NOTIFICATIE_AGB], expect=(403, "Request Does Not Match Scopes")),
    "two-operations": Case(
        "ciz",
        [NOTIFICATIE_5151],
        {"query": TWO_OPERATIONS},
        expect=(400, "Only one operation at the time is supported."),
    ),
    "two-root-fields": Case(
        "ciz",
        [NOTIFICATIE_5151],
        {"query": TWO_ROOT_FIELDS},
        expect=(400, "Only one selectionset in an operation is supported."),
    ),
    "recipient-not-the-route": Case(
        "ciz",
        [NOTIFICATIE_5151],
        seed_notification(ontvangerID="5152"),
        expect=(400, "ZendNotificatie mutation: ontvanger is not valid"),
    ),
    "wrong-afzender": Case(
        "ciz",
        [NOTIFICATIE_5151],
        seed_notification(afzenderID="99999999"),
        expect=(400, "ZendNotificatie mutation: afzender_id is not valid"),
    ),
    "zorgaanbieder-notifies": Case(
        "zorgaanbieder-12345678",
        [NOTIFICATIE_5151],
        seed_notification(
            afzenderIDType="AGB",
            afzenderID="12345678",
            eventType="NIEUWE_BEMIDDELINGSPECIFICATIE_ZORGKANTOOR",
        ),
        expect=(400, "ZendNotificatie mutation: afzender_type is not valid"),
    ),
    "token-for-another-route": Case(
        "ciz",
        [NOTIFICATIE_5151],
        token_route=ZK_5152,
        expect=(401, "Token audience does not match this route"),
    ),
    "zorgaanbieder-melding": Case(
        "zorgaanbieder-12345678", [MELDING_5151], zorgaanbieder_melding()
    ),
    "ciz-route-needs-onderneming-scope": Case(
        "zorgkantoor-5151",
        [NOTIFICATIE_5151],
        route=CIZ,
        expect=(403, "Request Does Not Match Scopes"),
    ),
}


def run_explain(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [NID_GATEWAY, "policy", "explain", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize("name", sorted(CASES))
async def test_explain_gives_the_running_gateways_answer(
    gateway: Gateway, tmp_path: Path, name: str
) -> None:
    case = CASES[name]
    token = gateway.token(case.client, case.scopes, case.token_route or case.route)
    response = await gateway.post(case.route, case.body, token=token)
    answer = json.loads(await response.read())
    message = None if response.status == 200 else answer["errors"][0]["message"]
    code = None if response.status == 200 else answer["errors"][0]["extensions"]["code"]
    assert (response.status, message) == case.expect, answer
    assert len(gateway.upstream.received) == (1 if response.status == 200 else 0)

    claims = tmp_path / "claims.json"
    claims.write_text(json.dumps(jwt.decode(token, options={"verify_signature": False})))
    request = tmp_path / "request.json"
    request.write_text(json.dumps(case.body))
    result = run_explain(
        "--config",
        str(gateway.config.source),
        "--claims",
        str(claims),
        "--request",
        str(request),
        "--route",
        case.route,
        "--format",
        "json",
    )
    assert result.returncode == 0, result.stderr
    explained = json.loads(result.stdout)
    assert (explained["allow"], explained["status"], explained["code"], explained["message"]) == (
        response.status == 200,
        response.status,
        code,
        message,
    )
