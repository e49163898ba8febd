"""What the upstream receives, what the caller gets back, and upstream failures."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import jwt
import pytest

from tests.fixtures.gateway import (
    DOWN,
    NOTIFICATIE_5151,
    RESET,
    RESET_SMALL,
    SLOW,
    UPSTREAM_ANSWER,
    ZK_5151,
    Gateway,
    GatewayFactory,
    RecordingUpstream,
    route,
    seed_notification,
)

BIG = "/deelnemers/uzovi/5151/big"


def token_for(gateway: Gateway, path: str = ZK_5151) -> str:
    return gateway.token("ciz", [NOTIFICATIE_5151], path)


async def test_upstream_gets_the_original_body_bytes_unchanged(gateway: Gateway) -> None:
    # Odd but valid JSON: spacing, key order and escapes must survive byte for byte.
    body = seed_notification()
    data = (
        b'{ "variables" : '
        + json.dumps(body["variables"], indent=3).encode()
        + (
            b', "operationName":"zendNotificatie", "query": '
            + json.dumps(body["query"]).encode()
            + b" }"
        )
    )
    response = await gateway.post(
        ZK_5151,
        token=token_for(gateway),
        data=data,
        headers={"Content-Type": "application/json; charset=utf-8"},
    )
    assert response.status == 200
    [received] = gateway.upstream.received
    assert received.body == data
    assert received.headers["Content-Type"] == "application/json; charset=utf-8"


async def test_upstream_answer_is_passed_back_unchanged(gateway: Gateway) -> None:
    response = await gateway.post(ZK_5151, token=token_for(gateway))
    assert response.status == 200
    assert await response.read() == UPSTREAM_ANSWER
    assert response.headers["X-Upstream"] == "yes"
    # Hop-by-hop headers of the upstream, and those it named in Connection, stay behind.
    assert "X-Secret-Hop" not in response.headers


async def test_the_answer_carries_the_gateways_trace_headers_not_the_upstreams(
    gateway: Gateway,
) -> None:
    response = await gateway.post(
        ZK_5151, token=token_for(gateway), headers={"X-Request-ID": "caller-id-1"}
    )
    assert response.status == 200
    [received] = gateway.upstream.received
    # One of each, and the same the upstream was given: the caller continues from our span.
    for name in ("traceparent", "X-Request-ID", "X-B3-TraceId", "X-B3-SpanId"):
        assert response.headers.getall(name) == [received.headers[name]]
    assert response.headers["X-Request-ID"] == "caller-id-1"
    assert "X-B3-ParentSpanId" not in response.headers  # the caller sent no parent span


async def test_accept_encoding_identity_unless_the_caller_chose(gateway: Gateway) -> None:
    await gateway.post(ZK_5151, token=token_for(gateway), skip_auto_headers=("Accept-Encoding",))
    await gateway.post(ZK_5151, token=token_for(gateway), headers={"Accept-Encoding": "gzip"})
    await gateway.post(
        ZK_5151,
        token=token_for(gateway),
        headers={"Accept-Encoding": "gzip", "Connection": "Accept-Encoding"},
    )
    absent, chosen, hop = gateway.upstream.received
    assert absent.headers.getall("Accept-Encoding") == ["identity"]
    assert chosen.headers.getall("Accept-Encoding") == ["gzip"]
    assert hop.headers.getall("Accept-Encoding") == ["identity"]  # named in Connection: dropped


async def test_claims_header_is_the_verified_payload(gateway: Gateway) -> None:
    token = token_for(gateway)
    await gateway.post(ZK_5151, token=token, headers={"claims": '{"kvk":"forged"}'})
    [received] = gateway.upstream.received
    assert received.headers.getall("claims") == [received.headers["claims"]]
    assert json.loads(received.headers["claims"]) == jwt.decode(
        token, options={"verify_signature": False}
    )


async def test_authorization_is_not_forwarded(gateway: Gateway) -> None:
    await gateway.post(ZK_5151, token=token_for(gateway))
    [received] = gateway.upstream.received
    assert "Authorization" not in received.headers


async def test_route_with_forward_authorization_passes_authorization_upstream(
    make_gateway: GatewayFactory, upstream: RecordingUpstream
) -> None:
    routes = [
        route(
            ZK_5151,
            f"{upstream.url}/graphql",
            "UZOVI",
            "5151",
            "zorgkantoor",
            forward_authorization=True,
        )
    ]
    gateway = await make_gateway(routes=routes)
    assert gateway.config.routes[0].forward_authorization is True
    token = token_for(gateway)
    assert (await gateway.post(ZK_5151, token=token)).status == 200
    [received] = gateway.upstream.received
    assert received.headers.getall("Authorization") == [f"Bearer {token}"]


async def test_hop_by_hop_request_headers_are_removed(gateway: Gateway) -> None:
    await gateway.post(
        ZK_5151,
        token=token_for(gateway),
        headers={
            "Connection": "keep-alive, X-Private",
            "X-Private": "1",
            "Keep-Alive": "5",
            "Proxy-Authorization": "Basic eDp5",
            "X-Custom": "kept",
            "Accept": "application/graphql-response+json",
        },
    )
    [received] = gateway.upstream.received
    for name in ("X-Private", "Keep-Alive", "Proxy-Authorization"):
        assert name not in received.headers
    assert received.headers["X-Custom"] == "kept"
    assert received.headers["Accept"] == "application/graphql-response+json"


async def test_header_names_are_matched_case_insensitively(gateway: Gateway) -> None:
    # HTTP header names are case-insensitive: a lower-case `authorization` or `claims`
    # must be stripped as surely as the capitalised spelling.
    await gateway.post(
        ZK_5151,
        headers={
            "authorization": f"Bearer {token_for(gateway)}",
            "claims": '{"forged":1}',
            "connection": "x-private",
            "x-private": "1",
            "keep-alive": "5",
            "proxy-authorization": "Basic eDp5",
        },
    )
    [received] = gateway.upstream.received
    for name in ("Authorization", "X-Private", "Keep-Alive", "Proxy-Authorization"):
        assert name not in received.headers
    assert received.headers.getall("claims") == [received.headers["claims"]]
    assert "forged" not in received.headers["claims"]


async def test_forwarded_headers_are_set_and_appended(gateway: Gateway) -> None:
    await gateway.post(
        ZK_5151, token=token_for(gateway), headers={"X-Forwarded-For": "203.0.113.7"}
    )
    [received] = gateway.upstream.received
    assert received.headers["X-Forwarded-For"] == "203.0.113.7, 127.0.0.1"
    assert received.headers["X-Forwarded-Proto"] == "http"
    assert received.headers["X-Forwarded-Host"].startswith("127.0.0.1:")


async def test_w3c_trace_is_continued_with_a_new_span(gateway: Gateway) -> None:
    trace, parent = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    response = await gateway.post(
        ZK_5151, token=token_for(gateway), headers={"traceparent": f"00-{trace}-{parent}-01"}
    )
    [received] = gateway.upstream.received
    version, trace_id, span, flags = received.headers["traceparent"].split("-")
    assert (version, trace_id, flags) == ("00", trace, "01")
    assert span != parent and len(span) == 16
    assert response.headers["traceparent"] == received.headers["traceparent"]
    assert received.headers["X-B3-TraceId"] == trace
    assert received.headers["X-B3-ParentSpanId"] == parent
    assert gateway.observer.decisions[-1].trace_id == trace


async def test_b3_trace_is_continued(gateway: Gateway) -> None:
    trace, parent = "463ac35c9f6413ad", "a2fb4a1d1a96d312"
    response = await gateway.post(
        ZK_5151, token=token_for(gateway), headers={"X-B3-TraceId": trace, "X-B3-SpanId": parent}
    )
    [received] = gateway.upstream.received
    assert received.headers["X-B3-TraceId"] == trace
    assert received.headers["X-B3-ParentSpanId"] == parent
    assert received.headers["X-B3-SpanId"] not in (parent, "")
    assert received.headers["traceparent"].split("-")[1] == trace.rjust(32, "0")
    assert response.headers["X-B3-TraceId"] == trace


async def test_trace_and_request_id_are_created_when_missing(gateway: Gateway) -> None:
    response = await gateway.post(ZK_5151, token=token_for(gateway))
    [received] = gateway.upstream.received
    trace = received.headers["X-B3-TraceId"]
    assert len(trace) == 32 and received.headers["traceparent"].split("-")[1] == trace
    assert len(received.headers["X-Request-ID"]) == 32
    assert response.headers["X-Request-ID"] == received.headers["X-Request-ID"]


async def test_request_id_is_continued(gateway: Gateway) -> None:
    await gateway.post(ZK_5151, token=token_for(gateway), headers={"X-Request-ID": "abc-123"})
    [received] = gateway.upstream.received
    assert received.headers["X-Request-ID"] == "abc-123"


async def test_upstream_down_is_502_at_once(gateway: Gateway) -> None:
    response = await gateway.post(DOWN, token=token_for(gateway, DOWN))
    assert response.status == 502
    body = json.loads(await response.read())
    assert body["errors"][0]["extensions"]["code"] == "BAD_GATEWAY"
    assert gateway.observer.upstream_errors == [(DOWN, "refused")]
    event = gateway.observer.decisions[-1]
    assert (event.outcome, event.status, event.upstream_error) == ("error", 502, "refused")


async def test_slow_upstream_is_504_after_the_route_timeout(gateway: Gateway) -> None:
    response = await gateway.post(SLOW, token=token_for(gateway, SLOW))
    assert response.status == 504
    body = json.loads(await response.read())
    assert body["errors"][0]["extensions"]["code"] == "GATEWAY_TIMEOUT"
    assert gateway.observer.upstream_errors == [(SLOW, "timeout")]
    assert gateway.observer.decisions[-1].total_ms < 3000


async def test_upstream_reset_mid_body_aborts_the_client_connection(gateway: Gateway) -> None:
    response = await gateway.post(RESET, token=token_for(gateway, RESET))
    assert response.status == 200  # already sent before the upstream broke off
    with pytest.raises(aiohttp.ClientPayloadError):
        await response.read()
    assert gateway.observer.upstream_errors == [(RESET, "reset")]
    event = gateway.observer.decisions[-1]
    assert (event.outcome, event.upstream_error) == ("error", "reset")


async def test_upstream_reset_within_a_small_answer_is_502(gateway: Gateway) -> None:
    # A small declared answer is read whole before the caller gets anything, so an
    # upstream breaking off mid-body still gets an honest status instead of an abort.
    response = await gateway.post(RESET_SMALL, token=token_for(gateway, RESET_SMALL))
    assert response.status == 502
    body = await response.json()
    assert body["errors"][0]["extensions"]["code"] == "BAD_GATEWAY"
    assert gateway.observer.upstream_errors == [(RESET_SMALL, "reset")]
    event = gateway.observer.decisions[-1]
    assert (event.outcome, event.status, event.upstream_error) == ("error", 502, "reset")


async def test_large_chunked_answer_is_streamed_through(gateway: Gateway) -> None:
    response = await gateway.post(BIG, token=token_for(gateway, BIG))
    assert response.status == 207
    body = await response.read()
    assert len(body) == 64 * 16_384
    assert body[:5] == b"00000" and body[-16_384:-16_379] == b"00063"


async def test_keep_alive_connection_is_reused(gateway: Gateway) -> None:
    token = token_for(gateway)
    for _ in range(3):
        assert (await gateway.post(ZK_5151, token=token)).status == 200
    peers = {r.peer for r in gateway.upstream.received}
    assert len(gateway.upstream.received) == 3 and len(peers) == 1


async def test_readiness_reports_upstream_and_policies(gateway: Gateway) -> None:
    from gateway.observability.health import READINESS_CHECKS

    checks: Any = gateway.client.app[READINESS_CHECKS]
    ok, detail = await checks[f"upstream:{ZK_5151}"]()
    assert ok and detail["url"].endswith("/graphql")
    down_ok, _ = await checks[f"upstream:{DOWN}"]()
    assert not down_ok
    policies_ok, policies = await checks["policies"]()
    assert policies_ok and all(v.startswith("sha256:") for v in policies["versions"].values())
