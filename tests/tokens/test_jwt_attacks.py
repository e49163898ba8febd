"""Forged and invalid tokens are refused with 401 before anything reaches the upstream.

Why each token is refused is tested on ``TokenVerifier`` alone (``test_verifier.py``); here
the whole gateway shows what a refusal becomes over HTTP."""

from __future__ import annotations

import json
import time
from typing import Any

import jwt
import pytest

from gateway.config.model import GatewayConfig
from tests.fixtures.gateway import ZK_5151, ZK_5152, Gateway, route, seed_notification
from tests.tokens.forge import claims, new_ec_key, sign_with_gateway_key, signing_key, unsigned


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
    token = sign_with_gateway_key(gateway.config, claims(ZK_5151))
    response = await gateway.post(ZK_5151, token=token)
    assert response.status == 200
    assert len(gateway.upstream.received) == 1


def forged_tokens(config: GatewayConfig) -> dict[str, str]:
    """One token for each kind of refusal; every reason is tested on the verifier itself
    (``test_verifier.py``), these check that each becomes the same 401 on the wire."""
    kid, _key = signing_key(config)
    now = int(time.time())
    return {
        "alg none": unsigned({"alg": "none", "typ": "at+jwt", "kid": kid}, claims(ZK_5151)),
        "unknown kid": jwt.encode(
            claims(ZK_5151),
            new_ec_key(),
            algorithm="ES256",
            headers={"kid": "unknown-key", "typ": "at+jwt"},
        ),
        "own kid, other key": jwt.encode(
            claims(ZK_5151), new_ec_key(), algorithm="ES256", headers={"kid": kid, "typ": "at+jwt"}
        ),
        "expired": sign_with_gateway_key(
            config, claims(ZK_5151, iat=now - 3600, nbf=now - 3600, exp=now - 120)
        ),
        "wrong audience": sign_with_gateway_key(config, claims(ZK_5152)),
        "no typ": sign_with_gateway_key(config, claims(ZK_5151), typ=None),
        "exp as a string": sign_with_gateway_key(config, claims(ZK_5151, exp=str(now + 600))),
    }


REASONS = {
    "alg none": "alg_not_allowed",
    "unknown kid": "unknown_kid",
    "own kid, other key": "bad_signature",
    "expired": "expired",
    "wrong audience": "wrong_audience",
    "no typ": "wrong_typ",
    "exp as a string": "malformed_exp",
}


@pytest.mark.parametrize("kind", REASONS)
async def test_a_refused_token_is_a_401_challenge_and_nothing_is_forwarded(
    gateway: Gateway, kind: str
) -> None:
    await assert_unauthenticated(gateway, forged_tokens(gateway.config)[kind])
    [event] = gateway.observer.decisions
    assert (event.outcome, event.status, event.reason) == ("deny", 401, REASONS[kind])


async def test_cached_token_is_still_checked_for_audience_per_route(gateway: Gateway) -> None:
    token = gateway.token("ciz", ["organisaties/zorgkantoor/notificaties/notificatie:create"])
    assert (await gateway.post(ZK_5151, token=token)).status == 200
    response = await gateway.post(ZK_5152, token=token)
    assert response.status == 401
    assert len(gateway.upstream.received) == 1  # the request to the token's own route


async def test_plain_jwt_route_accepts_a_token_without_typ(make_gateway: Any) -> None:
    gw = await make_gateway()
    plain = "/deelnemers/uzovi/5151/plain"
    routes = [
        route(
            plain,
            gw.upstream.url + "/graphql",
            "UZOVI",
            "5151",
            "zorgkantoor",
            allow_plain_jwt=True,
        )
    ]
    gw = await make_gateway(routes=routes)
    token = sign_with_gateway_key(gw.config, claims(plain), typ="JWT")
    assert (await gw.post(plain, token=token)).status == 200


async def test_token_in_query_string_is_ignored(gateway: Gateway) -> None:
    token = gateway.token("ciz", ["organisaties/zorgkantoor/notificaties/notificatie:create"])
    response = await gateway.client.post(
        f"{ZK_5151}?access_token={token}", json=seed_notification()
    )
    assert response.status == 401
    assert gateway.upstream.received == []
