"""Helpers to forge and sign tokens for the token tests."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from gateway.config.model import GatewayConfig
from tests.fixtures.gateway import PUBLIC_URL


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def claims(path: str, **overrides: Any) -> dict[str, Any]:
    """A valid payload of the CIZ for *path* (overridable; ``None`` removes a claim)."""
    now = int(time.time())
    payload: dict[str, Any] = {
        "iss": PUBLIC_URL,
        "sub": "ciz",
        "client_id": "ciz",
        "aud": PUBLIC_URL + path,
        "iat": now,
        "nbf": now,
        "exp": now + 600,
        "jti": "test-jti",
        "scope": "organisaties/zorgkantoor/notificaties/notificatie:create",
        "instantie_type": "Onderneming",
        "kvk": "62253778",
    }
    payload.update(overrides)
    return {k: v for k, v in payload.items() if v is not None}


def signing_key(config: GatewayConfig) -> tuple[str, Any]:
    """The gateway's own signing key (kid, private key) from its keys directory."""
    auth = config.authserver
    assert auth is not None
    [pem] = sorted(Path(auth.signing.keys_dir).glob("*.pem"))
    key = serialization.load_pem_private_key(pem.read_bytes(), password=None)
    return pem.stem, key


def sign_with_gateway_key(config: GatewayConfig, payload: dict[str, Any], **headers: Any) -> str:
    """Sign *payload* with the gateway's real key and chosen header fields."""
    kid, key = signing_key(config)
    header = {"kid": kid, "typ": "at+jwt", **headers}
    header = {k: v for k, v in header.items() if v is not None}
    return jwt.encode(payload, key, algorithm="ES256", headers=header)


def public_pem(config: GatewayConfig) -> bytes:
    _kid, key = signing_key(config)
    pem: bytes = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return pem


def unsigned(header: dict[str, Any], payload: dict[str, Any], signature: bytes = b"") -> str:
    """A compact JWS with an arbitrary header and signature (for forged tokens)."""
    return ".".join(
        (b64(json.dumps(header).encode()), b64(json.dumps(payload).encode()), b64(signature))
    )


def new_ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())
