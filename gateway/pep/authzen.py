"""The AuthZEN PDP endpoint: other enforcement points ask this gateway's policies.

``POST /access/v1/evaluation``, ``POST /access/v1/evaluations`` and ``GET
/.well-known/authzen-configuration`` (OpenID AuthZEN Authorization API 1.0, in the shape the
network's RFC0052 gives it). An Envoy or Kong in front of a deelnemer, or another netwerkpunt,
asks "may this organisation run this operation at that route?" and gets the answer the route
itself would give.

There is no second policy path. An evaluation is mapped onto the facts the PEP decides on
(docs/authzen.md): the subject onto :class:`~gateway.facts.TokenFacts` through the gateway's
claim mapping, ``context.service`` onto a configured route, ``context.graphql`` (the GraphQL
request) through that route's analyser onto :class:`~gateway.facts.OperationFacts`; then the
route's own :class:`~gateway.pep.gates.RouteGates` (scope gate, lookups, policy) decide, the
object the route's handler decides with. A malformed evaluation is a ``400`` (in a batch: that
item's ``decision: false`` with an ``error``); anything that goes wrong while deciding is a
``decision: false`` (fail closed).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
import structlog
from aiohttp import web

from gateway.config.model import ClaimMapping, GatewayConfig
from gateway.facts import OperationFacts, TokenFacts
from gateway.graphql.request import load_json
from gateway.observability.http import counted
from gateway.pep.analyse import read_body
from gateway.pep.authenticate import authenticate
from gateway.pep.lookups import NO_FACTS
from gateway.pep.pipeline import RouteHandler
from gateway.pep.trace import TraceContext
from gateway.policy.decision import Decision
from gateway.refusals import (
    BadRequest,
    FactsUnavailable,
    Refusal,
    ScopeMismatch,
    UnsupportedMediaType,
)
from gateway.tokens.claims import map_claims
from gateway.tokens.verifier import TokenVerifier

log = structlog.get_logger("gateway.pep")

EVALUATION = "/access/v1/evaluation"
EVALUATIONS = "/access/v1/evaluations"
METADATA = "/.well-known/authzen-configuration"
SCOPE = "authzen:evaluate"
MAX_EVALUATIONS = 100
"""A batch holds at most this many evaluations (each is a GraphQL analysis and a decision)."""
SEMANTICS = ("execute_all", "deny_on_first_deny", "permit_on_first_permit")
ACTIONS = {
    "query": "query",
    "read": "query",
    "mutation": "mutation",
    "write": "mutation",
    "subscription": "subscription",
}
"""``action.name`` (any case) -> the GraphQL operation type it names; ``read``/``write`` are
RFC0052's names for the same two."""
TUPLE = ("subject", "action", "resource", "context")


@dataclass(frozen=True, slots=True)
class Answer:
    """One evaluation's answer: ``{"decision": bool, "context": {...}}``."""

    decision: bool
    context: Mapping[str, Any] = field(default_factory=dict)

    def json(self) -> dict[str, Any]:
        return {"decision": self.decision, "context": dict(self.context)}


def refused(refusal: Refusal, gate: str) -> Answer:
    """The answer for a request a gate refused, named as ``policy explain`` names it."""
    return Answer(
        False,
        {
            "reason": refusal.reason,
            "rule": f"{gate}/{type(refusal).__name__}",
            "status": refusal.status,
            "message": refusal.message,
        },
    )


def decided(decision: Decision) -> Answer:
    """The answer for the policy's decision (a refusal's status and message with a deny)."""
    reason = decision.reason or ("allowed" if decision.allow else "denied")
    context: dict[str, Any] = {"reason": reason, "rule": decision.rule}
    if not decision.allow:
        context.update(status=decision.status, message=decision.message)
    return Answer(decision.allow, context)


def failed(status: int, message: str, reason: str, rule: str) -> Answer:
    """A deny for an evaluation that could not be decided (AuthZEN's per-item error)."""
    error = {"status": status, "message": message}
    return Answer(False, {"reason": reason, "rule": rule, "error": error})


def _object(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise BadRequest(f"`{where}` must be a JSON object", reason=f"{where} is not an object")
    return value


def _text(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise BadRequest(f"`{where}` must be a non-empty string", reason=f"{where} missing")
    return value


class Evaluator:
    """Maps AuthZEN evaluations onto the routes' own gates (built once per application)."""

    def __init__(self, handlers: Mapping[str, object], mapping: ClaimMapping) -> None:
        # context.service names a route by its path or by its audience (its public URL).
        # Only GraphQL routes are mapped: REST routes have no AuthZEN mapping yet.
        self._routes: dict[str, RouteHandler] = {}
        for path, handler in handlers.items():
            if not isinstance(handler, RouteHandler):
                continue
            self._routes[path] = handler
            self._routes[handler.plan.config.audience] = handler
        self._mapping = mapping
        self._claims = {item.id_type: item.claim for item in reversed(mapping.identifiers)}

    async def answer(self, request: Mapping[str, Any]) -> Answer:
        """The answer to one evaluation; :class:`BadRequest` for a malformed one. An
        unexpected failure is a deny (fail closed), never a 500."""
        try:
            return await self.evaluate(request)
        except BadRequest:
            raise
        except Exception:
            log.exception("authzen_internal_error")
            return failed(500, "Internal error", "internal_error", "authzen/error")

    async def evaluate(self, request: Mapping[str, Any]) -> Answer:
        """Map one evaluation onto a route's facts and decide through the route's gates."""
        token = self.token(_object(request.get("subject"), "subject"))
        operation_type = self.operation_type(_object(request.get("action"), "action"))
        resource = _object(request.get("resource"), "resource")
        _text(resource.get("type"), "resource.type")
        context = _object(request.get("context"), "context")
        service = _text(context.get("service"), "context.service")
        name = _text(context.get("operation"), "context.operation")
        graphql = _object(context.get("graphql"), "context.graphql")
        handler = self._routes.get(service)
        if handler is None:
            return failed(
                404, f"No route {service}", f"unknown service {service}", "authzen/service"
            )
        gates = handler.gates
        try:
            operation = gates.operation(orjson.dumps(graphql), "application/json")
        except Refusal as refusal:
            return refused(refusal, "graphql")
        self.check_matches(operation, operation_type, name)
        try:
            extra = NO_FACTS
            lookups = handler.plan.lookups
            if lookups:  # as the route's handler: the scope gate before any lookup
                gates.check_scopes(token, operation)
                extra = await lookups.gather(token, operation, gates.facts)
            decision = gates.decide(token, operation, extra)
        except ScopeMismatch as refusal:
            return refused(refusal, "scope")
        except FactsUnavailable as refusal:
            return refused(refusal, "lookups")
        except Refusal as refusal:  # the PDP itself failed (PolicyError)
            return refused(refusal, "policy")
        return decided(decision)

    def token(self, subject: Mapping[str, Any]) -> TokenFacts:
        """The subject as the PEP sees a caller: claims mapped by the gateway's claim mapping.

        ``properties.claims`` is the caller's token payload (as the asking enforcement point
        verified it); ``id_type`` (or RFC0052's ``identifiers``), ``organization_type``,
        ``scopes`` and ``client_id`` are written into it as the claims they stand for.
        """
        if subject.get("type") != "organization":
            raise BadRequest(
                "`subject.type` must be `organization`: the policies decide for organisations",
                reason="subject.type is not organization",
            )
        ident = _text(subject.get("id"), "subject.id")
        props = _object(subject.get("properties", {}), "subject.properties")
        claims = dict(_object(props.get("claims", {}), "subject.properties.claims"))
        id_type = self.id_type(props, ident)
        if id_type is not None:
            claims[self._claims[id_type]] = ident
        organization_type = props.get("organization_type")
        if organization_type is not None:
            kind = _text(organization_type, "subject.properties.organization_type")
            # RFC0052 spells it ZORGKANTOOR; the nID token (and the policies) Zorgkantoor.
            claims[self._mapping.instantie_type[0]] = kind.capitalize() if kind.isupper() else kind
        if "scopes" in props:
            scopes = props["scopes"]
            if not isinstance(scopes, list) or not all(isinstance(s, str) for s in scopes):
                raise BadRequest(
                    "`subject.properties.scopes` must be a list of strings",
                    reason="subject.properties.scopes is not a list of strings",
                )
            claims[self._mapping.scopes[0]] = scopes
        if "client_id" in props:
            claims[self._mapping.client_id[0]] = _text(
                props["client_id"], "subject.properties.client_id"
            )
        facts = map_claims(claims, self._mapping)
        if facts.identifier != ident:
            raise BadRequest(
                f"`subject.id` {ident!r} is not the organisation's identifier: name its type "
                "in `subject.properties.id_type` (" + ", ".join(sorted(self._claims)) + ")",
                reason="subject.id does not match the identifier",
            )
        return facts

    def id_type(self, props: Mapping[str, Any], ident: str) -> str | None:
        """The identifier type of the subject: ``id_type``, else the one RFC0052 identifier
        (``{"uzovi_code": "5151"}`` is UZOVI 5151), else None (the claims carry it)."""
        id_type = props.get("id_type")
        if id_type is None and "identifiers" in props:
            identifiers = _object(props["identifiers"], "subject.properties.identifiers")
            named = [k for k, v in identifiers.items() if v == ident]
            if len(named) != 1:
                raise BadRequest(
                    "`subject.properties.identifiers` must name `subject.id` exactly once",
                    reason="subject.properties.identifiers does not name subject.id",
                )
            id_type = named[0].removesuffix("_code")
        if id_type is None:
            return None
        id_type = _text(id_type, "subject.properties.id_type").upper()
        if id_type not in self._claims:
            raise BadRequest(
                f"Unknown identifier type {id_type!r}: known are "
                + ", ".join(sorted(self._claims)),
                reason="unknown identifier type",
            )
        return id_type

    @staticmethod
    def operation_type(action: Mapping[str, Any]) -> str:
        name = _text(action.get("name"), "action.name")
        kind = ACTIONS.get(name.lower())
        if kind is None:
            raise BadRequest(
                f"Unknown `action.name` {name!r}: use QUERY or MUTATION (or read, write)",
                reason="unknown action",
            )
        return kind

    @staticmethod
    def check_matches(operation: OperationFacts, operation_type: str, name: str) -> None:
        """The action and ``context.operation`` must say what the GraphQL request does: an
        evaluation that contradicts itself is not answered."""
        if operation.operation_type != operation_type:
            raise BadRequest(
                f"`action.name` says {operation_type}, the GraphQL request is a "
                f"{operation.operation_type}",
                reason="action does not match the operation",
            )
        if operation.root_field != name:
            raise BadRequest(
                f"`context.operation` is {name!r}, the GraphQL request runs "
                f"{operation.root_field!r}",
                reason="context.operation does not match the operation",
            )

    async def batch(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """The Access Evaluations API: every item with the top-level defaults, answered in
        request order; a malformed item is denied with its error, the others still answer."""
        items = body.get("evaluations")
        if items is None:  # without `evaluations`, the single evaluation (AuthZEN 1.0)
            return (await self.answer(body)).json()
        if not isinstance(items, list):
            raise BadRequest("`evaluations` must be a list", reason="evaluations is not a list")
        if len(items) > MAX_EVALUATIONS:
            raise BadRequest(
                f"At most {MAX_EVALUATIONS} evaluations per request",
                reason="too many evaluations",
            )
        options = _object(body.get("options", {}), "options")
        semantic = options.get("evaluations_semantic", "execute_all")
        if semantic not in SEMANTICS:
            raise BadRequest(
                "`options.evaluations_semantic` must be one of " + ", ".join(SEMANTICS),
                reason="unknown evaluations_semantic",
            )
        defaults = {key: body[key] for key in TUPLE if key in body}
        answers: list[Answer] = []
        for i, item in enumerate(items):
            try:
                answer = await self.answer({**defaults, **_object(item, f"evaluations[{i}]")})
            except BadRequest as bad:
                answer = failed(400, bad.message, bad.reason, "authzen/BadRequest")
            answers.append(answer)
            if semantic == "deny_on_first_deny" and not answer.decision:
                break
            if semantic == "permit_on_first_permit" and answer.decision:
                break
        return {"evaluations": [answer.json() for answer in answers]}


def _error(refusal: Refusal, trace: TraceContext) -> web.Response:
    """A refused call to the endpoint itself (not a deny): ``{"error": {...}}``."""
    body = {
        "error": {
            "code": refusal.code,
            "message": refusal.message,
            "reason": refusal.reason,
            "decision_id": trace.decision_id,
        }
    }
    response = web.json_response(body, status=refusal.status, headers=trace.headers())
    challenge = refusal.www_authenticate()
    if challenge is not None:
        response.headers["WWW-Authenticate"] = challenge
    return response


def metadata(public_url: str) -> dict[str, str]:
    """The PDP metadata (AuthZEN 1.0 section "Policy Decision Point Metadata"): the
    identifier under both names the drafts used, and the two evaluation endpoints."""
    base = public_url.rstrip("/")
    return {
        "policy_decision_point": base,
        "issuer": base,
        "access_evaluation_endpoint": base + EVALUATION,
        "access_evaluations_endpoint": base + EVALUATIONS,
    }


def setup_authzen(
    app: web.Application,
    config: GatewayConfig,
    verifier: TokenVerifier,
    handlers: Mapping[str, object],
) -> None:
    """Add the AuthZEN endpoints to *app*, deciding through the routes' *handlers*' gates."""
    evaluator = Evaluator(handlers, config.tokens.claim_mapping)
    base = config.public_url.rstrip("/")
    limit = config.server.max_body_bytes
    described = metadata(config.public_url)

    async def read_request(request: web.Request, path: str) -> Mapping[str, Any]:
        """The caller's evaluation request, after its token: audience *path*, scope."""
        token = await authenticate(
            request.headers, verifier, audience=base + path, allow_plain_jwt=False
        )
        if SCOPE not in token.facts.scopes:
            raise ScopeMismatch(reason=f"scope {SCOPE} required", required=SCOPE)
        if request.content_type != "application/json":
            raise UnsupportedMediaType("Send the evaluation as application/json")
        return _object(load_json(await read_body(request, limit)), "request body")

    def endpoint(path: str, run: Any) -> Any:
        async def handle(request: web.Request) -> web.Response:
            trace = TraceContext.from_headers(request.headers)
            try:
                answer = await run(await read_request(request, path))
            except Refusal as refusal:
                return _error(refusal, trace)
            return web.json_response(answer, headers=trace.headers())

        return handle

    async def single(body: Mapping[str, Any]) -> dict[str, Any]:
        return (await evaluator.answer(body)).json()

    async def describe(request: web.Request) -> web.Response:
        return web.json_response(described)

    app.router.add_post(EVALUATION, counted(app, endpoint(EVALUATION, single)))
    app.router.add_post(EVALUATIONS, counted(app, endpoint(EVALUATIONS, evaluator.batch)))
    app.router.add_get(METADATA, counted(app, describe))
