"""Refusals as GraphQL error responses (the contract's refusal body).

``{"errors": [{"message", "extensions": {"code", "reason", "decision_id"}}]}`` with content
type ``application/graphql-response+json`` (GraphQL over HTTP), or ``application/json``
when the caller's ``Accept`` asks for that and not for the GraphQL media type. 401 and 403
carry their RFC 6750 ``WWW-Authenticate`` challenge; a refused content coding carries
``Accept-Encoding: identity`` (RFC 9110 section 15.5.16).
"""

from __future__ import annotations

from collections.abc import Mapping

import orjson
from aiohttp import web

from gateway.refusals import Refusal, UnsupportedContentEncoding

GRAPHQL_RESPONSE = "application/graphql-response+json"
JSON = "application/json"


def refusal_content_type(accept: str) -> str:
    """The media type of a refusal for a caller sending *accept*."""
    if JSON in accept and GRAPHQL_RESPONSE not in accept:
        return JSON
    return GRAPHQL_RESPONSE


def refusal_response(
    refusal: Refusal, *, decision_id: str, accept: str, headers: Mapping[str, str]
) -> web.Response:
    """The response for *refusal*, with *headers* (trace, request id) added."""
    body = orjson.dumps(
        {
            "errors": [
                {
                    "message": refusal.message,
                    "extensions": {
                        "code": refusal.code,
                        "reason": refusal.reason,
                        "decision_id": decision_id,
                    },
                }
            ]
        }
    )
    response = web.Response(
        body=body, status=refusal.status, content_type=refusal_content_type(accept)
    )
    response.headers.update(headers)
    challenge = refusal.www_authenticate()
    if challenge is not None:
        response.headers["WWW-Authenticate"] = challenge
    if refusal.status == 405:
        response.headers["Allow"] = "POST"
    elif isinstance(refusal, UnsupportedContentEncoding):
        response.headers["Accept-Encoding"] = "identity"
    return response
