"""private_key_jwt (RFC 7523) with a real signed assertion, and tls_client_auth over a
real mutual-TLS handshake with certificates made in the test."""

from __future__ import annotations

import datetime as dt
import ssl
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import jwt
import pytest
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from gateway.config.loader import load_config
from gateway.serving.lifecycle import build_ssl_context
from tests.fixtures.authserver import (
    AUDIENCE,
    SCOPE,
    RecordingObserver,
    auth_app,
    client_key,
    write_deployment,
)

TOKEN_URL = "http://127.0.0.1:8080/auth/token"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


# -- private_key_jwt ---------------------------------------------------------------------
@pytest.fixture
async def jwt_setup(
    tmp_path: Path, observer: RecordingObserver, aiohttp_client: Any
) -> tuple[Any, Any]:
    key, jwk = client_key()
    path = write_deployment(
        tmp_path,
        clients=[
            {
                "client_id": "zorgkantoor-5151",
                "auth_method": "private_key_jwt",
                "jwks": {"keys": [jwk]},
                "instantie_type": "Zorgkantoor",
                "identifiers": {"uzovi": "5151"},
                "allowed_scopes": [SCOPE],
                "allowed_audiences": [AUDIENCE],
            }
        ],
    )
    app, _ = auth_app(load_config(path), observer)
    return await aiohttp_client(app), key


def assertion(key: Any, **overrides: Any) -> str:
    now = int(time.time())
    claims = {
        "iss": "zorgkantoor-5151",
        "sub": "zorgkantoor-5151",
        "aud": TOKEN_URL,
        "iat": now,
        "exp": now + 60,
        "jti": str(uuid.uuid4()),
    }
    claims.update(overrides)
    claims = {k: v for k, v in claims.items() if v is not None}
    return jwt.encode(claims, key, algorithm="ES256", headers={"kid": "client-key-1"})


def grant(client_assertion: str) -> dict[str, str]:
    return {
        "grant_type": "client_credentials",
        "scope": SCOPE,
        "audience": AUDIENCE,
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": client_assertion,
    }


async def test_private_key_jwt_issues_a_token(
    jwt_setup: tuple[Any, Any], observer: RecordingObserver
) -> None:
    client, key = jwt_setup
    resp = await client.post("/auth/token", data=grant(assertion(key)))
    assert resp.status == 200
    claims = jwt.decode((await resp.json())["access_token"], options={"verify_signature": False})
    assert claims["client_id"] == "zorgkantoor-5151" and claims["uzovi"] == "5151"
    assert observer.tokens[-1].auth_method == "private_key_jwt"


async def test_private_key_jwt_accepts_the_issuer_as_audience(jwt_setup: tuple[Any, Any]) -> None:
    client, key = jwt_setup
    resp = await client.post("/auth/token", data=grant(assertion(key, aud="http://127.0.0.1:8080")))
    assert resp.status == 200


async def test_private_key_jwt_in_a_json_body(jwt_setup: tuple[Any, Any]) -> None:
    client, key = jwt_setup
    resp = await client.post("/auth/token", json=grant(assertion(key)))
    assert resp.status == 200


async def test_replayed_assertion_is_refused(jwt_setup: tuple[Any, Any]) -> None:
    client, key = jwt_setup
    once = assertion(key)
    assert (await client.post("/auth/token", data=grant(once))).status == 200
    resp = await client.post("/auth/token", data=grant(once))
    assert resp.status == 401 and (await resp.json())["error"] == "invalid_client"


async def test_assertion_for_another_audience_is_refused(jwt_setup: tuple[Any, Any]) -> None:
    client, key = jwt_setup
    resp = await client.post(
        "/auth/token", data=grant(assertion(key, aud="https://elsewhere/token"))
    )
    assert resp.status == 401 and (await resp.json())["error"] == "invalid_client"


async def test_expired_assertion_is_refused(jwt_setup: tuple[Any, Any]) -> None:
    client, key = jwt_setup
    past = int(time.time()) - 600
    resp = await client.post("/auth/token", data=grant(assertion(key, iat=past, exp=past + 60)))
    assert resp.status == 401


async def test_assertion_living_too_long_is_refused(jwt_setup: tuple[Any, Any]) -> None:
    client, key = jwt_setup
    resp = await client.post("/auth/token", data=grant(assertion(key, exp=int(time.time()) + 3600)))
    assert resp.status == 401


async def test_assertion_without_jti_is_refused(jwt_setup: tuple[Any, Any]) -> None:
    client, key = jwt_setup
    resp = await client.post("/auth/token", data=grant(assertion(key, jti=None)))
    assert resp.status == 401


async def test_assertion_signed_by_an_unregistered_key_is_refused(
    jwt_setup: tuple[Any, Any],
) -> None:
    client, _ = jwt_setup
    stranger = ec.generate_private_key(ec.SECP256R1())
    resp = await client.post("/auth/token", data=grant(assertion(stranger)))
    assert resp.status == 401 and (await resp.json())["error"] == "invalid_client"


async def test_assertion_with_hmac_is_refused(jwt_setup: tuple[Any, Any]) -> None:
    client, _ = jwt_setup
    now = int(time.time())
    forged = jwt.encode(
        {
            "iss": "zorgkantoor-5151",
            "sub": "zorgkantoor-5151",
            "aud": TOKEN_URL,
            "exp": now + 60,
            "jti": "x",
        },
        "a-guessable-shared-secret-of-32-bytes!",
        algorithm="HS256",
    )
    resp = await client.post("/auth/token", data=grant(forged))
    assert resp.status == 401


async def test_garbage_assertion_is_invalid_client_not_500(jwt_setup: tuple[Any, Any]) -> None:
    client, _ = jwt_setup
    resp = await client.post("/auth/token", data=grant("not.a.jwt"))
    assert resp.status == 401


# -- tls_client_auth -------------------------------------------------------------------------
def _name(cn: str, org: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, org),
        ]
    )


def _cert(
    subject: x509.Name,
    key: Any,
    issuer: x509.Name,
    issuer_key: Any,
    *,
    ca: bool = False,
    san: str | None = None,
) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if san:
        import ipaddress

        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(san))]), critical=False
        )
    return builder.sign(issuer_key, hashes.SHA256())


def _write(path: Path, cert: x509.Certificate, key: Any) -> tuple[Path, Path]:
    cert_path, key_path = path.with_suffix(".crt"), path.with_suffix(".key")
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@pytest.fixture
async def mtls(tmp_path: Path, observer: RecordingObserver) -> Any:
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name("Test CA", "nID test")
    ca_cert = _cert(ca_name, ca_key, ca_name, ca_key, ca=True)
    (tmp_path / "ca.crt").write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    server_key = ec.generate_private_key(ec.SECP256R1())
    _write(
        tmp_path / "server",
        _cert(_name("127.0.0.1", "gateway"), server_key, ca_name, ca_key, san="127.0.0.1"),
        server_key,
    )
    client_key_ = ec.generate_private_key(ec.SECP256R1())
    client_files = _write(
        tmp_path / "client", _cert(_name("ciz", "CIZ"), client_key_, ca_name, ca_key), client_key_
    )
    other_key = ec.generate_private_key(ec.SECP256R1())
    other_files = _write(
        tmp_path / "other", _cert(_name("someone", "Else"), other_key, ca_name, ca_key), other_key
    )

    path = write_deployment(
        tmp_path,
        server={
            "host": "127.0.0.1",
            "port": 8080,
            "tls": {
                "cert_file": "server.crt",
                "key_file": "server.key",
                "client_ca_file": "ca.crt",
            },
        },
        clients=[
            {
                "client_id": "ciz",
                "auth_method": "tls_client_auth",
                "tls_subject": "O=CIZ, CN=ciz",
                "instantie_type": "Onderneming",
                "identifiers": {"kvk": "62253778"},
                "allowed_scopes": [SCOPE],
                "allowed_audiences": [AUDIENCE],
            }
        ],
    )
    config = load_config(path)
    assert config.server.tls is not None
    app, _ = auth_app(config, observer)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=build_ssl_context(config.server.tls))
    await site.start()
    port = runner.addresses[0][1]

    def context(files: tuple[Path, Path] | None) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=str(tmp_path / "ca.crt"))
        if files:
            ctx.load_cert_chain(str(files[0]), str(files[1]))
        return ctx

    yield f"https://127.0.0.1:{port}/auth/token", context, client_files, other_files
    await runner.cleanup()


GRANT = {"grant_type": "client_credentials", "scope": SCOPE, "audience": AUDIENCE}


async def _post(url: str, ctx: ssl.SSLContext, data: dict[str, str]) -> tuple[int, dict[str, Any]]:
    async with aiohttp.ClientSession() as session, session.post(url, data=data, ssl=ctx) as resp:
        return resp.status, await resp.json()


async def test_tls_client_auth_with_a_registered_certificate(
    mtls: Any, observer: RecordingObserver
) -> None:
    url, context, client_files, _ = mtls
    status, body = await _post(url, context(client_files), {**GRANT, "client_id": "ciz"})
    assert status == 200
    claims = jwt.decode(body["access_token"], options={"verify_signature": False})
    assert claims["client_id"] == "ciz"
    assert observer.tokens[-1].auth_method == "tls_client_auth"


async def test_tls_client_auth_without_client_id_uses_the_subject(mtls: Any) -> None:
    url, context, client_files, _ = mtls
    status, _ = await _post(url, context(client_files), GRANT)
    assert status == 200


async def test_tls_certificate_with_an_unregistered_subject_is_refused(mtls: Any) -> None:
    url, context, _, other_files = mtls
    status, body = await _post(url, context(other_files), GRANT)
    assert (status, body["error"]) == (401, "invalid_client")


async def test_tls_without_a_client_certificate_is_refused(mtls: Any) -> None:
    url, context, _, _ = mtls
    status, body = await _post(url, context(None), {**GRANT, "client_id": "ciz"})
    assert (status, body["error"]) == (401, "invalid_client")


async def test_tls_client_id_not_matching_the_certificate_is_refused(mtls: Any) -> None:
    url, context, client_files, _ = mtls
    status, _ = await _post(url, context(client_files), {**GRANT, "client_id": "someone-else"})
    assert status == 401
