"""Step 1, authenticate: who is calling, according to a verified bearer token.

The token comes from the ``Authorization: Bearer`` header only (never a query parameter or
cookie). Verification and the claim mapping live in :mod:`gateway.tokens`; this step turns
their outcome into the route's view. :func:`check_scopes` is the other half of the
token's say: run once the root field is known, before any policy rule.
:func:`check_audience` is the verifier's per-route audience check for a token payload that
was never signed (``policy explain``).
"""

from __future__ import annotations

from collections.abc import Coroutine, Mapping
from typing import Any

from aiohttp.hdrs import AUTHORIZATION
from multidict import CIMultiDictProxy

from gateway.facts import OperationFacts, TokenFacts
from gateway.refusals import ScopeMismatch, Unauthenticated
from gateway.tokens.verifier import (
    TokenVerifier,
    VerifiedToken,
    require_audience,
    token_audiences,
)


def bearer_token(headers: CIMultiDictProxy[str]) -> str:
    """The bearer token of the request; :class:`Unauthenticated` when absent or malformed."""
    values = headers.getall(AUTHORIZATION, ())  # an istr: its case-folded form is kept
    if not values:
        raise Unauthenticated("Missing bearer token", reason="missing_token", token_sent=False)
    if len(values) > 1:
        raise Unauthenticated("More than one Authorization header", reason="malformed_header")
    scheme, _, token = values[0].strip().partition(" ")
    if scheme != "Bearer" and scheme.lower() != "bearer":  # the usual spelling: no copy
        raise Unauthenticated(
            "Authorization must use the Bearer scheme", reason="wrong_scheme", token_sent=False
        )
    token = token.strip()
    if not token:
        raise Unauthenticated("Missing bearer token", reason="missing_token", token_sent=False)
    return token


def authenticate(
    headers: CIMultiDictProxy[str],
    verifier: TokenVerifier,
    *,
    audience: str,
    allow_plain_jwt: bool,
) -> Coroutine[Any, Any, VerifiedToken]:
    """Verify the request's bearer token for a route with *audience* (awaited by the
    caller: the verifier's own coroutine, no second one around it; a missing or malformed
    header raises already here)."""
    values = headers.getall(AUTHORIZATION, ())
    if len(values) == 1:
        # The usual header, ``Bearer <token>``, read in place: the same token as
        # bearer_token finds (strip, then the text after the first space, stripped).
        value = values[0]
        if value[:7] == "Bearer ":
            token = value[7:].strip()
            if token:
                return verifier.verify(token, audience=audience, allow_plain_jwt=allow_plain_jwt)
    # Every other spelling, and each refusal, as bearer_token answers it.
    return verifier.verify(
        bearer_token(headers), audience=audience, allow_plain_jwt=allow_plain_jwt
    )


def check_scopes(
    token: TokenFacts,
    operation: OperationFacts,
    required_scopes: Mapping[str, str],
    scope_default: str | None,
) -> None:
    """Refuse unless the token holds the scope the route requires for the root field.

    A root field the route does not list needs ``scope_default``; with no default it is
    refused outright (fail closed).
    """
    required = required_scopes.get(operation.root_field, scope_default)
    if required is None:
        raise ScopeMismatch(reason=f"no scope grants {operation.root_field} on this route")
    if required not in token.scopes:
        raise ScopeMismatch(reason=f"scope {required} required", required=required)


def check_audience(claims: Mapping[str, Any], audience: str) -> None:
    """Refuse a token payload whose ``aud`` does not name the route's *audience*, with the
    verifier's own checks (for live tokens :meth:`TokenVerifier.verify` runs them)."""
    require_audience(token_audiences(claims), audience)
