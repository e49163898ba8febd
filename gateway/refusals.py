"""Refusals: one class per kind, each knowing its HTTP status, GraphQL code and message.

The PEP turns any :class:`Refusal` into the contract's GraphQL error body
(``{"errors": [{"message", "extensions": {"code", "reason", "decision_id"}}]}``).
Raising one anywhere in the pipeline (authenticate, analyse, decide, forward) stops the
request before it reaches the upstream.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import ClassVar


class Refusal(Exception):
    """A request the gateway answers itself instead of forwarding."""

    status: ClassVar[int] = 400
    code: ClassVar[str] = "BAD_REQUEST"
    default_message: ClassVar[str] = "Bad Request"

    def __init__(self, message: str | None = None, *, reason: str | None = None) -> None:
        self.message = message or self.default_message
        # `reason` is the short machine-stable reason (rule reason text, or a slug);
        # `message` is what the caller reads.
        self.reason = reason or self.message
        super().__init__(self.message)

    def www_authenticate(self) -> str | None:
        """The RFC 6750 challenge to send with this refusal, if any."""
        return None


class Unauthenticated(Refusal):
    """401: missing, malformed, expired, wrong issuer/audience, bad signature."""

    status = 401
    code = "UNAUTHENTICATED"
    default_message = "Unauthenticated"

    def __init__(
        self, message: str | None = None, *, reason: str | None = None, token_sent: bool = True
    ) -> None:
        super().__init__(message, reason=reason)
        self.token_sent = token_sent

    def www_authenticate(self) -> str:
        if not self.token_sent:
            return 'Bearer realm="nid-gateway"'
        desc = self.message.replace("\\", "\\\\").replace('"', '\\"')
        return f'Bearer realm="nid-gateway", error="invalid_token", error_description="{desc}"'


class ScopeMismatch(Refusal):
    """403: the token's scopes do not name this route's deelnemer kind for the operation."""

    status = 403
    code = "FORBIDDEN"
    default_message = "Request Does Not Match Scopes"

    def __init__(
        self, message: str | None = None, *, reason: str | None = None, required: str = ""
    ) -> None:
        super().__init__(message, reason=reason)
        self.required = required

    def www_authenticate(self) -> str:
        challenge = 'Bearer realm="nid-gateway", error="insufficient_scope"'
        if self.required:
            challenge += f', scope="{self.required}"'
        return challenge


class PolicyDenied(Refusal):
    """403: a policy refused without a specific reason."""

    status = 403
    code = "FORBIDDEN"
    default_message = "Policy Access Denied"


class QuerySyntaxError(Refusal):
    """400: the body's GraphQL does not parse."""

    code = "GRAPHQL_PARSE_FAILED"
    default_message = "Invalid Query Syntax"


class NoOperation(Refusal):
    """400: nothing to evaluate (no query, no operation, unknown operationName)."""

    default_message = "No operation found to evaluate"


class MultipleOperations(Refusal):
    """400: a document with several operations and no way to pick one."""

    default_message = "Only one operation at the time is supported."


class MultipleRootFields(Refusal):
    """400: an operation with more than one root field."""

    default_message = "Only one selectionset in an operation is supported."


class ValidationFailed(Refusal):
    """400: schema violations and the policy's reasons (``"<Op> <type>: <reason>"``)."""

    code = "GRAPHQL_VALIDATION_FAILED"
    default_message = "Validation failed"


class LimitExceeded(Refusal):
    """400: the query is over a configured limit (length, depth, aliases, tokens, list items)."""

    default_message = "Query exceeds a configured limit"


class BadRequest(Refusal):
    """400: a request body that is not a GraphQL request (bad JSON, wrong field types)."""


class PayloadTooLarge(Refusal):
    status = 413
    code = "PAYLOAD_TOO_LARGE"
    default_message = "Request body exceeds the configured limit"


class UnsupportedMediaType(Refusal):
    status = 415
    default_message = "Unsupported content type: use application/json or application/graphql"


class UnsupportedContentEncoding(UnsupportedMediaType):
    """415 for a compressed body: answered with ``Accept-Encoding: identity``."""

    default_message = "Unsupported Content-Encoding: send the body uncompressed"


def content_coding(values: Iterable[str]) -> str | None:
    """The first content coding other than ``identity`` in the ``Content-Encoding`` header
    *values*, or None: a body the gateway would have to decode to read (it never does)."""
    for value in values:
        for coding in value.split(","):
            if coding.strip().lower() not in ("", "identity"):
                return coding.strip()
    return None


class MethodNotAllowed(Refusal):
    status = 405
    default_message = "Method not allowed: use POST"


class NotFound(Refusal):
    """404: a REST route's OpenAPI document has no such path."""

    status = 404
    code = "NOT_FOUND"
    default_message = "Not Found"


class OperationNotAllowed(MethodNotAllowed):
    """405 on a REST route: the path exists, the method not; ``Allow`` lists the methods."""

    code = "METHOD_NOT_ALLOWED"

    def __init__(self, allow: tuple[str, ...], *, reason: str | None = None) -> None:
        super().__init__("Method Not Allowed", reason=reason)
        self.allow = allow


class InsufficientScope(ScopeMismatch):
    """403 on a REST route: the token lacks the method's scope (RFC 6750 ``insufficient_scope``)."""

    code = "insufficient_scope"


class BadGateway(Refusal):
    status = 502
    code = "BAD_GATEWAY"
    default_message = "Upstream unavailable"


class GatewayTimeout(Refusal):
    status = 504
    code = "GATEWAY_TIMEOUT"
    default_message = "Upstream did not answer in time"


class FactsUnavailable(Refusal):
    """503: a fact source the policy needs (a register, the store) did not answer; the
    request is refused rather than decided without its context (fail closed)."""

    status = 503
    code = "SERVICE_UNAVAILABLE"
    default_message = "Service unavailable"


class OutboxUnavailable(Refusal):
    """503 on the async path (``Prefer: respond-async``): the outbox cannot be written, so
    nothing is accepted that might be lost; the synchronous path keeps working."""

    status = 503
    code = "SERVICE_UNAVAILABLE"
    default_message = "Reliable delivery unavailable: the outbox cannot be written"


class PolicyError(Refusal):
    """500: the PDP failed (fail closed: the request is refused, never forwarded)."""

    status = 500
    code = "INTERNAL_SERVER_ERROR"
    default_message = "Policy evaluation failed"
