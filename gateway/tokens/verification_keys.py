"""Verification keys with the algorithms each may verify.

A JWK without ``alg`` says only its key type; an RSA key may then verify RS256 and PS256.
A JWK with ``alg`` verifies that algorithm only. The issuer's allow-list narrows both, so a
token's header can never pick an algorithm the key or the issuer does not allow (no
``none``, no HMAC with a public key as secret).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

# Signature algorithms the PEP can ever accept; `none` and HMAC are absent on purpose.
ASYMMETRIC_ALGORITHMS = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)
_RSA_ALGORITHMS = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"})
_EC_BY_CURVE = {"secp256r1": "ES256", "secp384r1": "ES384", "secp521r1": "ES512"}


@dataclass(frozen=True, slots=True)
class VerificationKey:
    """A public key and the algorithms it may verify."""

    key: Any
    """A ``cryptography`` public key object."""
    algorithms: frozenset[str]
    kid: str | None = None


def _algorithms_for(public_key: Any, declared: str | None) -> frozenset[str]:
    if isinstance(public_key, rsa.RSAPublicKey):
        possible = _RSA_ALGORITHMS
    elif isinstance(public_key, ec.EllipticCurvePublicKey):
        alg = _EC_BY_CURVE.get(public_key.curve.name)
        possible = frozenset({alg}) if alg else frozenset()
    elif isinstance(public_key, ed25519.Ed25519PublicKey):
        possible = frozenset({"EdDSA"})
    else:
        possible = frozenset()
    if declared is not None:
        return possible & {declared}
    return possible


def key_from_jwk(jwk: Mapping[str, Any]) -> VerificationKey | None:
    """Build a verification key from one JWK dict; None for keys we never verify with
    (symmetric, encryption-only, private, unsupported or malformed)."""
    if jwk.get("use") not in (None, "sig") or "d" in jwk or jwk.get("kty") == "oct":
        return None
    declared = jwk.get("alg")
    if declared is not None and (
        not isinstance(declared, str) or declared not in ASYMMETRIC_ALGORITHMS
    ):
        return None
    try:
        parsed = jwt.PyJWK(dict(jwk))
    except (jwt.PyJWTError, ValueError, TypeError, KeyError):
        return None
    algorithms = _algorithms_for(parsed.key, declared)
    if not algorithms:
        return None
    kid = jwk.get("kid")
    return VerificationKey(parsed.key, algorithms, kid if isinstance(kid, str) else None)


def key_from_pyjwk(pyjwk: jwt.PyJWK, kid: str | None) -> VerificationKey | None:
    """Wrap a key handed out by the built-in key store (its algorithm is bound)."""
    algorithms = _algorithms_for(pyjwk.key, pyjwk.algorithm_name)
    if not algorithms:
        return None
    return VerificationKey(pyjwk.key, algorithms, kid)
