"""The contract's refusal table, row by row, through the real gateway over HTTP.

Every refusal is a GraphQL error body with code, reason and decision id, carries the trace
headers, is reported as exactly one decision event, and never reaches the upstream.
"""

from __future__ import annotations

import json
from typing import Any

from tests.fixtures.gateway import (
    NOTIFICATIE_5151,
    NOTIFICATIE_AGB,
    ZK_5151,
    Gateway,
    seed_notification,
)


async def refusal(response: Any, status: int, code: str) -> dict[str, Any]:
    """Assert the contract's refusal shape and return the single error."""
    assert response.status == status, await response.text()
    assert response.headers["Content-Type"].startswith("application/graphql-response+json")
    body = json.loads(await response.read())
    [error] = body["errors"]
    assert error["extensions"]["code"] == code
    assert len(error["extensions"]["decision_id"]) == 32
    assert error["extensions"]["reason"]
    return dict(error)


def ciz_token(gateway: Gateway) -> str:
    return gateway.token("ciz", [NOTIFICATIE_5151])


async def test_missing_token_is_401_with_bare_bearer_challenge(gateway: Gateway) -> None:
    response = await gateway.post(ZK_5151)
    error = await refusal(response, 401, "UNAUTHENTICATED")
    assert error["message"] == "Missing bearer token"
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="nid-gateway"'
    assert gateway.upstream.received == []


async def test_malformed_token_is_401_with_invalid_token_challenge(gateway: Gateway) -> None:
    response = await gateway.post(ZK_5151, token="not-a-jwt")
    await refusal(response, 401, "UNAUTHENTICATED")
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]
    assert gateway.upstream.received == []


async def test_basic_credentials_are_not_a_bearer_token(gateway: Gateway) -> None:
    response = await gateway.post(ZK_5151, headers={"Authorization": "Basic Y2l6OnNlY3JldA=="})
    await refusal(response, 401, "UNAUTHENTICATED")
    assert gateway.upstream.received == []


async def test_token_without_the_routes_scope_is_403_insufficient_scope(gateway: Gateway) -> None:
    token = gateway.token("ciz", [NOTIFICATIE_AGB])
    response = await gateway.post(ZK_5151, token=token)
    error = await refusal(response, 403, "FORBIDDEN")
    assert error["message"] == "Request Does Not Match Scopes"
    challenge = response.headers["WWW-Authenticate"]
    assert 'error="insufficient_scope"' in challenge
    assert NOTIFICATIE_5151 in challenge
    assert gateway.upstream.received == []


async def test_root_field_without_a_configured_scope_is_refused(gateway: Gateway) -> None:
    body = {"query": "query { notificaties { notificatieID } }"}
    response = await gateway.post(ZK_5151, body, token=ciz_token(gateway))
    error = await refusal(response, 403, "FORBIDDEN")
    assert error["message"] == "Request Does Not Match Scopes"
    assert gateway.upstream.received == []


async def test_invalid_query_syntax_is_400_parse_failed(gateway: Gateway) -> None:
    body = {"query": "mutation { zendNotificatie(", "variables": {}}
    response = await gateway.post(ZK_5151, body, token=ciz_token(gateway))
    error = await refusal(response, 400, "GRAPHQL_PARSE_FAILED")
    assert error["message"] == "Invalid Query Syntax"
    assert gateway.upstream.received == []


async def test_unknown_operation_name_is_no_operation_found(gateway: Gateway) -> None:
    body = seed_notification()
    body["operationName"] = "somethingElse"
    response = await gateway.post(ZK_5151, body, token=ciz_token(gateway))
    error = await refusal(response, 400, "BAD_REQUEST")
    assert error["message"] == "No operation found to evaluate"
    assert gateway.upstream.received == []


async def test_two_operations_without_operation_name_are_refused(gateway: Gateway) -> None:
    query = seed_notification()["query"] + "\nquery other { notificaties { notificatieID } }"
    body = {"query": query, "variables": seed_notification()["variables"]}
    response = await gateway.post(ZK_5151, body, token=ciz_token(gateway))
    error = await refusal(response, 400, "BAD_REQUEST")
    assert error["message"] == "Only one operation at the time is supported."
    assert gateway.upstream.received == []


async def test_two_root_fields_are_refused(gateway: Gateway) -> None:
    query = "mutation { a: zendNotificatie { notificatieID } b: zendMelding { meldingID } }"
    response = await gateway.post(ZK_5151, {"query": query}, token=ciz_token(gateway))
    error = await refusal(response, 400, "BAD_REQUEST")
    assert error["message"] == "Only one selectionset in an operation is supported."
    assert gateway.upstream.received == []


async def test_declared_body_over_the_limit_is_413(gateway: Gateway) -> None:
    data = json.dumps({"query": "x" * (70 * 1024)}).encode()
    response = await gateway.post(
        ZK_5151,
        token=ciz_token(gateway),
        data=data,
        headers={"Content-Type": "application/json"},
    )
    error = await refusal(response, 413, "PAYLOAD_TOO_LARGE")
    assert "65536" in error["message"]
    assert gateway.upstream.received == []


async def test_chunked_body_over_the_limit_is_413(gateway: Gateway) -> None:
    async def chunks() -> Any:
        for _ in range(80):
            yield b"x" * 1024

    response = await gateway.client.post(
        ZK_5151,
        data=chunks(),
        headers={
            "Authorization": f"Bearer {ciz_token(gateway)}",
            "Content-Type": "application/json",
        },
    )
    await refusal(response, 413, "PAYLOAD_TOO_LARGE")
    assert gateway.upstream.received == []


async def test_wrong_content_type_is_415(gateway: Gateway) -> None:
    response = await gateway.post(
        ZK_5151,
        token=ciz_token(gateway),
        data=b"query=x",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    await refusal(response, 415, "BAD_REQUEST")
    assert gateway.upstream.received == []


async def test_get_is_405_with_allow_header(gateway: Gateway) -> None:
    response = await gateway.client.get(ZK_5151)
    await refusal(response, 405, "BAD_REQUEST")
    assert response.headers["Allow"] == "POST"
    assert gateway.upstream.received == []


async def test_body_that_is_not_json_is_400(gateway: Gateway) -> None:
    response = await gateway.post(
        ZK_5151,
        token=ciz_token(gateway),
        data=b"{not json",
        headers={"Content-Type": "application/json"},
    )
    await refusal(response, 400, "BAD_REQUEST")
    assert gateway.upstream.received == []


async def test_refusal_is_plain_json_when_the_client_asks_for_it(gateway: Gateway) -> None:
    response = await gateway.post(ZK_5151, headers={"Accept": "application/json"})
    assert response.status == 401
    assert response.headers["Content-Type"].startswith("application/json")
    assert gateway.upstream.received == []


async def test_refusal_prefers_graphql_media_type_when_both_are_accepted(
    gateway: Gateway,
) -> None:
    accept = "application/graphql-response+json, application/json;q=0.9"
    response = await gateway.post(ZK_5151, headers={"Accept": accept})
    assert response.status == 401
    assert response.headers["Content-Type"].startswith("application/graphql-response+json")
    assert gateway.upstream.received == []


async def test_refusal_carries_trace_headers_and_request_id(gateway: Gateway) -> None:
    trace = "0af7651916cd43dd8448eb211c80319c"
    response = await gateway.post(
        ZK_5151,
        headers={"traceparent": f"00-{trace}-b7ad6b7169203331-01", "X-Request-ID": "req-42"},
    )
    assert response.status == 401
    assert response.headers["traceparent"].startswith(f"00-{trace}-")
    assert response.headers["X-B3-TraceId"] == trace
    assert response.headers["X-Request-ID"] == "req-42"
    assert gateway.upstream.received == []


async def test_each_request_reports_exactly_one_decision(gateway: Gateway) -> None:
    await gateway.post(ZK_5151)
    await gateway.client.get(ZK_5151)
    await gateway.post(ZK_5151, token=ciz_token(gateway))
    outcomes = [(e.outcome, e.status) for e in gateway.observer.decisions]
    assert outcomes == [("deny", 401), ("deny", 405), ("allow", 200)]
    assert len(gateway.upstream.received) == 1  # the allowed one only
    event = gateway.observer.decisions[-1]
    assert event.client_id == "ciz"
    assert event.afzender == "KVK:62253778"
    assert event.ontvanger == "UZOVI:5151"
    assert event.event_type == "NIEUWE_INDICATIE_ZORGKANTOOR"
    assert event.records == ("WlzIndicatie/ef88ce35-58fa-4e6d-ac7a-6e298dd211d6",)
    assert event.policy_version
    assert event.total_ms > 0
