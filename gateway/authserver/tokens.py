"""Minting nID access tokens (RFC0014, RFC 9068): the one place that decides what a token says.

Used by ``POST /auth/token``, by ``nid-gateway token issue`` and by tests, so a token
minted offline is exactly the token the server would issue.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from gateway.authserver.signing_keys import KeyStore
from gateway.config.model import SCOPELESS_PATHS, ClientConfig, GatewayConfig


class TokenRequestError(Exception):
    """An OAuth2 error (RFC 6749 §5.2 / RFC 8707) with its HTTP status."""

    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(f"{error}: {description}")
        self.error = error
        self.description = description
        self.status = status


def requested_audience(audience: str | None, resource: str | None) -> str | None:
    """The token's audience: the ``audience`` parameter or RFC 8707's ``resource``.

    Either may name the route; both at once must name the same one. A ``resource`` must be an
    absolute URI without a fragment (RFC 8707 §2), else ``invalid_target``. A repeated
    parameter (two resources, one token) is refused before this, when the body is read.
    """
    if not resource:
        return audience
    parts = urlsplit(resource)
    if not parts.scheme or not parts.netloc or "#" in resource:
        raise TokenRequestError(
            "invalid_target", "resource must be an absolute URI without a fragment"
        )
    if audience and audience != resource:
        raise TokenRequestError("invalid_request", "audience and resource name different targets")
    return resource


@dataclass(frozen=True, slots=True)
class IssuedToken:
    """A minted access token and what the token response says about it."""

    access_token: str
    jti: str
    expires_in: int
    scope: str
    claims: dict[str, Any]


class TokenIssuer:
    """Checks a grant against the client's registration and signs the token.

    Built once per configuration: client lookup is a dict, no per-request parsing.
    """

    def __init__(self, config: GatewayConfig, keystore: KeyStore) -> None:
        auth = config.authserver
        self.keystore = keystore
        self.issuer = config.issuer
        self.lifetime = auth.token_lifetime if auth is not None else 3600
        self.clients: dict[str, ClientConfig] = (
            {c.client_id: c for c in auth.clients} if auth is not None else {}
        )
        base = config.public_url.rstrip("/")
        self.scopeless = frozenset(base + path for path in SCOPELESS_PATHS)
        """Audiences of the read-only endpoints, for which a token may carry no scope."""

    def client(self, client_id: str) -> ClientConfig | None:
        """The registered client, or None."""
        return self.clients.get(client_id)

    def issue(
        self,
        client: ClientConfig,
        scopes: Sequence[str],
        audience: str | None,
        actor: str | None = None,
    ) -> IssuedToken:
        """Check the request and mint a token, or raise :class:`TokenRequestError`.

        Checks, in this order: audience present, audience allowed (``invalid_target``),
        scopes present (none needed for a read-only endpoint's audience) and all allowed
        (``invalid_scope``), actor allowed.
        """
        if not audience:
            raise TokenRequestError("invalid_request", "audience required")
        if audience not in client.allowed_audiences:
            raise TokenRequestError("invalid_target", "audience not allowed for this client")
        # Keep the order, drop repeats; an item may itself be space-separated.
        requested = list(dict.fromkeys(word for item in scopes for word in item.split()))
        if not requested and audience not in self.scopeless:
            raise TokenRequestError("invalid_scope", "scope required")
        if not client.allowed_scopes.issuperset(requested):
            raise TokenRequestError("invalid_scope", "scope not allowed")
        if actor is not None and actor not in client.allowed_actors:
            raise TokenRequestError("invalid_request", "actor not allowed for this client")
        now = int(time.time())
        jti = str(uuid.uuid4())
        scope = " ".join(requested)
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "sub": client.client_id,
            "aud": audience,
            "exp": now + self.lifetime,
            "nbf": now,
            "iat": now,
            "jti": jti,
            "client_id": client.client_id,
            "scope": scope,
            "scopes": requested,
        }
        if client.instantie_type is not None:
            claims["instantie_type"] = client.instantie_type
        claims.update(client.identifier_claims)
        claims.update(client.extra_claims)
        if actor is not None:
            claims["act"] = {"sub": actor}
        return IssuedToken(
            access_token=self.keystore.sign(claims),
            jti=jti,
            expires_in=self.lifetime,
            scope=scope,
            claims=claims,
        )


def issue_token(
    config: GatewayConfig,
    keystore: KeyStore,
    client_id: str,
    scopes: Sequence[str],
    audience: str,
    actor: str | None = None,
) -> str:
    """Mint the access token the server would issue to *client_id* (no client authentication).

    Raises :class:`TokenRequestError` (``invalid_client`` for an unknown client) exactly as
    the token endpoint would answer.
    """
    issuer = TokenIssuer(config, keystore)
    client = issuer.client(client_id)
    if client is None:
        raise TokenRequestError("invalid_client", "unknown client", 401)
    return issuer.issue(client, scopes, audience, actor).access_token
