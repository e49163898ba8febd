"""The decision event's audit values (event type, afzender, ontvanger, subjects, records)
come from the deciding policy's ``audit:`` block: through the real gateway over HTTP."""

from __future__ import annotations

from typing import Any

from tests.fixtures.gateway import (
    CIZ,
    MELDING_KVK,
    NOTIFICATIE_5151,
    NOTIFICATIE_AGB,
    ZK_5151,
    Gateway,
    seed_notification,
)

RECORD = "WlzIndicatie/ef88ce35-58fa-4e6d-ac7a-6e298dd211d6"

MELDING = {
    "query": (
        "mutation zendMelding($input: MeldingInput!) "
        "{ zendMelding(meldingInput: $input) { meldingID } }"
    ),
    "variables": {
        "input": {
            "afzenderID": "12345678",
            "afzenderIDType": "AGB",
            "eventType": "IWLZFOUTMELDING",
            "ontvangerID": "62253778",
            "ontvangerIDType": "KVK",
            "timestamp": "2024-07-02T00:00:00Z",
            "subjectList": [
                {"subject": "WlzIndicatie/1", "recordID": "WlzIndicatie/r-1"},
                {"subject": "WlzIndicatie/2", "recordID": "WlzIndicatie/r-2"},
            ],
        }
    },
    "operationName": "zendMelding",
}


def audit_values(gateway: Gateway) -> tuple[Any, ...]:
    [event] = gateway.observer.decisions
    return (
        event.outcome,
        event.status,
        event.event_type,
        event.afzender,
        event.ontvanger,
        event.subjects,
        event.records,
    )


async def test_a_policy_refusal_records_what_was_sent(gateway: Gateway) -> None:
    token = gateway.token("ciz", [NOTIFICATIE_5151])
    response = await gateway.post(ZK_5151, seed_notification(afzenderID="11111111"), token=token)
    assert response.status == 400
    assert audit_values(gateway) == (
        "deny",
        400,
        "NIEUWE_INDICATIE_ZORGKANTOOR",
        "KVK:11111111",
        "UZOVI:5151",
        (RECORD,),
        (RECORD,),
    )
    assert gateway.upstream.received == []


async def test_a_melding_records_its_own_input_fields(gateway: Gateway) -> None:
    token = gateway.token("zorgaanbieder-12345678", [MELDING_KVK], path=CIZ)
    response = await gateway.post(CIZ, MELDING, token=token)
    assert response.status == 200, await response.text()
    assert audit_values(gateway) == (
        "allow",
        200,
        "IWLZFOUTMELDING",
        "AGB:12345678",
        "KVK:62253778",
        ("WlzIndicatie/1", "WlzIndicatie/2"),
        ("WlzIndicatie/r-1", "WlzIndicatie/r-2"),
    )


async def test_refusals_before_the_policy_record_no_audit_values(gateway: Gateway) -> None:
    # No token, a body that is not JSON, a token whose scope does not match the route.
    await gateway.post(ZK_5151)
    await gateway.post(
        ZK_5151,
        token=gateway.token("ciz", [NOTIFICATIE_5151]),
        data=b"{not json",
        headers={"Content-Type": "application/json"},
    )
    await gateway.post(ZK_5151, token=gateway.token("ciz", [NOTIFICATIE_AGB]))
    assert [
        (e.status, e.event_type, e.afzender, e.ontvanger, e.subjects, e.records)
        for e in gateway.observer.decisions
    ] == [
        (401, None, None, None, (), ()),
        (400, None, None, None, (), ()),
        (403, None, None, None, (), ()),
    ]
    assert gateway.upstream.received == []
