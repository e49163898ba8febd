"""POST /auth/token under attack: unreadable credentials, brute force, client enumeration,
duplicated JSON members. Real HTTP (raw sockets where a client library would refuse to send
the bytes), real keys, real YAML."""

from __future__ import annotations

import asyncio
import base64
import gzip
import json
import shutil
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import jwt
import pytest
from aiohttp.test_utils import TestServer
from cryptography.hazmat.primitives.asymmetric import ec

from gateway.app import create_app
from gateway.config.loader import load_config
from gateway.config.secrets import hash_secret, verify_secret
from tests.fixtures.authserver import (
    AUDIENCE,
    SCOPE,
    SECRET,
    RecordingObserver,
    auth_app,
    client_key,
    write_deployment,
)
from tests.rawhttp import RawResponse, raw_post

REPO = Path(__file__).resolve().parents[2]
FORM = f"grant_type=client_credentials&scope={SCOPE}&audience={AUDIENCE}".encode()
FORM_TYPE = (b"Content-Type", b"application/x-www-form-urlencoded")

ServerFactory = Callable[..., Awaitable[TestServer]]


async def whole_gateway(
    aiohttp_server: ServerFactory, tmp_path: Path, **authserver: Any
) -> TestServer:
    """``create_app`` (real observer: JSON log lines, metrics) of a deployment with the iWlz
    policies, served as ``serve`` does by default (no access log)."""
    path = write_deployment(tmp_path, authserver=authserver)
    shutil.copytree(REPO / "policies" / "iwlz", tmp_path / "policies", dirs_exist_ok=True)
    return await aiohttp_server(await create_app(load_config(path)), access_log=None)


def basic(client_id: str = "ciz", secret: str = SECRET) -> tuple[bytes, bytes]:
    return b"Authorization", b"Basic " + base64.b64encode(f"{client_id}:{secret}".encode())


def secret_post(client_id: str = "ciz", secret: str = SECRET) -> bytes:
    return FORM + f"&client_id={client_id}&client_secret={secret}".encode()


@pytest.fixture
def start(
    tmp_path: Path,
    observer: RecordingObserver,
    aiohttp_server: Callable[..., Awaitable[TestServer]],
) -> ServerFactory:
    """Start the authorization server of a deployment with these ``authserver`` keys."""

    async def start(**authserver: Any) -> TestServer:
        config = load_config(write_deployment(tmp_path, authserver=authserver))
        app, _ = auth_app(config, observer)
        return await aiohttp_server(app)

    return start


async def post(
    server: TestServer, headers: list[tuple[bytes, bytes]], body: bytes = FORM
) -> RawResponse:
    return await raw_post(server.host, server.port, "/auth/token", [FORM_TYPE, *headers], body)


def error(response: RawResponse) -> tuple[int, str]:
    return response.status, json.loads(response.body)["error"]


# -- credentials that cannot be read: 401 invalid_client, never a 500 ----------------------
UNREADABLE_BASIC = {
    "raw byte not UTF-8 in the header": b"Basic Y2l6Onh4\xff",
    "UTF-8 but not ASCII in the header": "Basic Y2l6Onh4é".encode(),
    "base64 of bytes not UTF-8": b"Basic " + base64.b64encode(b"ciz:\xff\xfe"),
    "percent-encoding of bytes not UTF-8": b"Basic " + base64.b64encode(b"ciz:%FF%FE"),
    "not base64": b"Basic !!not*base64!!",
    "no colon": b"Basic " + base64.b64encode(b"ciz"),
    "empty secret": b"Basic " + base64.b64encode(b"ciz:"),
}


@pytest.mark.parametrize("value", UNREADABLE_BASIC.values(), ids=UNREADABLE_BASIC.keys())
async def test_unreadable_basic_credentials_are_invalid_client(
    start: ServerFactory, observer: RecordingObserver, value: bytes
) -> None:
    server = await start()
    response = await post(server, [(b"Authorization", value)])
    assert error(response) == (401, "invalid_client")
    assert response.header("WWW-Authenticate") == (
        'Basic realm="nid-gateway", error="invalid_client"'
    )
    assert "Basic credentials" in json.loads(response.body)["error_description"]
    [event] = observer.tokens
    assert event.outcome == "invalid_client"


async def test_unreadable_basic_credentials_log_one_line_without_traceback(
    aiohttp_server: ServerFactory, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    server = await whole_gateway(aiohttp_server, tmp_path)
    capsys.readouterr()
    response = await post(server, [(b"Authorization", b"Basic Y2l6OnNlY3JldA\xff==")])
    assert error(response) == (401, "invalid_client")
    output = capsys.readouterr()
    lines = [json.loads(line) for line in output.out.splitlines() if line.strip()]
    assert [(x["event"], x["outcome"]) for x in lines] == [("token", "invalid_client")]
    assert "Traceback" not in output.out + output.err
    assert "exception" not in lines[0]
    assert "Y2l6OnNlY3JldA" not in output.out + output.err  # not even the credentials' base64


# -- brute force: 429 + Retry-After per client_id and per source address -------------------
async def test_repeated_failures_for_a_client_id_block_it_even_with_the_right_secret(
    start: ServerFactory, observer: RecordingObserver
) -> None:
    server = await start(brute_force={"max_failures_per_client": 3, "window_seconds": 60})
    for _ in range(3):
        assert error(await post(server, [basic(secret="wrong")])) == (401, "invalid_client")
    blocked = await post(server, [basic()])
    assert error(blocked) == (429, "temporarily_unavailable")
    retry_after = blocked.header("Retry-After")
    assert retry_after is not None and 1 <= int(retry_after) <= 60
    assert blocked.header("Cache-Control") == "no-store"
    # client_secret_post names the same client_id: blocked as well.
    assert error(await post(server, [], secret_post())) == (429, "temporarily_unavailable")
    assert observer.tokens[-1].blocked_by == "client"


async def test_repeated_failures_from_an_address_block_every_client_id_from_it(
    start: ServerFactory, observer: RecordingObserver
) -> None:
    server = await start(
        brute_force={"max_failures_per_client": 100, "max_failures_per_address": 3}
    )
    for name in ("guess-1", "guess-2", "guess-3"):
        assert error(await post(server, [basic(name, "x")])) == (401, "invalid_client")
    assert error(await post(server, [basic()])) == (429, "temporarily_unavailable")
    assert observer.tokens[-1].blocked_by == "address"


async def test_unreadable_credentials_count_as_failures(start: ServerFactory) -> None:
    server = await start(brute_force={"max_failures_per_address": 2})
    for _ in range(2):
        response = await post(server, [(b"Authorization", b"Basic \xff")])
        assert error(response) == (401, "invalid_client")
    assert error(await post(server, [basic()])) == (429, "temporarily_unavailable")


async def test_successful_authentications_are_not_counted(start: ServerFactory) -> None:
    server = await start(brute_force={"max_failures_per_client": 2})
    for _ in range(5):
        assert (await post(server, [basic()])).status == 200
    assert error(await post(server, [basic(secret="wrong")])) == (401, "invalid_client")
    assert (await post(server, [basic()])).status == 200


async def test_other_errors_are_not_counted(start: ServerFactory) -> None:
    server = await start(brute_force={"max_failures_per_client": 1})
    wrong_scope = FORM.replace(b"notificatie:create", b"other")
    for _ in range(3):
        assert error(await post(server, [basic()], wrong_scope)) == (400, "invalid_scope")
    assert (await post(server, [basic()])).status == 200


async def test_once_the_window_has_passed_the_right_secret_works_again(
    start: ServerFactory,
) -> None:
    server = await start(brute_force={"max_failures_per_client": 2, "window_seconds": 1})
    for _ in range(2):
        await post(server, [basic(secret="wrong")])
    blocked = await post(server, [basic()])
    assert blocked.status == 429 and blocked.header("Retry-After") == "1"
    await asyncio.sleep(1.1)
    assert (await post(server, [basic()])).status == 200


async def test_blocked_requests_are_counted_by_limit_in_metrics(
    aiohttp_server: ServerFactory, tmp_path: Path
) -> None:
    server = await whole_gateway(
        aiohttp_server, tmp_path, brute_force={"max_failures_per_client": 1}
    )
    await post(server, [basic(secret="wrong")])
    await post(server, [basic()])
    await post(server, [basic()])
    async with aiohttp.ClientSession() as http, http.get(server.make_url("/metrics")) as r:
        metrics = await r.text()
    assert 'nid_gateway_token_auth_blocked_total{limit="client"} 2.0' in metrics
    assert 'nid_gateway_tokens_total{client="ciz",outcome="temporarily_unavailable"} 2.0' in metrics


# -- enumeration: an unknown client_id answers exactly like a wrong secret ------------------
def _comparable(response: RawResponse) -> tuple[int, list[tuple[str, str]], bytes]:
    """Everything of an answer except the clock (``Date``)."""
    headers = [(k, v) for k, v in response.headers if k.lower() != "date"]
    return response.status, headers, response.body


@pytest.mark.parametrize("method", ["client_secret_basic", "client_secret_post"])
async def test_unknown_client_and_wrong_secret_get_byte_identical_answers(
    start: ServerFactory, method: str
) -> None:
    server = await start()

    async def attempt(client_id: str, secret: str) -> RawResponse:
        if method == "client_secret_basic":
            return await post(server, [basic(client_id, secret)])
        return await post(server, [], secret_post(client_id, secret))

    wrong_secret = await attempt("ciz", "not-the-secret")
    unknown_client = await attempt("nobody", "not-the-secret")
    assert wrong_secret.status == 401
    assert _comparable(unknown_client) == _comparable(wrong_secret)


async def test_unknown_client_costs_one_secret_hash_like_a_wrong_secret(
    start: ServerFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gateway.authserver import clients

    hashed: list[str] = []
    real = verify_secret

    def counting(secret: str, salt: bytes, digest: bytes) -> bool:
        hashed.append(secret)
        return real(secret, salt, digest)

    monkeypatch.setattr(clients, "verify_secret", counting)
    server = await start()
    await post(server, [basic("ciz", "wrong-1")])
    await post(server, [basic("nobody", "wrong-2")])
    assert hashed == ["wrong-1", "wrong-2"]


async def test_unknown_client_is_blocked_after_as_many_failures_as_a_known_one(
    start: ServerFactory,
) -> None:
    server = await start(brute_force={"max_failures_per_client": 2})
    answers = []
    for client_id in ("ciz", "nobody"):
        for _ in range(3):
            answers.append((client_id, (await post(server, [basic(client_id, "x")])).status))
    assert answers == [
        ("ciz", 401),
        ("ciz", 401),
        ("ciz", 429),
        ("nobody", 401),
        ("nobody", 401),
        ("nobody", 429),
    ]


# -- strict JSON: a duplicated member is refused like a duplicated form parameter -----------
DUPLICATES = {
    "top level": (
        f'{{"grant_type":"client_credentials","scope":"a","scope":"b","audience":"{AUDIENCE}"}}'
    ),
    "nested": (
        f'{{"grant_type":"client_credentials","scope":"{SCOPE}","audience":"{AUDIENCE}",'
        '"x":{"y":[{"z":1,"z":2}]}}'
    ),
}


@pytest.mark.parametrize("body", DUPLICATES.values(), ids=DUPLICATES.keys())
async def test_json_body_with_a_duplicate_member_is_invalid_request(
    start: ServerFactory, body: str
) -> None:
    server = await start()
    json_type = (b"Content-Type", b"application/json")
    response = await raw_post(
        server.host, server.port, "/auth/token", [json_type, basic()], body.encode()
    )
    assert error(response) == (400, "invalid_request")
    assert "given more than once" in json.loads(response.body)["error_description"]


UNWRITABLE_JSON = {
    "lone surrogate escape": '{"grant_type":"client_credentials","client_id":"\\udcff"}',
    "lone surrogate in a name": '{"grant_type":"client_credentials","\\ud800":"x"}',
    "NaN": '{"grant_type":"client_credentials","x":NaN}',
    "deep nesting": '{"x":' + "[" * 5_000 + "]" * 5_000 + "}",
}


@pytest.mark.parametrize("body", UNWRITABLE_JSON.values(), ids=UNWRITABLE_JSON.keys())
async def test_json_body_that_cannot_be_logged_or_answered_is_invalid_request(
    tmp_path: Path, aiohttp_server: ServerFactory, body: str
) -> None:
    server = await whole_gateway(aiohttp_server, tmp_path)
    json_type = (b"Content-Type", b"application/json")
    response = await raw_post(server.host, server.port, "/auth/token", [json_type], body.encode())
    assert error(response) == (400, "invalid_request")


async def test_assertion_naming_an_unknown_client_reads_like_any_bad_assertion(
    tmp_path: Path, observer: RecordingObserver, aiohttp_server: ServerFactory
) -> None:
    _key, jwk = client_key()
    clients: list[dict[str, Any]] = [
        {
            "client_id": "zorgkantoor-5151",
            "auth_method": "private_key_jwt",
            "jwks": {"keys": [jwk]},
            "allowed_scopes": [SCOPE],
            "allowed_audiences": [AUDIENCE],
        },
        {
            "client_id": "ciz",
            "auth_method": "client_secret_basic",
            "secret_hash": hash_secret(SECRET),
            "allowed_scopes": [SCOPE],
            "allowed_audiences": [AUDIENCE],
        },
    ]
    app, _ = auth_app(load_config(write_deployment(tmp_path, clients=clients)), observer)
    server = await aiohttp_server(app)
    forger = ec.generate_private_key(ec.SECP256R1())  # not the client's key

    async def assert_as(sub: str) -> RawResponse:
        now = int(time.time())
        claims = {
            "iss": sub,
            "sub": sub,
            "aud": "http://127.0.0.1:8080/auth/token",
            "iat": now,
            "exp": now + 60,
            "jti": str(uuid.uuid4()),
        }
        signed = jwt.encode(claims, forger, algorithm="ES256", headers={"kid": "client-key-1"})
        body = (
            FORM
            + (
                "&client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
                f"&client_assertion={signed}"
            ).encode()
        )
        return await post(server, [], body)

    registered = await assert_as("zorgkantoor-5151")  # a bad signature
    without_jwks = await assert_as("ciz")
    unknown = await assert_as("nobody")
    assert error(registered) == (401, "invalid_client")
    assert _comparable(unknown) == _comparable(registered) == _comparable(without_jwks)


async def test_a_body_arriving_in_several_segments_is_read_whole(start: ServerFactory) -> None:
    server = await start()
    head = (
        b"POST /auth/token HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        b"Content-Type: application/x-www-form-urlencoded\r\n"
        + b": ".join(basic())
        + b"\r\n"
        + f"Content-Length: {len(FORM)}\r\n\r\n".encode()
    )
    reader, writer = await asyncio.open_connection(server.host, server.port)
    writer.write(head + FORM[:10])
    await writer.drain()
    await asyncio.sleep(0.2)  # the rest of the body in a later segment
    writer.write(FORM[10:])
    await writer.drain()
    answer = await reader.read()
    writer.close()
    assert answer.startswith(b"HTTP/1.1 200"), answer[:200]


@pytest.mark.parametrize(
    "body", [gzip.compress(FORM), b"\x1f\x8b\x08\x00corrupt"], ids=["gzip", "corrupt gzip"]
)
async def test_a_compressed_token_request_is_invalid_request(
    start: ServerFactory, body: bytes
) -> None:
    server = await start()
    response = await post(server, [basic(), (b"Content-Encoding", b"gzip")], body)
    assert error(response) == (400, "invalid_request")
    assert "Content-Encoding 'gzip'" in json.loads(response.body)["error_description"]
