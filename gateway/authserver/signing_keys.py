"""Signing keys of the built-in authorization server, and their rotation.

Layout of ``signing.keys_dir`` (what ``nid-gateway keys generate`` writes):

* ``<kid>.pem``: one private key (PKCS#8, mode 0600) per key; the kid starts with the
  key's creation time, ``20261123T101500Z-1a2b3c4d``, so the directory itself records
  the rotation history;
* ``jwks.json``: the public keys (for publishing elsewhere; the gateway serves its own).

Rotation: the newest key signs. A key stops signing when a newer key is created (its
*retired* time) and stays published until every token it signed can have expired:
``retired + token_lifetime + leeway``. After that it is no longer served in the JWKS and no
longer accepted by the PEP; its file may then be deleted.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, cast

import jwt
import orjson
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from gateway.config.model import GatewayConfig

Algorithm = Literal["RS256", "ES256"]
PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey

_KID = re.compile(r"^(\d{8}T\d{6}Z)-[0-9a-f]{8}$")
JWKS_FILE = "jwks.json"


class KeyStoreError(Exception):
    """The signing keys cannot be loaded or used."""


def _b64(data: bytes) -> bytes:
    import base64

    return base64.urlsafe_b64encode(data).rstrip(b"=")


def _algorithm_of(key: PrivateKey, path: Path) -> Algorithm:
    if isinstance(key, ec.EllipticCurvePrivateKey):
        if not isinstance(key.curve, ec.SECP256R1):
            raise KeyStoreError(f"{path}: EC key must be on P-256 for ES256")
        return "ES256"
    if isinstance(key, rsa.RSAPrivateKey):
        if key.key_size < 2048:
            raise KeyStoreError(f"{path}: RSA key must be at least 2048 bits")
        return "RS256"
    raise KeyStoreError(f"{path}: unsupported key type (expected RSA or EC P-256)")


def _public_jwk(key: PrivateKey, kid: str, alg: Algorithm) -> dict[str, Any]:
    if isinstance(key, ec.EllipticCurvePrivateKey):
        text = ECAlgorithm.to_jwk(key.public_key())
    else:
        text = RSAAlgorithm.to_jwk(key.public_key())
    data: dict[str, Any] = json.loads(text)
    data.update({"kid": kid, "alg": alg, "use": "sig"})
    return data


@dataclass(frozen=True, slots=True)
class SigningKey:
    """One key pair of the store."""

    kid: str
    algorithm: Algorithm
    private_key: PrivateKey
    created: float
    published_until: float | None
    """None for the signing key (published for as long as it signs)."""
    public_jwk: dict[str, Any]
    verifier: jwt.PyJWK


def created_from_kid(kid: str) -> float:
    """The creation time encoded in a kid (``YYYYmmddTHHMMSSZ-xxxxxxxx``)."""
    match = _KID.match(kid)
    if not match:
        raise KeyStoreError(f"key id {kid!r} is not <YYYYmmddTHHMMSSZ>-<8 hex>")
    return datetime.strptime(match.group(1), "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC).timestamp()


def generate_key(
    keys_dir: Path, algorithm: Algorithm = "ES256", *, now: float | None = None
) -> str:
    """Create a new key pair in *keys_dir* (the new signing key) and rewrite ``jwks.json``.

    Returns the new key's kid.
    """
    keys_dir.mkdir(parents=True, exist_ok=True)
    created = datetime.fromtimestamp(now if now is not None else time.time(), tz=UTC)
    kid = f"{created:%Y%m%dT%H%M%SZ}-{secrets.token_hex(4)}"
    key: PrivateKey = (
        ec.generate_private_key(ec.SECP256R1())
        if algorithm == "ES256"
        else rsa.generate_private_key(public_exponent=65537, key_size=2048)
    )
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    path = keys_dir / f"{kid}.pem"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)
    write_jwks(keys_dir)
    return kid


def _read_keys(keys_dir: Path) -> list[tuple[str, PrivateKey, Algorithm, float]]:
    found = []
    for path in sorted(keys_dir.glob("*.pem")):
        kid = path.stem
        created = created_from_kid(kid)
        try:
            key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        except (ValueError, TypeError, OSError) as exc:
            raise KeyStoreError(f"{path}: cannot read private key: {exc}") from None
        if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
            raise KeyStoreError(f"{path}: unsupported key type (expected RSA or EC P-256)")
        found.append((kid, key, _algorithm_of(key, path), created))
    found.sort(key=lambda item: (item[3], item[0]))
    return found


def write_jwks(keys_dir: Path, *, lifetime: float | None = None, now: float | None = None) -> Path:
    """Write ``jwks.json`` with the public keys in *keys_dir* (atomically).

    With *lifetime*, keys whose publication ended (``retired + lifetime``) are left out.
    """
    keys = _read_keys(keys_dir)
    moment = now if now is not None else time.time()
    published = []
    for index, (kid, key, alg, _created) in enumerate(keys):
        if (
            lifetime is not None
            and index + 1 < len(keys)
            and keys[index + 1][3] + lifetime <= moment
        ):
            continue
        published.append(_public_jwk(key, kid, alg))
    target = keys_dir / JWKS_FILE
    with tempfile.NamedTemporaryFile("w", dir=keys_dir, delete=False, encoding="utf-8") as fh:
        json.dump({"keys": published}, fh, indent=2)
        tmp = Path(fh.name)
    os.chmod(tmp, 0o644)
    tmp.replace(target)
    return target


class KeyStore:
    """Signing keys in process: the newest signs, every published key verifies."""

    def __init__(
        self, issuer: str, keys: Sequence[SigningKey] = (), *, lifetime: int = 3600
    ) -> None:
        self.issuer = issuer
        self.lifetime = lifetime
        self._keys = tuple(keys)
        self._by_kid = {k.kid: k for k in self._keys}
        self._signer = self._keys[-1] if self._keys else None
        if self._signer is not None:
            # The header never changes between tokens: encode it once.
            header = {"alg": self._signer.algorithm, "typ": "at+jwt", "kid": self._signer.kid}
            self._header_b64 = _b64(orjson.dumps(header))
            self._sign_impl = jwt.get_algorithm_by_name(self._signer.algorithm)

    @classmethod
    def load(cls, config: GatewayConfig, *, now: float | None = None) -> KeyStore:
        """Load the keys of ``config.authserver.signing`` (empty store when the server is off).

        Generates a key pair first when the directory holds none and
        ``signing.generate_if_missing`` is set (demo). Raises :class:`KeyStoreError`.
        """
        auth = config.authserver
        if auth is None or not auth.enabled:
            return cls(config.issuer)
        signing = auth.signing
        keys_dir = signing.keys_dir
        has_keys = keys_dir.is_dir() and any(keys_dir.glob("*.pem"))
        if not has_keys:
            if not signing.generate_if_missing:
                raise KeyStoreError(
                    f"{keys_dir}: no signing keys; create one with "
                    f"`nid-gateway keys generate --out {keys_dir} --alg {signing.algorithm}`"
                )
            generate_key(keys_dir, signing.algorithm, now=now)
        raw = _read_keys(keys_dir)
        if not raw:
            raise KeyStoreError(f"{keys_dir}: no signing keys")
        moment = now if now is not None else time.time()
        window = auth.token_lifetime + config.tokens.leeway
        keys: list[SigningKey] = []
        for index, (kid, key, alg, created) in enumerate(raw):
            retired = raw[index + 1][3] if index + 1 < len(raw) else None
            until = retired + window if retired is not None else None
            if until is not None and until <= moment:
                continue  # every token it signed has expired: no longer published
            jwk = _public_jwk(key, kid, alg)
            keys.append(
                SigningKey(
                    kid=kid,
                    algorithm=alg,
                    private_key=key,
                    created=created,
                    published_until=until,
                    public_jwk=jwk,
                    verifier=jwt.PyJWK(jwk, algorithm=alg),
                )
            )
        newest = keys[-1]
        if newest.algorithm != signing.algorithm:
            raise KeyStoreError(
                f"{keys_dir}: the newest key {newest.kid} is {newest.algorithm} but "
                f"signing.algorithm is {signing.algorithm}; generate a {signing.algorithm} key"
            )
        return cls(config.issuer, keys, lifetime=auth.token_lifetime)

    # -- use ------------------------------------------------------------------------------
    @property
    def ready(self) -> bool:
        """True when a signing key is loaded."""
        return self._signer is not None

    @property
    def algorithm(self) -> str | None:
        """Algorithm of the signing key (None for an empty store)."""
        return self._signer.algorithm if self._signer else None

    @property
    def signing_kid(self) -> str | None:
        """kid of the signing key (None for an empty store)."""
        return self._signer.kid if self._signer else None

    def sign(self, claims: dict[str, Any]) -> str:
        """Sign *claims* as an access token (header ``typ: at+jwt``, ``alg``, ``kid``)."""
        if self._signer is None:
            raise KeyStoreError("no signing key: the authorization server is not enabled")
        signing_input = self._header_b64 + b"." + _b64(orjson.dumps(claims))
        signature = self._sign_impl.sign(signing_input, cast(Any, self._signer.private_key))
        return (signing_input + b"." + _b64(signature)).decode("ascii")

    def _published(self, key: SigningKey, now: float) -> bool:
        return key.published_until is None or now < key.published_until

    def verification_key(self, kid: str) -> jwt.PyJWK | None:
        """The public key for *kid* while it is published, else None."""
        key = self._by_kid.get(kid)
        if key is None or not self._published(key, time.time()):
            return None
        return key.verifier

    def jwks(self) -> dict[str, Any]:
        """The published public keys as a JWKS (never private material)."""
        now = time.time()
        return {"keys": [dict(k.public_jwk) for k in self._keys if self._published(k, now)]}
