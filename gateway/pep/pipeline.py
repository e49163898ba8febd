"""One PEP route's request handler: authenticate -> analyse -> decide -> forward.

Everything that depends only on the route is prepared once in :class:`RoutePlan`; the
handler does per request only what the request itself demands. Each request produces
exactly one decision event (allow, deny or error) for the observer, and every response,
refusals included, carries the trace headers and ``X-Request-ID``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

import structlog
from aiohttp import web

from gateway.config.model import RouteConfig
from gateway.facts import OperationFacts, RouteFacts
from gateway.graphql.analyser import Analyser
from gateway.observability.events import DecisionEvent, Observer
from gateway.pep.abonnementen import SubscriptionRecorder
from gateway.pep.analyse import read_body
from gateway.pep.authenticate import authenticate
from gateway.pep.decide import refusal_for
from gateway.pep.forward import forward_headers
from gateway.pep.gates import RouteGates
from gateway.pep.lookups import NO_FACTS, NO_LOOKUPS, Lookups
from gateway.pep.responses import refusal_response
from gateway.pep.trace import request_trace
from gateway.policy.decision import Decision, DecisionPoint
from gateway.proxy.upstream import Forwarded, Upstream
from gateway.refusals import BadGateway, GatewayTimeout, MethodNotAllowed, Refusal
from gateway.tokens.verifier import TokenVerifier, VerifiedToken

log = structlog.get_logger("gateway.pep")

INTERNAL_ERROR_BODY = (
    b'{"errors":[{"message":"Internal server error","extensions":'
    b'{"code":"INTERNAL_SERVER_ERROR","reason":"internal_error","decision_id":"%s"}}]}'
)


@dataclass(frozen=True, slots=True)
class Allowed:
    """An allowed request as the async path (``Prefer: respond-async``) keeps it: the exact
    body and the headers the upstream would have received, with what decided it."""

    route: RouteConfig
    facts: RouteFacts
    """The route's facts as decided on: on the central route, the body's recipient is the
    deelnemer (``deelnemer_id_type``, ``deelnemer_id``)."""
    token: VerifiedToken
    operation: OperationFacts
    decision: Decision
    body: bytes
    headers: Mapping[str, str]
    trace_headers: Mapping[str, str]
    decision_id: str
    trace_id: str | None


AsyncPath = Callable[[Allowed], Awaitable[web.StreamResponse]]
"""Accepts an allowed request for later delivery and answers it (``202``); raises a
:class:`~gateway.refusals.Refusal` when it cannot (``503``: the outbox is not writable)."""


def prefers_async(headers: Mapping[str, str]) -> bool:
    """The caller sent ``Prefer: respond-async`` (RFC 7240; among other preferences)."""
    values = headers.getall("Prefer", ()) if hasattr(headers, "getall") else ()
    for value in values:
        for preference in value.split(","):
            if preference.split(";", 1)[0].strip().lower() == "respond-async":
                return True
    return False


@dataclass(frozen=True, slots=True)
class RoutePlan:
    """Everything one route needs per request, prepared at setup."""

    config: RouteConfig
    facts: RouteFacts
    analyser: Analyser
    policy: DecisionPoint
    upstream: Upstream | None
    """None: the handler finds the upstream per request (the central notification route)."""
    max_body_bytes: int
    lookups: Lookups = NO_LOOKUPS
    """Context facts (registers, the store) gathered before the policy decides."""
    recorder: SubscriptionRecorder | None = None
    """Records the subscriptions bronhouders confirm (None: the route records nothing)."""
    respond_async: AsyncPath | None = None
    """The reliable-delivery path, on the routes that offer it (``docs/delivery.md``)."""


class RouteHandler:
    """The aiohttp handler of one PEP route."""

    def __init__(self, plan: RoutePlan, verifier: TokenVerifier, observer: Observer) -> None:
        self.plan = plan
        self.verifier = verifier
        self.observer = observer
        route = plan.config
        self._path = route.path
        self._audience = route.audience
        self._allow_plain_jwt = route.allow_plain_jwt
        self._keep_authorization = route.forward_authorization
        # Whether a subclass finds gates or upstream per request (the central route): if
        # not, handle() takes the route's own without the method call.
        handler = type(self)
        self._own_gates = handler._gates_for is RouteHandler._gates_for
        self._own_upstream = handler._upstream_for is RouteHandler._upstream_for
        self.count_request: Callable[[str, int, float], None] = _count_nothing
        """Counts each answered request in the request metrics (method, status, seconds):
        the PEP's routes are registered without ``counted``'s wrapper (set by the setup)."""

    @property
    def plan(self) -> RoutePlan:
        """The route's plan; replacing it replaces the gates built from it."""
        return self._plan

    @plan.setter
    def plan(self, plan: RoutePlan) -> None:
        self._plan = plan
        # Analyse, scope gate, policy: the same gates `policy explain` decides through.
        self._gates = RouteGates(
            plan.facts,
            plan.analyser,
            plan.policy,
            plan.config.required_scopes,
            plan.config.scope_default,
        )

    @property
    def gates(self) -> RouteGates:
        """The route's analyse, scope and policy gates (the AuthZEN endpoint decides
        through these too, so its answer is this route's answer)."""
        return self._gates

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """Handle one request to the route (POST; any other method is refused)."""
        started = time.perf_counter()
        method = request.method
        plan = self._plan  # (the attribute, not the property: once per request)
        decision_id, trace_id, request_id, trace_headers, trace_lines = request_trace(
            request.headers
        )
        # Until a policy with an audit: block decides, every audit name has no value.
        event = DecisionEvent(
            decision_id=decision_id,
            route=self._path,
            trace_id=trace_id,
            request_id=request_id,
            audit=plan.policy.audit_blank,
        )
        try:
            # The pipeline runs in this coroutine, not one of its own: every await level is
            # paid again at each suspension of the request (issue 17).
            if method != "POST":
                raise MethodNotAllowed(reason=f"method {method} not allowed")
            headers = request.headers
            # 1. authenticate
            token = await authenticate(
                headers,
                self.verifier,
                audience=self._audience,
                allow_plain_jwt=self._allow_plain_jwt,
            )
            event.token = token.facts
            # 2. analyse
            body = await read_body(request, plan.max_body_bytes)
            event.operation = operation = self._gates.operation(body, headers.get("Content-Type"))
            # 3. decide
            gates = self._gates if self._own_gates else self._gates_for(operation)
            extra = NO_FACTS
            wanted = plan.lookups.wanted(token.facts, operation, gates.facts)
            if wanted:
                gates.check_scopes(token.facts, operation)
                extra = await plan.lookups.gather(token.facts, operation, gates.facts, wanted)
            policy_started = time.perf_counter()
            event.decision = decision = gates.decide(token.facts, operation, extra)
            event.policy_ms = (time.perf_counter() - policy_started) * 1000.0
            if decision.audit is not None:
                event.audit = decision.audit
            if not decision.allow:
                raise refusal_for(decision)
            # 4. forward
            if self._own_upstream:
                upstream = plan.upstream
                if upstream is None:
                    raise BadGateway(reason="no_upstream")
            else:
                upstream = self._upstream_for(operation, gates)
            event.outcome = "allow"
            forward = forward_headers(
                request,
                token,
                None,
                keep_authorization=self._keep_authorization,
                trace_lines=trace_lines,
            )
            if plan.respond_async is not None and prefers_async(headers):
                response = await plan.respond_async(
                    Allowed(
                        route=plan.config,
                        facts=gates.facts,
                        token=token,
                        operation=operation,
                        decision=decision,
                        body=body,
                        headers=forward,
                        trace_headers=trace_headers,
                        decision_id=decision_id,
                        trace_id=trace_id,
                    )
                )
                event.status = response.status
            else:
                recorder = plan.recorder
                if recorder is not None and not recorder.wanted(operation):
                    recorder = None
                if recorder is not None:
                    await recorder.check()
                forwarded = await upstream.forward(
                    request, body, forward, trace_headers, whole=recorder is not None
                )
                response = note_forwarded(event, forwarded)
                if recorder is not None and forwarded.body is not None:
                    await recorder.record(
                        token.facts, operation, gates.facts, forwarded.status, forwarded.body
                    )
        except Refusal as refusal:
            response = self._refuse(refusal, request, event, trace_headers)
        except asyncio.CancelledError:  # the client went away: counted as counted() does
            self.count_request(method, 499, time.perf_counter() - started)
            raise
        except Exception:
            # A bug, not a refusal: answer 500 and never forward; the event says "error".
            log.exception("pep_internal_error", route=self._path, decision_id=decision_id)
            event.outcome, event.status = "error", 500
            event.code, event.reason = "INTERNAL_SERVER_ERROR", "internal_error"
            response = web.Response(
                body=INTERNAL_ERROR_BODY % decision_id.encode(),
                status=500,
                content_type="application/graphql-response+json",
                headers=trace_headers,
            )
        event.total_ms = (time.perf_counter() - started) * 1000.0
        self.observer.decision(event)
        self.count_request(method, response.status, event.total_ms / 1000.0)
        return response

    def _refuse(
        self,
        refusal: Refusal,
        request: web.Request,
        event: DecisionEvent,
        trace_headers: Mapping[str, str],
    ) -> web.Response:
        note_refusal(event, refusal)
        return refusal_response(
            refusal,
            decision_id=event.decision_id,
            accept=request.headers.get("Accept", ""),
            headers=trace_headers,
        )

    def _gates_for(self, operation: OperationFacts) -> RouteGates:
        """The gates that decide *operation*: the route's own (the central notification
        route builds them for the body's recipient)."""
        return self._gates

    def _upstream_for(self, operation: OperationFacts, gates: RouteGates) -> Upstream:
        """Where an allowed *operation* goes: the route's upstream (the central route finds
        the recipient's in the adresboek, or refuses)."""
        if self.plan.upstream is None:
            raise BadGateway(reason="no_upstream")
        return self.plan.upstream


def _count_nothing(method: str, status: int, seconds: float) -> None:
    """A handler's request counter before the setup gives it one (tests of the pipeline)."""


def note_refusal(event: DecisionEvent, refusal: Refusal) -> None:
    """Record *refusal* in the request's decision event (GraphQL and REST routes alike)."""
    # A refusal after an allow (upstream failure) or by a failing PDP is an error.
    event.outcome = "error" if event.outcome == "allow" or refusal.status >= 500 else "deny"
    event.status = refusal.status
    event.code = refusal.code
    event.reason = refusal.reason
    if isinstance(refusal, BadGateway | GatewayTimeout):
        event.upstream_error = refusal.reason.removeprefix("upstream_")


def note_forwarded(event: DecisionEvent, forwarded: Forwarded) -> web.StreamResponse:
    """Record the upstream's answer in the decision event; the response to send."""
    event.status = forwarded.status
    event.upstream_ms = forwarded.upstream_ms
    if forwarded.error in ("reset", "timeout"):
        event.outcome, event.upstream_error = "error", forwarded.error
    return forwarded.response
