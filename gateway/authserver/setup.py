"""``setup_authserver``: the token endpoint, the JWKS and the RFC 8414 metadata on the app."""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from gateway.authserver.server import (
    AUTH_METHODS,
    JWKS_PATH,
    METADATA_PATH,
    TOKEN_PATH,
    TokenEndpoint,
)
from gateway.authserver.signing_keys import KeyStore
from gateway.config.model import GatewayConfig
from gateway.observability.events import Observer
from gateway.observability.health import add_check
from gateway.observability.http import counted


def metadata(config: GatewayConfig, keystore: KeyStore) -> dict[str, Any]:
    """RFC 8414 authorization server metadata."""
    auth = config.authserver
    clients = auth.clients if auth is not None else ()
    scopes = sorted({s for c in clients for s in c.allowed_scopes})
    return {
        "issuer": config.issuer,
        "token_endpoint": config.public_url + TOKEN_PATH,
        "jwks_uri": config.public_url + JWKS_PATH,
        "grant_types_supported": ["client_credentials"],
        "response_types_supported": [],
        "token_endpoint_auth_methods_supported": AUTH_METHODS,
        "token_endpoint_auth_signing_alg_values_supported": ["RS256", "PS256", "ES256", "EdDSA"],
        "scopes_supported": scopes,
        "access_token_signing_alg_values_supported": [keystore.algorithm]
        if keystore.algorithm
        else [],
    }


def setup_authserver(
    app: web.Application, config: GatewayConfig, keystore: KeyStore, observer: Observer
) -> None:
    """Add ``POST /auth/token``, ``/.well-known/jwks.json`` and RFC 8414 metadata to *app*."""
    endpoint = TokenEndpoint(config, keystore, observer)
    # Metadata never changes while the process runs: serialise it once.
    metadata_body = orjson.dumps(metadata(config, keystore))

    async def jwks(_request: web.Request) -> web.Response:
        # Short cache: during rotation a new key must reach verifiers quickly.
        return web.Response(
            body=orjson.dumps(keystore.jwks()),
            content_type="application/json",
            headers={"Cache-Control": "public, max-age=60"},
        )

    async def oauth_metadata(_request: web.Request) -> web.Response:
        return web.Response(
            body=metadata_body,
            content_type="application/json",
            headers={"Cache-Control": "public, max-age=300"},
        )

    async def keys_ready() -> tuple[bool, dict[str, Any]]:
        return keystore.ready, {
            "kid": keystore.signing_kid,
            "algorithm": keystore.algorithm,
            "published": len(keystore.jwks()["keys"]),
        }

    app.router.add_post(TOKEN_PATH, counted(app, endpoint.handle))
    app.router.add_get(JWKS_PATH, counted(app, jwks))
    app.router.add_get(METADATA_PATH, counted(app, oauth_metadata))
    add_check(app, "keys", keys_ready)
