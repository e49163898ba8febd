"""A remote trusted issuer: keys from its JWKS URL, served by a small real JWKS server.

Unknown ``kid`` -> one refresh (rate-limited per issuer); a failing endpoint keeps the last
good key set; aggregated claims are believed only when their nested JWT verifies.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

import jwt
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from gateway.pep.setup import PEP
from tests.fixtures.gateway import ZK_5151, Gateway
from tests.tokens.forge import claims, new_ec_key, sign_with_gateway_key

IDP = "https://idp.example"


@dataclass
class JwksServer:
    """A real JWKS endpoint whose keys and health the test controls."""

    url: str = ""
    keys: dict[str, Any] = field(default_factory=dict)
    fetches: int = 0
    failing: bool = False

    def add(self, kid: str, key: Any, alg: str | None = None) -> None:
        algo = (
            jwt.algorithms.RSAAlgorithm
            if isinstance(key, rsa.RSAPrivateKey)
            else (jwt.algorithms.ECAlgorithm)
        )
        jwk = json.loads(algo.to_jwk(key.public_key()))
        jwk["kid"] = kid
        if alg:
            jwk["alg"] = alg
        self.keys[kid] = (key, jwk)

    def token(self, kid: str, payload: dict[str, Any], alg: str = "ES256") -> str:
        key, _jwk = self.keys[kid]
        return jwt.encode(payload, key, algorithm=alg, headers={"kid": kid, "typ": "at+jwt"})


@pytest.fixture
async def jwks() -> Any:
    server_state = JwksServer()

    async def serve(request: web.Request) -> web.Response:
        server_state.fetches += 1
        if server_state.failing:
            return web.Response(status=503, text="down")
        return web.json_response({"keys": [jwk for _key, jwk in server_state.keys.values()]})

    app = web.Application()
    app.router.add_get("/jwks.json", serve)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    server_state.url = str(server.make_url("/jwks.json"))
    yield server_state
    await server.close()


def remote_payload(**overrides: Any) -> dict[str, Any]:
    return claims(ZK_5151, iss=IDP, **overrides)


async def start(
    make_gateway: Any, jwks: JwksServer, refresh: float = 60.0, period: float = 300.0
) -> Gateway:
    tokens = {
        "trusted_issuers": [
            {"builtin": True},
            {
                "issuer": IDP,
                "jwks_url": jwks.url,
                "jwks_min_refresh_seconds": refresh,
                "jwks_refresh_seconds": period,
            },
        ],
        "leeway": 30,
    }
    gateway: Gateway = await make_gateway(tokens=tokens)
    return gateway


async def test_token_of_a_remote_issuer_is_verified_with_its_jwks(
    make_gateway: Any, jwks: JwksServer
) -> None:
    jwks.add("k1", new_ec_key())
    gateway = await start(make_gateway, jwks)
    response = await gateway.post(ZK_5151, token=jwks.token("k1", remote_payload()))
    assert response.status == 200
    assert jwks.fetches == 1


async def test_rsa_key_without_alg_verifies_ps256_and_rs256(
    make_gateway: Any, jwks: JwksServer
) -> None:
    jwks.add("rsa", rsa.generate_private_key(public_exponent=65537, key_size=2048))
    gateway = await start(make_gateway, jwks)
    for alg in ("RS256", "PS256"):
        token = jwks.token("rsa", remote_payload(jti=alg), alg=alg)
        assert (await gateway.post(ZK_5151, token=token)).status == 200


async def test_key_with_declared_alg_refuses_another_algorithm(
    make_gateway: Any, jwks: JwksServer
) -> None:
    jwks.add("rsa", rsa.generate_private_key(public_exponent=65537, key_size=2048), alg="RS256")
    gateway = await start(make_gateway, jwks)
    response = await gateway.post(ZK_5151, token=jwks.token("rsa", remote_payload(), alg="PS256"))
    assert response.status == 401
    assert gateway.upstream.received == []


async def test_unknown_kid_triggers_a_refresh_that_finds_a_rotated_key(
    make_gateway: Any, jwks: JwksServer
) -> None:
    jwks.add("k1", new_ec_key())
    gateway = await start(make_gateway, jwks)
    jwks.add("k2", new_ec_key())
    response = await gateway.post(ZK_5151, token=jwks.token("k2", remote_payload()))
    assert response.status == 200
    assert jwks.fetches == 2
    assert (IDP, "ok") in gateway.observer.jwks


async def test_refresh_on_unknown_kid_is_rate_limited(make_gateway: Any, jwks: JwksServer) -> None:
    jwks.add("k1", new_ec_key())
    gateway = await start(make_gateway, jwks, refresh=60.0)
    stranger = new_ec_key()
    for index in range(5):
        token = jwt.encode(
            remote_payload(jti=str(index)),
            stranger,
            algorithm="ES256",
            headers={"kid": f"random-{index}", "typ": "at+jwt"},
        )
        assert (await gateway.post(ZK_5151, token=token)).status == 401
    # Startup fetch + one refresh; the other unknown kids waited for the interval.
    assert jwks.fetches == 2
    assert (IDP, "rate_limited") in gateway.observer.jwks
    causes = gateway.observer.jwks_causes
    assert any(c and c.startswith("unknown kid, last fetch under") for c in causes)
    assert gateway.upstream.received == []


async def test_last_good_key_set_is_kept_when_the_endpoint_fails(
    make_gateway: Any, jwks: JwksServer
) -> None:
    jwks.add("k1", new_ec_key())
    gateway = await start(make_gateway, jwks, refresh=0.0)
    jwks.failing = True
    unknown = jwt.encode(
        remote_payload(), new_ec_key(), algorithm="ES256", headers={"kid": "k9", "typ": "at+jwt"}
    )
    assert (await gateway.post(ZK_5151, token=unknown)).status == 401
    assert gateway.upstream.received == []
    assert jwks.fetches == 2
    assert (IDP, "error") in gateway.observer.jwks
    assert "JWKS endpoint answered 503" in gateway.observer.jwks_causes
    response = await gateway.post(ZK_5151, token=jwks.token("k1", remote_payload()))
    assert response.status == 200


async def test_remote_key_cannot_sign_for_the_builtin_issuer(
    make_gateway: Any, jwks: JwksServer
) -> None:
    jwks.add("k1", new_ec_key())
    gateway = await start(make_gateway, jwks)
    token = jwks.token("k1", claims(ZK_5151))  # iss = the gateway itself
    assert (await gateway.post(ZK_5151, token=token)).status == 401
    assert gateway.upstream.received == []


def aggregated(nested: str) -> dict[str, Any]:
    """CIZ claims whose KVK number only arrives as an OpenID aggregated claim."""
    return claims(
        ZK_5151,
        kvk=None,
        _claim_names={"kvk": "src1"},
        _claim_sources={"src1": {"jwt": nested}},
    )


async def test_aggregated_claim_from_a_trusted_issuer_is_believed(
    make_gateway: Any, jwks: JwksServer
) -> None:
    jwks.add("k1", new_ec_key())
    gateway = await start(make_gateway, jwks)
    nested = jwks.token("k1", {"iss": IDP, "kvk": "62253778"})
    token = sign_with_gateway_key(gateway.config, aggregated(nested))
    response = await gateway.post(ZK_5151, token=token)
    assert response.status == 200
    event = gateway.observer.decisions[-1]
    assert (event.identifier_type, event.identifier) == ("KVK", "62253778")


async def test_aggregated_claim_with_a_forged_nested_jwt_is_refused(
    make_gateway: Any, jwks: JwksServer
) -> None:
    jwks.add("k1", new_ec_key())
    gateway = await start(make_gateway, jwks)
    forged = jwt.encode(
        {"iss": IDP, "kvk": "62253778"},
        ec.generate_private_key(ec.SECP256R1()),
        algorithm="ES256",
        headers={"kid": "k1"},
    )
    token = sign_with_gateway_key(gateway.config, aggregated(forged))
    response = await gateway.post(ZK_5151, token=token)
    assert response.status == 401
    body = json.loads(await response.read())
    assert "Aggregated claim rejected" in body["errors"][0]["message"]
    assert gateway.upstream.received == []


async def test_aggregated_claim_from_an_untrusted_issuer_is_refused(
    make_gateway: Any, jwks: JwksServer
) -> None:
    jwks.add("k1", new_ec_key())
    gateway = await start(make_gateway, jwks)
    nested = jwks.token("k1", {"iss": "https://elsewhere.example", "kvk": "62253778"})
    token = sign_with_gateway_key(gateway.config, aggregated(nested))
    response = await gateway.post(ZK_5151, token=token)
    assert response.status == 401
    assert gateway.upstream.received == []


async def test_aggregated_claim_with_a_key_rotated_in_later_is_fetched(
    make_gateway: Any, jwks: JwksServer
) -> None:
    jwks.add("k1", new_ec_key())
    gateway = await start(make_gateway, jwks)
    jwks.add("k2", new_ec_key())
    nested = jwks.token("k2", {"iss": IDP, "kvk": "62253778"})
    token = sign_with_gateway_key(gateway.config, aggregated(nested))
    response = await gateway.post(ZK_5151, token=token)
    assert response.status == 200


async def wait_for_fetches(jwks: JwksServer, count: int, timeout: float = 5.0) -> None:
    """Until the JWKS endpoint has been asked *count* times (the periodic refresh ran)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while jwks.fetches < count:
        assert asyncio.get_running_loop().time() < deadline, "no periodic JWKS refresh"
        await asyncio.sleep(0.02)
    await asyncio.sleep(0.05)  # let the refresh that was answered finish


@pytest.mark.parametrize("change", ["withdrawn", "replaced"])
async def test_periodic_refresh_stops_a_withdrawn_key_and_its_cached_tokens(
    make_gateway: Any, jwks: JwksServer, change: str
) -> None:
    jwks.add("k1", new_ec_key())
    gateway = await start(make_gateway, jwks, period=0.2)
    old = jwks.token("k1", remote_payload())
    assert (await gateway.post(ZK_5151, token=old)).status == 200  # verified and cached
    if change == "withdrawn":  # the issuer drops k1 (a compromise) and publishes k2
        del jwks.keys["k1"]
        new_kid = "k2"
    else:  # the same kid, other key material
        new_kid = "k1"
    jwks.add(new_kid, new_ec_key())
    await wait_for_refresh_after_change(jwks)
    refused = await gateway.post(ZK_5151, token=old)
    assert refused.status == 401
    reason = (await refused.json())["errors"][0]["extensions"]["reason"]
    assert reason == ("unknown_kid" if change == "withdrawn" else "bad_signature")
    assert len(gateway.upstream.received) == 1  # the request before the refresh only
    fresh = jwks.token(new_kid, remote_payload(jti="new"))
    assert (await gateway.post(ZK_5151, token=fresh)).status == 200


async def wait_for_refresh_after_change(jwks: JwksServer) -> None:
    """Until a periodic refresh served after the key change has installed its set. The
    refreshes run one after another, so once a second fetch after the change is served, the
    first one (which carried the new set) has been installed; a refresh in flight at the
    change may still carry the old set, so counting one fetch is not enough."""
    await wait_for_fetches(jwks, jwks.fetches + 2, timeout=10.0)


async def test_periodic_refresh_failure_keeps_the_last_good_set(
    make_gateway: Any, jwks: JwksServer
) -> None:
    jwks.add("k1", new_ec_key())
    gateway = await start(make_gateway, jwks, period=0.2)
    jwks.failing = True
    await wait_for_fetches(jwks, 3)  # two failed periodic refreshes
    assert (IDP, "error") in gateway.observer.jwks
    fresh = jwks.token("k1", remote_payload(jti="after-outage"))
    assert (await gateway.post(ZK_5151, token=fresh)).status == 200


async def test_a_token_verified_while_a_key_is_withdrawn_is_not_cached(
    make_gateway: Any, jwks: JwksServer
) -> None:
    jwks.add("k1", new_ec_key())
    gateway = await start(make_gateway, jwks)
    verifier = gateway.client.app[PEP].verifier
    assert (await gateway.post(ZK_5151, token=jwks.token("k1", remote_payload()))).status == 200
    assert len(verifier.cache) == 1
    del jwks.keys["k1"]
    jwks.add("k2", new_ec_key())
    # k2 is unknown: verifying this token fetches the set, which withdraws k1 meanwhile. The
    # request is answered, but what was verified across a withdrawal is not remembered.
    new = jwks.token("k2", remote_payload(jti="k2"))
    assert (await gateway.post(ZK_5151, token=new)).status == 200
    assert len(verifier.cache) == 0
    assert (await gateway.post(ZK_5151, token=new)).status == 200  # verified again, cached now
    assert len(verifier.cache) == 1
