"""Fixtures: a real deployment on disk (gateway.yaml, clients.yaml, keys) and the
authorization server app built from it."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

from gateway.authserver.keys import KeyStore, generate_key
from gateway.authserver.setup import setup_authserver
from gateway.config.loader import load_config
from gateway.config.model import GatewayConfig
from gateway.config.secrets import hash_secret
from gateway.observability.events import NullObserver, TokenEvent

PUBLIC_URL = "http://127.0.0.1:8080"
ROUTE = "/deelnemers/uzovi/5151/graphql"
AUDIENCE = PUBLIC_URL + ROUTE
OTHER_AUDIENCE = PUBLIC_URL + "/deelnemers/agb/12345678/graphql"
SCOPE = "organisaties/zorgkantoor/notificaties/notificatie:create"
MELDING_SCOPE = "organisaties/zorgkantoor/meldingen/melding:create"
SECRET = "s3cret-for-tests-only"


class RecordingObserver(NullObserver):
    """Collects token events (a sink for assertions; the real observer logs them)."""

    def __init__(self) -> None:
        self.tokens: list[TokenEvent] = []

    def token(self, event: TokenEvent) -> None:
        self.tokens.append(event)


def client_key() -> tuple[ec.EllipticCurvePrivateKey, dict[str, Any]]:
    """A private_key_jwt client's key pair: (private key, public JWK with kid)."""
    key = ec.generate_private_key(ec.SECP256R1())
    jwk = json.loads(ECAlgorithm.to_jwk(key.public_key()))
    jwk["kid"] = "client-key-1"
    return key, jwk


def write_deployment(
    directory: Path,
    *,
    clients: list[dict[str, Any]] | None = None,
    server: dict[str, Any] | None = None,
    lifetime: int = 3600,
    authserver: dict[str, Any] | None = None,
) -> Path:
    """gateway.yaml + clients.yaml + policies dir + one ES256 key; returns gateway.yaml."""
    (directory / "policies").mkdir(exist_ok=True)
    keys = directory / "keys"
    if not keys.exists():
        generate_key(keys, "ES256")
    default_clients = [
        {
            "client_id": "ciz",
            "auth_method": ["client_secret_basic", "client_secret_post"],
            "secret_hash": hash_secret(SECRET),
            "instantie_type": "Onderneming",
            "identifiers": {"kvk": "62253778"},
            "allowed_scopes": [SCOPE, MELDING_SCOPE],
            "allowed_audiences": [AUDIENCE],
            "allowed_actors": ["uzovi:5151"],
        }
    ]
    (directory / "clients.yaml").write_text(
        json.dumps({"clients": clients if clients is not None else default_clients}),
        encoding="utf-8",
    )
    gateway: dict[str, Any] = {
        "public_url": PUBLIC_URL,
        "server": server or {"host": "127.0.0.1", "port": 8080},
        "authserver": {
            "signing": {"keys_dir": "keys", "algorithm": "ES256"},
            "token_lifetime": lifetime,
            "clients_file": "clients.yaml",
            **(authserver or {}),
        },
        "scopes": {"zendNotificatie": "organisaties/{kind}/notificaties/notificatie:create"},
        "routes": [
            {
                "path": ROUTE,
                "upstream": "http://127.0.0.1:9/graphql",
                "deelnemer": {"id_type": "UZOVI", "id": "5151", "kind": "zorgkantoor"},
                "policies": ["policies"],
            },
            {
                "path": "/deelnemers/agb/12345678/graphql",
                "upstream": "http://127.0.0.1:9/graphql",
                "deelnemer": {"id_type": "AGB", "id": "12345678", "kind": "zorgaanbieder"},
                "policies": ["policies"],
            },
        ],
    }
    path = directory / "gateway.yaml"
    # JSON is YAML: the files stay real YAML files read by the real loader.
    path.write_text(json.dumps(gateway, indent=2), encoding="utf-8")
    return path


def auth_app(
    config: GatewayConfig, observer: RecordingObserver
) -> tuple[web.Application, KeyStore]:
    """The authorization server routes on a fresh app (as create_app adds them)."""
    app = web.Application()
    keystore = KeyStore.load(config)
    setup_authserver(app, config, keystore, observer)
    return app, keystore


@pytest.fixture
def observer() -> RecordingObserver:
    return RecordingObserver()


@pytest.fixture
def deployment(tmp_path: Path) -> Path:
    return write_deployment(tmp_path)


@pytest.fixture
def config(deployment: Path) -> GatewayConfig:
    return load_config(deployment)


AuthClient = tuple[TestClient[Any, Any], KeyStore]


@pytest.fixture
async def auth_client(
    config: GatewayConfig,
    observer: RecordingObserver,
    aiohttp_client: Callable[[web.Application], Awaitable[TestClient[Any, Any]]],
) -> AuthClient:
    app, keystore = auth_app(config, observer)
    return await aiohttp_client(app), keystore
