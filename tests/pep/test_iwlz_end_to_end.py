"""The real ``policies/iwlz`` behind the real gateway: RFC0008's allow and each deny reason,
and the request shapes real senders use (seed 003 example, one variable, inline literals,
aliases, fragments, @skip, several operations)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from tests.fixtures.gateway import (
    MELDING_5151,
    NOTIFICATIE_5151,
    NOTIFICATIE_AGB,
    ZA_AGB,
    ZK_5151,
    Gateway,
    fixture_text,
    seed_notification,
)


async def validation_failure(gateway: Gateway, response: Any) -> str:
    body = json.loads(await response.read())
    assert response.status == 400, body
    error = body["errors"][0]
    assert error["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    assert gateway.upstream.received == []
    assert gateway.observer.decisions[-1].outcome == "deny"
    message: str = error["message"]
    # The policy writes the operation name capitalised, as seed 003 does.
    assert message.startswith("ZendNotificatie mutation: ")
    assert error["extensions"]["reason"] in message
    return message


async def test_ciz_notifies_zorgkantoor_and_the_upstream_answers(gateway: Gateway) -> None:
    token = gateway.token("ciz", [NOTIFICATIE_5151])
    response = await gateway.post(ZK_5151, token=token)
    assert response.status == 200
    assert len(gateway.upstream.received) == 1
    event = gateway.observer.decisions[-1]
    assert (event.outcome, event.rule) == ("allow", "iwlz-notificatie")
    assert event.policy_version and event.policy_version.startswith("sha256:")


async def test_token_without_instantie_type_is_refused(gateway: Gateway) -> None:
    token = gateway.token("no-instantie", [NOTIFICATIE_5151])
    body = seed_notification(afzenderID="11111111")
    message = await validation_failure(gateway, await gateway.post(ZK_5151, body, token=token))
    assert message.endswith("instantie_type claim not found")


async def test_afzender_type_of_another_kind_is_refused(gateway: Gateway) -> None:
    token = gateway.token("ciz", [NOTIFICATIE_5151])
    body = seed_notification(afzenderIDType="UZOVI", afzenderID="5152")
    message = await validation_failure(gateway, await gateway.post(ZK_5151, body, token=token))
    assert message.endswith("afzender_type is not valid")


async def test_afzender_id_of_someone_else_is_refused(gateway: Gateway) -> None:
    token = gateway.token("ciz", [NOTIFICATIE_5151])
    body = seed_notification(afzenderID="99999999")
    message = await validation_failure(gateway, await gateway.post(ZK_5151, body, token=token))
    assert message.endswith("afzender_id is not valid")


async def test_event_type_the_sender_may_not_send_is_refused(gateway: Gateway) -> None:
    token = gateway.token("zorgkantoor-5152", [NOTIFICATIE_5151])
    body = seed_notification(afzenderIDType="UZOVI", afzenderID="5152")
    message = await validation_failure(gateway, await gateway.post(ZK_5151, body, token=token))
    assert message.endswith("event_type is not valid")


async def test_recipient_of_the_wrong_kind_is_refused(gateway: Gateway) -> None:
    token = gateway.token("ciz", [NOTIFICATIE_AGB], ZA_AGB)
    body = seed_notification(ontvangerIDType="AGB", ontvangerID="12345678")
    message = await validation_failure(gateway, await gateway.post(ZA_AGB, body, token=token))
    assert message.endswith("ontvanger is not valid")


async def test_recipient_other_than_the_routes_deelnemer_is_refused(gateway: Gateway) -> None:
    token = gateway.token("ciz", [NOTIFICATIE_5151])
    body = seed_notification(ontvangerID="5152")
    message = await validation_failure(gateway, await gateway.post(ZK_5151, body, token=token))
    assert message.endswith("ontvanger is not valid")


async def test_zorgaanbieder_notification_is_refused_as_afzender_type(gateway: Gateway) -> None:
    # RFC0008 3.6: a notification comes from a register holder (UZOVI or KVK); a zorgaanbieder
    # holds none, so it is refused on its afzender type before its event type is looked at.
    token = gateway.token("zorgaanbieder-12345678", [NOTIFICATIE_5151])
    body = seed_notification(
        afzenderIDType="AGB",
        afzenderID="12345678",
        eventType="NIEUWE_BEMIDDELINGSPECIFICATIE_ZORGKANTOOR",
    )
    message = await validation_failure(gateway, await gateway.post(ZK_5151, body, token=token))
    assert message == "ZendNotificatie mutation: afzender_type is not valid"
    assert gateway.observer.decisions[-1].rule == "iwlz-notificatie/afzender-type"


async def test_zorgaanbieder_melding_to_a_zorgkantoor_is_forwarded(gateway: Gateway) -> None:
    # The other direction stays open: a deelnemer reports an error to the bronhouder.
    token = gateway.token("zorgaanbieder-12345678", [MELDING_5151])
    variables = {
        **variables_of("melding_rfc0018_variables.json"),
        "afzenderIDType": "AGB",
        "afzenderID": "12345678",
        "ontvangerIDType": "UZOVI",
        "ontvangerID": "5151",
    }
    body = {"query": fixture_text("melding_rfc0018.graphql"), "variables": variables}
    response = await gateway.post(ZK_5151, body, token=token)
    assert response.status == 200, await response.text()
    [received] = gateway.upstream.received
    assert json.loads(received.body) == body
    assert gateway.observer.decisions[-1].rule == "iwlz-melding"


def variables_of(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(fixture_text(name))
    return loaded


SHAPES: dict[str, Callable[[], dict[str, Any]]] = {
    "seed_example": lambda: seed_notification(),
    "one_variable": lambda: {
        "query": fixture_text("one_variable.graphql"),
        "variables": variables_of("one_variable_variables.json"),
    },
    "inline_literals": lambda: {"query": fixture_text("inline_literals.graphql")},
    "alias": lambda: {
        "query": fixture_text("alias.graphql"),
        "variables": variables_of("one_variable_variables.json"),
    },
    "fragments": lambda: {
        "query": fixture_text("fragments.graphql"),
        "variables": variables_of("one_variable_variables.json"),
    },
}


@pytest.mark.parametrize("shape", sorted(SHAPES))
async def test_sender_shapes_are_allowed_and_forwarded(gateway: Gateway, shape: str) -> None:
    token = gateway.token("ciz", [NOTIFICATIE_5151])
    body = SHAPES[shape]()
    response = await gateway.post(ZK_5151, body, token=token)
    assert response.status == 200, await response.text()
    [received] = gateway.upstream.received
    assert json.loads(received.body) == body


@pytest.mark.parametrize("shape", ["one_variable", "alias", "fragments"])
async def test_sender_shapes_are_decided_on_their_values(gateway: Gateway, shape: str) -> None:
    token = gateway.token("ciz", [NOTIFICATIE_5151])
    body = SHAPES[shape]()
    body["variables"]["notificatieInput"]["afzenderID"] = "99999999"
    response = await gateway.post(ZK_5151, body, token=token)
    assert response.status == 400
    assert gateway.upstream.received == []


async def test_skipped_selection_is_still_decided_on_its_arguments(gateway: Gateway) -> None:
    query = """
    mutation Zend($input: NotificatieInput!, $skip: Boolean!) {
      zendNotificatie(notificatieInput: $input) {
        notificatieID
        eventType @skip(if: $skip)
      }
    }"""
    variables = {
        "input": variables_of("one_variable_variables.json")["notificatieInput"],
        "skip": True,
    }
    token = gateway.token("ciz", [NOTIFICATIE_5151])
    assert (
        await gateway.post(ZK_5151, {"query": query, "variables": variables}, token=token)
    ).status == 200
    variables["input"]["ontvangerID"] = "5152"
    response = await gateway.post(ZK_5151, {"query": query, "variables": variables}, token=token)
    assert response.status == 400
    assert len(gateway.upstream.received) == 1  # the first, allowed request only


async def test_two_operations_are_refused_even_when_operation_name_picks_one(
    gateway: Gateway,
) -> None:
    query = fixture_text("seed_003_example.graphql") + (
        "\nmutation Other { zendNotificatie(notificatieInput: {afzenderIDType: KVK, "
        'afzenderID: "1", ontvangerIDType: UZOVI, ontvangerID: "5151", eventType: "X", '
        'timestamp: "2024-07-02", subjectList: []}) { notificatieID } }'
    )
    token = gateway.token("ciz", [NOTIFICATIE_5151])
    for name in ("zendNotificatie", "Other", None):
        body = {"query": query, "variables": seed_notification()["variables"]}
        if name is not None:
            body["operationName"] = name
        response = await gateway.post(ZK_5151, body, token=token)
        answer = json.loads(await response.read())
        assert response.status == 400
        assert answer["errors"][0]["message"] == "Only one operation at the time is supported."
    assert gateway.upstream.received == []
