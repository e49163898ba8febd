"""Bearer tokens the verifier must refuse precisely (401), never with a 500: bytes that are
not ASCII in the Authorization header, and time claims that are not JSON numbers."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestServer

from gateway.app import create_app
from tests.pep.conftest import (
    ZK_5151,
    Gateway,
    RecordingUpstream,
    gateway_yaml,
    seed_notification,
    write_config,
)
from tests.rawhttp import RawResponse, raw_post
from tests.tokens.forge import claims, sign_with_gateway_key

from .test_jwt_attacks import assert_unauthenticated

NOW = int(time.time())
NOT_NUMBERS: dict[str, dict[str, Any]] = {
    "exp as a string": {"exp": str(NOW + 600)},
    "exp as a far-future string": {"exp": "9999999999"},
    "exp true": {"exp": True},
    "exp infinite": {"exp": float("inf")},
    "nbf as a string": {"nbf": "0"},
    "nbf false": {"nbf": False},
    "iat as a string": {"iat": str(NOW)},
    "iat as an array": {"iat": [NOW]},
}


@pytest.mark.parametrize("overrides", NOT_NUMBERS.values(), ids=NOT_NUMBERS.keys())
async def test_time_claim_that_is_not_a_json_number_is_refused(
    gateway: Gateway, overrides: dict[str, Any]
) -> None:
    [claim] = overrides
    token = sign_with_gateway_key(gateway, claims(ZK_5151, **overrides))
    message = await assert_unauthenticated(gateway, token, f"{claim} must be a number")
    assert message == f"Token claim {claim} must be a number"
    [event] = gateway.observer.decisions
    assert event.reason == f"malformed_{claim}"


async def test_time_claims_as_floats_are_accepted(gateway: Gateway) -> None:
    payload = claims(ZK_5151, iat=NOW + 0.5, nbf=NOW - 0.25, exp=NOW + 600.75)
    response = await gateway.post(ZK_5151, token=sign_with_gateway_key(gateway, payload))
    assert response.status == 200


NON_ASCII_BEARERS = {
    "a byte that is not UTF-8": b"\xff",
    "UTF-8 that is not ASCII": "é".encode(),
}


async def bearer_post(server: TestServer, token: bytes) -> RawResponse:
    headers = [
        (b"Content-Type", b"application/json"),
        (b"Authorization", b"Bearer " + token),
    ]
    body = json.dumps(seed_notification()).encode()
    return await raw_post(server.host, server.port, ZK_5151, headers, body)


def unauthenticated(response: RawResponse) -> dict[str, Any]:
    assert response.status == 401, response.body
    challenge = response.header("WWW-Authenticate") or ""
    assert challenge.startswith("Bearer ") and 'error="invalid_token"' in challenge
    body: dict[str, Any] = json.loads(response.body)
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    return body


@pytest.mark.parametrize("byte", NON_ASCII_BEARERS.values(), ids=NON_ASCII_BEARERS.keys())
async def test_bearer_token_with_a_non_ascii_byte_is_unauthenticated(
    gateway: Gateway, byte: bytes
) -> None:
    genuine = gateway.token("ciz", ["organisaties/zorgkantoor/notificaties/notificatie:create"])
    header, payload, signature = genuine.encode().split(b".")
    token = header + b"." + payload[:10] + byte + payload[10:] + b"." + signature
    body = unauthenticated(await bearer_post(gateway.client.server, token))
    assert body["errors"][0]["message"] == "Malformed token"
    assert gateway.upstream.received == []


async def test_non_ascii_bearer_token_logs_one_decision_line_without_traceback(
    tmp_path: Path, aiohttp_server: Any, upstream: RecordingUpstream,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # The whole gateway with its real observer, logging as `serve` does (no access log).
    data = gateway_yaml(upstream.url, "http://127.0.0.1:9/graphql")
    data["observability"] = {"log_format": "json", "log_level": "info"}
    server = await aiohttp_server(await create_app(write_config(tmp_path, data)), access_log=None)
    capsys.readouterr()
    unauthenticated(await bearer_post(server, b"eyJhbGciOiJFUzI1NiJ9.eyJ\xff.c2ln"))
    output = capsys.readouterr()
    lines = [json.loads(line) for line in output.out.splitlines() if line.strip()]
    assert [(x["event"], x["outcome"], x["status"]) for x in lines] == [("decision", "deny", 401)]
    assert lines[0]["reason"] == "malformed"
    assert "Traceback" not in output.out + output.err
    assert upstream.received == []
