"""Forged and invalid tokens are refused with 401 before anything reaches the upstream."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any

import jwt

from tests.pep.conftest import ZK_5151, ZK_5152, Gateway, route, seed_notification
from tests.tokens.forge import (
    b64,
    claims,
    new_ec_key,
    public_pem,
    sign_with_gateway_key,
    signing_key,
    unsigned,
)


async def assert_unauthenticated(gateway: Gateway, token: str, fragment: str = "") -> str:
    response = await gateway.post(ZK_5151, token=token)
    body = json.loads(await response.read())
    assert response.status == 401, body
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]
    assert gateway.upstream.received == []
    message: str = body["errors"][0]["message"]
    assert fragment in message
    return message


async def test_genuine_token_signed_by_the_gateway_key_is_forwarded(gateway: Gateway) -> None:
    token = sign_with_gateway_key(gateway, claims(ZK_5151))
    response = await gateway.post(ZK_5151, token=token)
    assert response.status == 200
    assert len(gateway.upstream.received) == 1


async def test_alg_none_is_refused(gateway: Gateway) -> None:
    kid, _key = signing_key(gateway)
    token = unsigned({"alg": "none", "typ": "at+jwt", "kid": kid}, claims(ZK_5151))
    await assert_unauthenticated(gateway, token, "algorithm")


async def test_hs256_signed_with_the_public_key_is_refused(gateway: Gateway) -> None:
    kid, _key = signing_key(gateway)
    header = {"alg": "HS256", "typ": "at+jwt", "kid": kid}
    payload = b64(json.dumps(claims(ZK_5151)).encode())
    signing_input = f"{b64(json.dumps(header).encode())}.{payload}"
    mac = hmac.new(public_pem(gateway), signing_input.encode(), hashlib.sha256).digest()
    await assert_unauthenticated(gateway, f"{signing_input}.{b64(mac)}", "algorithm")


async def test_rs256_header_on_an_ec_key_is_refused(gateway: Gateway) -> None:
    kid, key = signing_key(gateway)
    # Honest ES256 signature, lying header: the key decides the algorithm, not the token.
    token = jwt.encode(claims(ZK_5151), key, algorithm="ES256",
                       headers={"kid": kid, "typ": "at+jwt"})
    _header, payload, signature = token.split(".")
    forged_header = b64(json.dumps({"alg": "RS256", "kid": kid, "typ": "at+jwt"}).encode())
    await assert_unauthenticated(gateway, f"{forged_header}.{payload}.{signature}")


async def test_unknown_kid_is_refused(gateway: Gateway) -> None:
    token = jwt.encode(claims(ZK_5151), new_ec_key(), algorithm="ES256",
                       headers={"kid": "unknown-key", "typ": "at+jwt"})
    await assert_unauthenticated(gateway, token, "signing key is unknown")


async def test_own_key_with_a_known_kid_is_refused(gateway: Gateway) -> None:
    kid, _key = signing_key(gateway)
    token = jwt.encode(claims(ZK_5151), new_ec_key(), algorithm="ES256",
                       headers={"kid": kid, "typ": "at+jwt"})
    await assert_unauthenticated(gateway, token, "signature is invalid")


async def test_kid_path_injection_is_just_an_unknown_kid(gateway: Gateway) -> None:
    auth = gateway.config.authserver
    assert auth is not None
    kid, _key = signing_key(gateway)
    evil = f"../../../../{auth.signing.keys_dir}/{kid}"
    token = jwt.encode(claims(ZK_5151), new_ec_key(), algorithm="ES256",
                       headers={"kid": evil, "typ": "at+jwt"})
    await assert_unauthenticated(gateway, token, "signing key is unknown")
    token = jwt.encode(claims(ZK_5151), new_ec_key(), algorithm="ES256",
                       headers={"kid": "/etc/passwd\x00", "typ": "at+jwt"})
    await assert_unauthenticated(gateway, token)


async def test_expired_token_is_refused(gateway: Gateway) -> None:
    now = int(time.time())
    payload = claims(ZK_5151, iat=now - 3600, nbf=now - 3600, exp=now - 120)
    await assert_unauthenticated(gateway, sign_with_gateway_key(gateway, payload), "expired")


async def test_expiry_within_the_leeway_is_accepted(gateway: Gateway) -> None:
    now = int(time.time())
    payload = claims(ZK_5151, iat=now - 600, nbf=now - 600, exp=now - 5)
    response = await gateway.post(ZK_5151, token=sign_with_gateway_key(gateway, payload))
    assert response.status == 200


async def test_not_yet_valid_token_is_refused(gateway: Gateway) -> None:
    now = int(time.time())
    payload = claims(ZK_5151, nbf=now + 600, iat=now, exp=now + 1200)
    await assert_unauthenticated(gateway, sign_with_gateway_key(gateway, payload), "not yet valid")


async def test_wrong_issuer_is_refused(gateway: Gateway) -> None:
    payload = claims(ZK_5151, iss="https://evil.example")
    await assert_unauthenticated(gateway, sign_with_gateway_key(gateway, payload), "issuer")


async def test_wrong_audience_is_refused(gateway: Gateway) -> None:
    token = gateway.token("ciz", ["organisaties/zorgkantoor/notificaties/notificatie:create"],
                          ZK_5152)
    await assert_unauthenticated(gateway, token, "audience")


async def test_cached_token_is_still_checked_for_audience_per_route(gateway: Gateway) -> None:
    token = gateway.token("ciz", ["organisaties/zorgkantoor/notificaties/notificatie:create"])
    assert (await gateway.post(ZK_5151, token=token)).status == 200
    response = await gateway.post(ZK_5152, token=token)
    assert response.status == 401
    assert len(gateway.upstream.received) == 1  # the request to the token's own route


async def test_audience_list_containing_the_route_is_accepted(gateway: Gateway) -> None:
    payload = claims(ZK_5151, aud=["https://other.example", "https://gateway.test" + ZK_5151])
    response = await gateway.post(ZK_5151, token=sign_with_gateway_key(gateway, payload))
    assert response.status == 200


async def test_missing_typ_is_refused(gateway: Gateway) -> None:
    token = sign_with_gateway_key(gateway, claims(ZK_5151), typ=None)
    await assert_unauthenticated(gateway, token, "at+jwt")


async def test_plain_jwt_route_accepts_a_token_without_typ(make_gateway: Any) -> None:
    gw = await make_gateway()
    plain = "/deelnemers/uzovi/5151/plain"
    routes = [route(plain, gw.upstream.url + "/graphql", "UZOVI", "5151", "zorgkantoor",
                    allow_plain_jwt=True)]
    gw = await make_gateway(routes=routes)
    token = sign_with_gateway_key(gw, claims(plain), typ="JWT")
    assert (await gw.post(plain, token=token)).status == 200


async def test_tampered_payload_is_refused(gateway: Gateway) -> None:
    token = gateway.token("zorgkantoor-5152",
                          ["organisaties/zorgkantoor/notificaties/notificatie:create"])
    header, payload, signature = token.split(".")
    data = json.loads(jwt.utils.base64url_decode(payload))
    data["uzovi"] = "5151"
    forged = f"{header}.{b64(json.dumps(data).encode())}.{signature}"
    await assert_unauthenticated(gateway, forged, "signature is invalid")


async def test_missing_required_claims_are_refused(gateway: Gateway) -> None:
    for claim in ("exp", "iat", "aud"):
        token = sign_with_gateway_key(gateway, claims(ZK_5151, **{claim: None}))
        await assert_unauthenticated(gateway, token, claim)


async def test_token_in_query_string_is_ignored(gateway: Gateway) -> None:
    token = gateway.token("ciz", ["organisaties/zorgkantoor/notificaties/notificatie:create"])
    response = await gateway.client.post(
        f"{ZK_5151}?access_token={token}", json=seed_notification()
    )
    assert response.status == 401
    assert gateway.upstream.received == []
