"""The read-only endpoints' gate (``GET /catalogus/notificatietypen``, ``GET /adresboek``):
a bearer token of a trusted issuer whose audience is the endpoint's public URL, no scope.
A refusal is the contract's refusal body, as on the routes."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable

from aiohttp import web

from gateway.pep.authenticate import authenticate
from gateway.pep.responses import refusal_response
from gateway.refusals import Refusal
from gateway.tokens.verifier import TokenVerifier, VerifiedToken

Answer = Callable[[web.Request, VerifiedToken], Awaitable[web.StreamResponse]]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def read_only(verifier: TokenVerifier, audience: str, answer: Answer) -> Handler:
    """A handler that authenticates for *audience*, then lets *answer* respond."""

    async def handle(request: web.Request) -> web.StreamResponse:
        try:
            token = await authenticate(
                request.headers, verifier, audience=audience, allow_plain_jwt=False
            )
        except Refusal as refusal:
            return refusal_response(
                refusal,
                decision_id=str(uuid.uuid4()),
                accept=request.headers.get("Accept", ""),
                headers={},
            )
        return await answer(request, token)

    return handle
