"""Bearer tokens the verifier must refuse precisely (401), never with a 500: bytes that are
not ASCII in the Authorization header (what aiohttp hands over for them). Time claims that are
not JSON numbers are refused by the verifier itself (``test_verifier.py``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import BaseTestServer

from gateway.app import create_app
from tests.fixtures.gateway import (
    ZK_5151,
    Gateway,
    RecordingUpstream,
    gateway_yaml,
    seed_notification,
    write_config,
)
from tests.rawhttp import RawResponse, raw_post

NON_ASCII_BEARERS = {
    "a byte that is not UTF-8": b"\xff",
    "UTF-8 that is not ASCII": "é".encode(),
}


async def bearer_post(server: BaseTestServer, token: bytes) -> RawResponse:
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
    tmp_path: Path,
    aiohttp_server: Any,
    upstream: RecordingUpstream,
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
