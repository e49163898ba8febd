"""``TokenVerifier`` on its own: real keys from the test deployment's real ``gateway.yaml``,
real signed JWTs, no app and no HTTP. What a refusal becomes on the wire (401, the
``WWW-Authenticate`` challenge, nothing forwarded) is tested end to end in
``test_jwt_attacks.py``."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import jwt
import pytest

from gateway.authserver.signing_keys import KeyStore
from gateway.config.model import GatewayConfig
from gateway.facts import TokenFacts
from gateway.observability.events import NullObserver
from gateway.refusals import Unauthenticated
from gateway.tokens.verifier import TokenCache, TokenVerifier, VerifiedToken
from tests.fixtures.gateway import PUBLIC_URL, ZK_5151, ZK_5152, gateway_yaml, write_config
from tests.tokens.forge import (
    b64,
    claims,
    new_ec_key,
    public_pem,
    sign_with_gateway_key,
    signing_key,
    unsigned,
)

AUDIENCE = PUBLIC_URL + ZK_5151


class Clock:
    """A clock the test moves by hand (the verifier's cache reads it)."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def config(tmp_path: Path) -> GatewayConfig:
    """The test deployment's configuration, with a signing key generated for the test."""
    return write_config(tmp_path, gateway_yaml("http://127.0.0.1:9", "http://127.0.0.1:9/graphql"))


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def verifier(config: GatewayConfig, clock: Clock) -> AsyncIterator[TokenVerifier]:
    """The verifier as the PEP builds it: the built-in issuer's key store, the YAML's leeway."""
    verifier = TokenVerifier(config.tokens, KeyStore.load(config), NullObserver(), clock=clock)
    yield verifier
    await verifier.close()


async def refused(verifier: TokenVerifier, token: str, reason: str) -> str:
    """The message of the refusal of *token*, which must carry *reason*."""
    with pytest.raises(Unauthenticated) as caught:
        await verifier.verify(token, audience=AUDIENCE)
    assert caught.value.reason == reason, caught.value.message
    assert caught.value.token_sent
    return caught.value.message


async def test_genuine_token_is_verified_into_facts(
    verifier: TokenVerifier, config: GatewayConfig
) -> None:
    verified = await verifier.verify(
        sign_with_gateway_key(config, claims(ZK_5151)), audience=AUDIENCE
    )
    assert verified.facts.client_id == "ciz"
    assert verified.facts.instantie_type == "Onderneming"
    assert verified.facts.identifier == "62253778"
    assert verified.audiences == frozenset({AUDIENCE})
    assert json.loads(verified.claims_header)["jti"] == "test-jti"


async def test_alg_none_is_refused(verifier: TokenVerifier, config: GatewayConfig) -> None:
    kid, _key = signing_key(config)
    token = unsigned({"alg": "none", "typ": "at+jwt", "kid": kid}, claims(ZK_5151))
    assert "algorithm" in await refused(verifier, token, "alg_not_allowed")


async def test_hs256_signed_with_the_public_key_is_refused(
    verifier: TokenVerifier, config: GatewayConfig
) -> None:
    kid, _key = signing_key(config)
    header = {"alg": "HS256", "typ": "at+jwt", "kid": kid}
    payload = b64(json.dumps(claims(ZK_5151)).encode())
    signing_input = f"{b64(json.dumps(header).encode())}.{payload}"
    mac = hmac.new(public_pem(config), signing_input.encode(), hashlib.sha256).digest()
    await refused(verifier, f"{signing_input}.{b64(mac)}", "alg_not_allowed")


async def test_rs256_header_on_an_ec_key_is_refused(
    verifier: TokenVerifier, config: GatewayConfig
) -> None:
    # Honest ES256 signature, lying header: the key decides the algorithm, not the token.
    _header, payload, signature = sign_with_gateway_key(config, claims(ZK_5151)).split(".")
    kid, _key = signing_key(config)
    forged_header = b64(json.dumps({"alg": "RS256", "kid": kid, "typ": "at+jwt"}).encode())
    await refused(verifier, f"{forged_header}.{payload}.{signature}", "alg_not_allowed")


async def test_unknown_kid_is_refused(verifier: TokenVerifier) -> None:
    token = jwt.encode(
        claims(ZK_5151),
        new_ec_key(),
        algorithm="ES256",
        headers={"kid": "unknown-key", "typ": "at+jwt"},
    )
    assert "signing key is unknown" in await refused(verifier, token, "unknown_kid")


async def test_own_kid_on_another_key_is_refused(
    verifier: TokenVerifier, config: GatewayConfig
) -> None:
    kid, _key = signing_key(config)
    token = jwt.encode(
        claims(ZK_5151), new_ec_key(), algorithm="ES256", headers={"kid": kid, "typ": "at+jwt"}
    )
    assert "signature is invalid" in await refused(verifier, token, "bad_signature")


@pytest.mark.parametrize("kid", ["../../../../{keys_dir}/{kid}", "/etc/passwd\x00"])
async def test_kid_path_injection_is_just_an_unknown_kid(
    verifier: TokenVerifier, config: GatewayConfig, kid: str
) -> None:
    assert config.authserver is not None
    real_kid, _key = signing_key(config)
    evil = kid.format(keys_dir=config.authserver.signing.keys_dir, kid=real_kid)
    token = jwt.encode(
        claims(ZK_5151), new_ec_key(), algorithm="ES256", headers={"kid": evil, "typ": "at+jwt"}
    )
    await refused(verifier, token, "unknown_kid")


async def test_expired_token_is_refused(verifier: TokenVerifier, config: GatewayConfig) -> None:
    now = int(time.time())
    payload = claims(ZK_5151, iat=now - 3600, nbf=now - 3600, exp=now - 120)
    assert "expired" in await refused(verifier, sign_with_gateway_key(config, payload), "expired")


async def test_expiry_within_the_leeway_is_accepted(
    verifier: TokenVerifier, config: GatewayConfig
) -> None:
    assert config.tokens.leeway == 30
    now = int(time.time())
    payload = claims(ZK_5151, iat=now - 600, nbf=now - 600, exp=now - 5)
    await verifier.verify(sign_with_gateway_key(config, payload), audience=AUDIENCE)


async def test_not_yet_valid_token_is_refused(
    verifier: TokenVerifier, config: GatewayConfig
) -> None:
    now = int(time.time())
    token = sign_with_gateway_key(config, claims(ZK_5151, nbf=now + 600, iat=now, exp=now + 1200))
    assert "not yet valid" in await refused(verifier, token, "not_yet_valid")


async def test_wrong_issuer_is_refused(verifier: TokenVerifier, config: GatewayConfig) -> None:
    token = sign_with_gateway_key(config, claims(ZK_5151, iss="https://evil.example"))
    assert "issuer" in await refused(verifier, token, "untrusted_issuer")


async def test_wrong_audience_is_refused(verifier: TokenVerifier, config: GatewayConfig) -> None:
    token = sign_with_gateway_key(config, claims(ZK_5152))
    assert "audience" in await refused(verifier, token, "wrong_audience")


async def test_audience_list_containing_the_route_is_accepted(
    verifier: TokenVerifier, config: GatewayConfig
) -> None:
    token = sign_with_gateway_key(config, claims(ZK_5151, aud=["https://other.example", AUDIENCE]))
    verified = await verifier.verify(token, audience=AUDIENCE)
    assert verified.audiences == frozenset({"https://other.example", AUDIENCE})


async def test_missing_typ_is_refused_unless_the_route_allows_plain_jwts(
    verifier: TokenVerifier, config: GatewayConfig
) -> None:
    token = sign_with_gateway_key(config, claims(ZK_5151), typ=None)
    assert "at+jwt" in await refused(verifier, token, "wrong_typ")
    await verifier.verify(token, audience=AUDIENCE, allow_plain_jwt=True)


async def test_tampered_payload_is_refused(verifier: TokenVerifier, config: GatewayConfig) -> None:
    header, payload, signature = sign_with_gateway_key(config, claims(ZK_5151)).split(".")
    data = json.loads(jwt.utils.base64url_decode(payload))
    data["kvk"] = "99999999"
    forged = f"{header}.{b64(json.dumps(data).encode())}.{signature}"
    assert "signature is invalid" in await refused(verifier, forged, "bad_signature")


@pytest.mark.parametrize("claim", ["exp", "iat", "aud"])
async def test_missing_required_claim_is_refused(
    verifier: TokenVerifier, config: GatewayConfig, claim: str
) -> None:
    token = sign_with_gateway_key(config, claims(ZK_5151, **{claim: None}))
    assert claim in await refused(verifier, token, f"missing_{claim}")


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
    verifier: TokenVerifier, config: GatewayConfig, overrides: dict[str, Any]
) -> None:
    [claim] = overrides
    token = sign_with_gateway_key(config, claims(ZK_5151, **overrides))
    message = await refused(verifier, token, f"malformed_{claim}")
    assert message == f"Token claim {claim} must be a number"


async def test_time_claims_as_floats_are_accepted(
    verifier: TokenVerifier, config: GatewayConfig
) -> None:
    # The time now, not at import: a long suite would otherwise outlive the token.
    now = int(time.time())
    payload = claims(ZK_5151, iat=now + 0.5, nbf=now - 0.25, exp=now + 600.75)
    verified = await verifier.verify(sign_with_gateway_key(config, payload), audience=AUDIENCE)
    assert verified.expires == now + 600.75


@pytest.mark.parametrize(
    "token", ["not-a-jwt", "a.b.c", "eyJhbGciOiJFUzI1NiJ9.é.c2ln", "x" * (16 * 1024 + 1)]
)
async def test_malformed_token_is_refused(verifier: TokenVerifier, token: str) -> None:
    assert await refused(verifier, token, "malformed") == "Malformed token"


async def test_a_cached_token_is_still_checked_for_audience(
    verifier: TokenVerifier, config: GatewayConfig
) -> None:
    token = sign_with_gateway_key(config, claims(ZK_5151))
    await verifier.verify(token, audience=AUDIENCE)
    assert token in verifier.cache
    with pytest.raises(Unauthenticated) as caught:
        await verifier.verify(token, audience=PUBLIC_URL + ZK_5152)
    assert caught.value.reason == "wrong_audience"


async def test_the_cache_forgets_a_token_at_its_exp(
    verifier: TokenVerifier, config: GatewayConfig, clock: Clock
) -> None:
    exp = int(clock.now) + 600
    token = sign_with_gateway_key(config, claims(ZK_5151, exp=exp))
    first: VerifiedToken = await verifier.verify(token, audience=AUDIENCE)
    clock.now = exp - 1
    assert verifier.cache.get(token) is first
    clock.now = exp
    assert verifier.cache.get(token) is None


async def test_a_cache_hit_keeps_the_token_least_recently_dropped(
    config: GatewayConfig, clock: Clock
) -> None:
    """The cache's own ``get`` (no frozen timer, one lookup) still updates the LRU order:
    with room for two, the token just read survives a third one, the other goes."""
    tokens = config.tokens.model_copy(update={"cache_size": 2})
    verifier = TokenVerifier(tokens, KeyStore.load(config), NullObserver(), clock=clock)
    first, second, third = (
        sign_with_gateway_key(config, claims(ZK_5151, jti=name)) for name in ("one", "two", "three")
    )
    entry = await verifier.verify(first, audience=AUDIENCE)
    await verifier.verify(second, audience=AUDIENCE)
    assert verifier.cache.get(first) is entry
    await verifier.verify(third, audience=AUDIENCE)
    assert verifier.cache.get(first) is entry
    assert verifier.cache.get(second) is None
    await verifier.close()


def _entry(expires: float) -> VerifiedToken:
    facts = TokenFacts({}, "c", "s", None, None, None)
    return VerifiedToken(facts, frozenset({"a"}), True, True, expires, "{}")


def test_the_cache_answers_a_live_entry_only_and_drops_the_least_recently_used(
    clock: Clock,
) -> None:
    """Bounded to its size, least recently used dropped first; an entry is answered only
    before its ``exp`` (read at ``exp``: gone, not kept), an entry already past it is never
    stored, and a size of 0 stores nothing."""
    cache = TokenCache(2, clock)
    now = clock.now
    one, two, three = _entry(now + 10), _entry(now + 20), _entry(now + 30)
    cache.put("one", one)
    cache.put("two", two)
    assert cache.get("one") is one  # now the most recently used
    cache.put("three", three)
    assert ("one" in cache, "two" in cache, "three" in cache) == (True, False, True)
    assert len(cache) == 2
    clock.now = now + 10
    assert "one" not in cache
    assert cache.get("one") is None
    assert len(cache) == 1  # dropped when read at its exp
    cache.put("late", _entry(now + 10))
    assert len(cache) == 1 and cache.get("late") is None
    cache.clear()
    assert len(cache) == 0
    off = TokenCache(0, clock)
    off.put("one", _entry(now + 100))
    assert len(off) == 0 and off.get("one") is None
