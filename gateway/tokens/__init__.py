"""Access-token validation for the PEP: verification, trusted issuers, claim mapping."""

from gateway.tokens.claims import NestedVerifier, map_claims
from gateway.tokens.jwks import RemoteJwks
from gateway.tokens.verification_keys import VerificationKey, key_from_jwk
from gateway.tokens.verifier import (
    BuiltinKeys,
    NestedTokenError,
    TokenCache,
    TokenVerifier,
    VerifiedToken,
)

__all__ = [
    "BuiltinKeys",
    "NestedTokenError",
    "NestedVerifier",
    "RemoteJwks",
    "TokenCache",
    "TokenVerifier",
    "VerificationKey",
    "VerifiedToken",
    "key_from_jwk",
    "map_claims",
]
