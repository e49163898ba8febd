"""Signing keys: the JWKS and metadata endpoints, readiness, and rotation."""

from __future__ import annotations

import time
from pathlib import Path

import jwt
import pytest

from gateway.authserver.signing_keys import KeyStore, KeyStoreError, generate_key
from gateway.config.loader import load_config
from gateway.observability.health import READINESS_CHECKS
from tests.fixtures.authserver import (
    AUDIENCE,
    SCOPE,
    AuthClient,
    RecordingObserver,
    auth_app,
    write_deployment,
)


async def test_jwks_publishes_public_keys_only(auth_client: AuthClient) -> None:
    client, keystore = auth_client
    resp = await client.get("/.well-known/jwks.json")
    keys = (await resp.json())["keys"]
    assert [k["kid"] for k in keys] == [keystore.signing_kid]
    assert keys[0]["alg"] == "ES256" and "d" not in keys[0]


async def test_metadata_names_the_endpoints(auth_client: AuthClient) -> None:
    client, _ = auth_client
    meta = await (await client.get("/.well-known/oauth-authorization-server")).json()
    assert meta["issuer"] == "http://127.0.0.1:8080"
    assert meta["token_endpoint"] == "http://127.0.0.1:8080/auth/token"
    assert meta["jwks_uri"] == "http://127.0.0.1:8080/.well-known/jwks.json"
    assert meta["grant_types_supported"] == ["client_credentials"]
    assert "private_key_jwt" in meta["token_endpoint_auth_methods_supported"]


async def test_keys_readiness_check_is_registered(
    tmp_path: Path, observer: RecordingObserver
) -> None:
    app, _ = auth_app(load_config(write_deployment(tmp_path)), observer)
    ok, detail = await app[READINESS_CHECKS]["keys"]()
    assert ok and detail["algorithm"] == "ES256"


def test_missing_keys_outside_demo_is_an_error(tmp_path: Path) -> None:
    config = load_config(write_deployment(tmp_path))
    for pem in (tmp_path / "keys").glob("*.pem"):
        pem.unlink()
    with pytest.raises(KeyStoreError, match="keys generate"):
        KeyStore.load(config)


def test_newest_key_signs(tmp_path: Path) -> None:
    path = write_deployment(tmp_path)
    newer = generate_key(tmp_path / "keys", "ES256", now=time.time() + 1)
    keystore = KeyStore.load(load_config(path))
    token = keystore.sign({"sub": "x"})
    assert jwt.get_unverified_header(token)["kid"] == newer == keystore.signing_kid


def _rotated(tmp_path: Path, old_age: float, new_age: float) -> tuple[KeyStore, str, str]:
    """A store whose old key was created *old_age* s ago and retired *new_age* s ago."""
    (tmp_path / "d").mkdir()
    path = write_deployment(tmp_path / "d")
    keys = tmp_path / "d" / "keys"
    for pem in keys.glob("*.pem"):
        pem.unlink()
    now = time.time()
    old = generate_key(keys, "ES256", now=now - old_age)
    new = generate_key(keys, "ES256", now=now - new_age)
    return KeyStore.load(load_config(path)), old, new


def test_token_of_the_old_key_verifies_while_the_old_key_is_published(tmp_path: Path) -> None:
    path = write_deployment(tmp_path)
    config = load_config(path)
    old_store = KeyStore.load(config)
    token = old_store.sign({"sub": "ciz", "aud": AUDIENCE, "scope": SCOPE})
    generate_key(tmp_path / "keys", "ES256", now=time.time() + 1)  # rotation
    rotated = KeyStore.load(config)
    old_kid = jwt.get_unverified_header(token)["kid"]
    assert rotated.signing_kid != old_kid
    key = rotated.verification_key(old_kid)
    assert key is not None
    assert jwt.decode(token, key, algorithms=["ES256"], audience=AUDIENCE)["sub"] == "ciz"
    assert old_kid in [k["kid"] for k in rotated.jwks()["keys"]]


def test_old_key_is_removed_once_its_tokens_have_expired(tmp_path: Path) -> None:
    # Retired 2 h ago with a 1 h lifetime: every token it signed has expired.
    store, old, new = _rotated(tmp_path, old_age=3 * 3600, new_age=2 * 3600)
    assert store.verification_key(old) is None
    assert [k["kid"] for k in store.jwks()["keys"]] == [new]


def test_old_key_published_until_retired_plus_lifetime(tmp_path: Path) -> None:
    # Retired 30 min ago with a 1 h lifetime: still published.
    store, old, new = _rotated(tmp_path, old_age=2 * 3600, new_age=1800)
    assert store.signing_kid == new
    assert store.verification_key(old) is not None
    assert sorted(k["kid"] for k in store.jwks()["keys"]) == sorted([old, new])


def test_unknown_kid_has_no_verification_key(auth_client: AuthClient) -> None:
    _, keystore = auth_client
    assert keystore.verification_key("20200101T000000Z-00000000") is None


def test_rs256_keys_sign_rs256_tokens(tmp_path: Path) -> None:
    path = write_deployment(tmp_path)
    for pem in (tmp_path / "keys").glob("*.pem"):
        pem.unlink()
    generate_key(tmp_path / "keys", "RS256")
    config = load_config(path)
    assert config.authserver is not None
    signing = config.authserver.signing.model_copy(update={"algorithm": "RS256"})
    config = config.model_copy(
        update={"authserver": config.authserver.model_copy(update={"signing": signing})}
    )
    store = KeyStore.load(config)
    token = store.sign({"sub": "x"})
    header = jwt.get_unverified_header(token)
    assert header["alg"] == "RS256"
    key = store.verification_key(header["kid"])
    assert key is not None
    assert jwt.decode(token, key, algorithms=["RS256"])["sub"] == "x"


def test_newest_key_of_the_wrong_algorithm_is_an_error(tmp_path: Path) -> None:
    path = write_deployment(tmp_path)
    generate_key(tmp_path / "keys", "RS256", now=time.time() + 1)
    with pytest.raises(KeyStoreError, match="RS256"):
        KeyStore.load(load_config(path))


def test_demo_generates_a_key_when_missing(tmp_path: Path) -> None:
    path = write_deployment(tmp_path)
    text = path.read_text().replace(
        '"algorithm": "ES256"', '"algorithm": "ES256", "generate_if_missing": true'
    )
    path.write_text('{"demo": true, ' + text.lstrip()[1:])
    for pem in (tmp_path / "keys").glob("*.pem"):
        pem.unlink()
    store = KeyStore.load(load_config(path))
    assert store.ready and len(list((tmp_path / "keys").glob("*.pem"))) == 1


def test_disabled_authserver_gives_an_empty_store(tmp_path: Path) -> None:
    config = load_config(write_deployment(tmp_path))
    store = KeyStore.load(config.model_copy(update={"authserver": None}))
    assert not store.ready and store.jwks() == {"keys": []}
    with pytest.raises(KeyStoreError):
        store.sign({})
