"""One REST route's request handler: authenticate -> analyse -> scope -> lookups -> decide
-> forward, beside the GraphQL pipeline and sharing its steps.

What differs from GraphQL: any method is accepted (GET is read, every other method write,
each with its scope); the analysis is :class:`~gateway.rest.analyser.RestAnalyser` (path
template, query, headers, JSON body; an OpenAPI document refuses operations it lacks with
404/405 before any policy); refusals are ``{"error": {"code", "reason", "decision_id"}}``;
the upstream gets the caller's method, the path and query exactly as received and the body
bytes unchanged. A deprecated API's route adds ``Deprecation``/``Sunset`` to every answer,
refusals included.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from email.utils import format_datetime
from typing import Any, Protocol

import orjson
import structlog
from aiohttp import web

from gateway.config.model import Deprecation, RouteConfig
from gateway.facts import DecisionInput, OperationFacts, RouteFacts, TokenFacts
from gateway.observability.events import DecisionEvent, Observer
from gateway.pep.analyse import read_body
from gateway.pep.authenticate import authenticate
from gateway.pep.decide import decide, refusal_for
from gateway.pep.forward import forward_headers
from gateway.pep.lookups import NO_FACTS, NO_LOOKUPS, Lookups
from gateway.pep.pipeline import note_forwarded, note_refusal
from gateway.pep.trace import TraceContext
from gateway.policy.decision import Decision, DecisionPoint
from gateway.policy.engine import PolicySet
from gateway.proxy.upstream import Upstream
from gateway.refusals import (
    InsufficientScope,
    OperationNotAllowed,
    Refusal,
    UnsupportedContentEncoding,
)
from gateway.rest.analyser import RestAnalyser
from gateway.rest.paths import PathTemplates
from gateway.tokens.verifier import TokenVerifier

log = structlog.get_logger("gateway.pep")

READ_METHODS = frozenset({"GET", "HEAD"})


def deprecation_headers(deprecation: Deprecation | None) -> dict[str, str]:
    """``Deprecation: @<epoch>`` (RFC 9745), ``Sunset: <HTTP-date>`` (RFC 8594) and the
    deprecation ``Link``, or nothing for an API in good standing."""
    if deprecation is None:
        return {}
    headers = {
        "Deprecation": f"@{int(deprecation.deprecated_since.timestamp())}",
        "Sunset": format_datetime(deprecation.sunset, usegmt=True),
    }
    if deprecation.link:
        headers["Link"] = f'<{deprecation.link}>; rel="deprecation"'
    return headers


class _Versioned(Protocol):
    @property
    def active(self) -> PolicySet: ...


def policy_templates(store: _Versioned) -> Callable[[], PathTemplates]:
    """The REST templates of the store's active policy set, rebuilt when a reload replaced
    the set (one identity check per request otherwise)."""
    cached: list[Any] = [None, PathTemplates(())]

    def current() -> PathTemplates:
        active = store.active
        if cached[0] is not active:
            cached[:] = [active, PathTemplates(active.rest_templates)]
        templates: PathTemplates = cached[1]
        return templates

    return current


@dataclass(frozen=True, slots=True)
class RestGates:
    """Scope gate and policy of one REST route: what the PEP and ``policy explain`` share."""

    facts: RouteFacts
    analyser: RestAnalyser
    policy: DecisionPoint
    read_scope: str
    write_scope: str | None

    def required_scope(self, method: str) -> str | None:
        return self.read_scope if method in READ_METHODS else self.write_scope

    def check_scope(self, token: TokenFacts, operation: OperationFacts) -> None:
        """403 ``insufficient_scope`` unless the token holds the method's scope."""
        method = operation.operation_type
        required = self.required_scope(method)
        if required is None:
            raise OperationNotAllowed(
                tuple(sorted(READ_METHODS)), reason=f"the route is read-only: {method}"
            )
        if required not in token.scopes:
            raise InsufficientScope(reason=f"scope {required} required", required=required)

    def decide(
        self,
        token: TokenFacts,
        operation: OperationFacts,
        extra: Mapping[str, object] | None = None,
        *,
        explain: bool = False,
    ) -> Decision:
        self.check_scope(token, operation)
        return decide(
            self.policy, DecisionInput(token, operation, self.facts, extra or {}), explain=explain
        )


@dataclass(frozen=True, slots=True)
class RestRoutePlan:
    """Everything one REST route needs per request, prepared at setup."""

    config: RouteConfig
    gates: RestGates
    upstream: Upstream
    max_body_bytes: int
    lookups: Lookups = NO_LOOKUPS


def rest_refusal_response(
    refusal: Refusal, *, decision_id: str, headers: Mapping[str, str]
) -> web.Response:
    """The JSON refusal of a REST route, with its challenge / ``Allow`` headers."""
    body = orjson.dumps(
        {"error": {"code": refusal.code, "reason": refusal.reason, "decision_id": decision_id}}
    )
    response = web.Response(body=body, status=refusal.status, content_type="application/json")
    response.headers.update(headers)
    challenge = refusal.www_authenticate()
    if challenge is not None:
        response.headers["WWW-Authenticate"] = challenge
    if isinstance(refusal, OperationNotAllowed):
        response.headers["Allow"] = ", ".join(refusal.allow)
    elif isinstance(refusal, UnsupportedContentEncoding):
        response.headers["Accept-Encoding"] = "identity"
    return response


class RestRouteHandler:
    """The aiohttp handler of one REST route (every path below its prefix)."""

    def __init__(self, plan: RestRoutePlan, verifier: TokenVerifier, observer: Observer) -> None:
        self.plan = plan
        self.verifier = verifier
        self.observer = observer
        route = plan.config
        assert route.rest is not None
        self._path = route.path
        self._extra_headers = deprecation_headers(route.rest.deprecation)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        started = time.perf_counter()
        trace = TraceContext.from_headers(request.headers)
        trace_headers = trace.headers()
        answer_headers = {**trace_headers, **self._extra_headers}
        event = DecisionEvent(
            decision_id=trace.decision_id,
            route=self._path,
            trace_id=trace.trace_id,
            request_id=trace.request_id,
            audit=self.plan.gates.policy.audit_blank,
        )
        try:
            response = await self._pipeline(request, event, trace_headers, answer_headers)
        except Refusal as refusal:
            response = self._refuse(refusal, event, answer_headers)
        except Exception:
            log.exception("pep_internal_error", route=self._path, decision_id=event.decision_id)
            event.outcome, event.status = "error", 500
            event.code, event.reason = "INTERNAL_SERVER_ERROR", "internal_error"
            response = web.json_response(
                {
                    "error": {
                        "code": event.code,
                        "reason": event.reason,
                        "decision_id": event.decision_id,
                    }
                },
                status=500,
                headers=answer_headers,
            )
        event.total_ms = (time.perf_counter() - started) * 1000.0
        self.observer.decision(event)
        return response

    def _refuse(
        self, refusal: Refusal, event: DecisionEvent, headers: Mapping[str, str]
    ) -> web.Response:
        note_refusal(event, refusal)
        return rest_refusal_response(refusal, decision_id=event.decision_id, headers=headers)

    async def _pipeline(
        self,
        request: web.Request,
        event: DecisionEvent,
        trace_headers: Mapping[str, str],
        answer_headers: Mapping[str, str],
    ) -> web.StreamResponse:
        plan = self.plan
        gates = plan.gates
        route = plan.config
        token = await authenticate(
            request.headers,
            self.verifier,
            audience=route.audience,
            allow_plain_jwt=route.allow_plain_jwt,
        )
        event.token = token.facts
        body = await read_body(request, plan.max_body_bytes)
        event.operation = operation = gates.analyser.analyse(
            request.method,
            request.raw_path,
            request.headers.items(),
            body,
            request.headers.get("Content-Type"),
        )
        gates.check_scope(token.facts, operation)
        extra = NO_FACTS
        if plan.lookups:
            extra = await plan.lookups.gather(token.facts, operation, gates.facts)
        policy_started = time.perf_counter()
        event.decision = decision = gates.decide(token.facts, operation, extra)
        event.policy_ms = (time.perf_counter() - policy_started) * 1000.0
        if decision.audit is not None:
            event.audit = decision.audit
        if not decision.allow:
            raise refusal_for(decision)
        event.outcome = "allow"
        headers = forward_headers(
            request, token, trace_headers, keep_authorization=route.forward_authorization
        )
        forwarded = await plan.upstream.forward(
            request,
            body,
            headers,
            answer_headers,
            method=request.method,
            target=request.raw_path,
        )
        return note_forwarded(event, forwarded)
