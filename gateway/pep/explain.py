"""``policy explain``: the running gateway's answer for a token payload and a request body,
offline, with the trace of what decided it.

The request goes through the route's own gates (:class:`~gateway.pep.gates.RouteGates`, the
ones the PEP pipeline runs) in the PEP's order: the token's audience is the route, then the
GraphQL analysis (one operation, one root field, limits, the route's schema), the route's
scope gate, then the policy with the route's facts. Only what needs the signed token is left
out: signature, trusted issuer, ``typ`` and expiry.

The route comes from the gateway configuration (``--config``: deelnemer, audience, scopes,
schema, claim mapping, policies, environment) or, without one, from the route options. When
the decision needs something about the route that was not given, the tool refuses to guess
(:class:`~gateway.policy.tooling.ToolError`, naming what to pass).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jwt

from gateway.adresboek import AdresboekError, AdresboekSource
from gateway.config.errors import ConfigError
from gateway.config.loader import load_config
from gateway.config.model import (
    NOTIFICATIES_PATH,
    ClaimMapping,
    GatewayConfig,
    GraphQLLimits,
    RouteConfig,
    default_claim_mapping,
)
from gateway.facts import DecisionInput, OperationFacts, TokenFacts
from gateway.graphql.analyser import Analyser
from gateway.graphql.schema import BUNDLED_SCHEMA, load_schema, route_schema
from gateway.pep.authenticate import check_audience
from gateway.pep.central import central_route, not_valid, recipient_gates
from gateway.pep.decide import decide
from gateway.pep.gates import RouteGates, route_facts
from gateway.pep.rest import RestGates
from gateway.policy.decision import Decision, TraceStep
from gateway.policy.engine import PolicySet
from gateway.policy.errors import PolicyLoadError
from gateway.policy.loader import load_policy_set
from gateway.policy.tooling import ToolError, described_route_facts, wanted_extra
from gateway.refusals import Refusal, ScopeMismatch, Unauthenticated
from gateway.rest.analyser import RestAnalyser, load_openapi, offline_request
from gateway.rest.paths import PathTemplates
from gateway.tokens.claims import map_claims

JSON_BODY = "application/json"
"""The request file is a GraphQL-over-HTTP JSON body; the PEP reads it with this type."""


@dataclass(frozen=True, slots=True)
class ExplainRoute:
    """The route a request is explained for, and what is known about it."""

    gates: RouteGates
    policy_set: PolicySet
    mapping: ClaimMapping
    path: str | None
    """None: no route was named."""
    audience: str | None
    """None: not known (no ``--config`` and ``--route`` was a path, not a URL)."""
    scopes_known: bool
    """The route's scopes came from ``--config`` or ``--scope``."""
    central: CentralExplain | None = None
    """The central notification route: the gates are the body's recipient's."""


@dataclass(frozen=True, slots=True)
class CentralExplain:
    """How the central route finds a notification's recipient (as the running gateway)."""

    gates_for: Callable[[OperationFacts], RouteGates]
    """The recipient's gates (:func:`gateway.pep.central.recipient_gates`)."""
    adresboek: AdresboekSource


def _unsigned_payload(token: str) -> Mapping[str, Any]:
    """A nested (aggregated-claim) JWT's payload, its signature not checked (offline)."""
    payload: Mapping[str, Any] = jwt.decode(token, options={"verify_signature": False})
    return payload


def captured_token_payload(token: str) -> dict[str, Any]:
    """The payload of a captured access token (``--token``), decoded without checking its
    signature, issuer or expiry: explain decides offline, as if the token were valid."""
    token = token.removeprefix("Bearer ").strip()
    try:
        payload = jwt.decode(token, options={"verify_signature": False, "verify_exp": False})
    except jwt.PyJWTError as exc:
        raise ToolError(f"--token is not a JWT: {exc}") from None
    if not isinstance(payload, dict):
        raise ToolError("--token: the payload is not a JSON object")
    return payload


def token_facts(claims: Mapping[str, Any], mapping: ClaimMapping) -> TokenFacts:
    """The claims mapped as the PEP maps a verified token (aggregated claims included)."""
    try:
        return map_claims(claims, mapping, nested=_unsigned_payload)
    except jwt.PyJWTError:
        raise Unauthenticated(
            "Aggregated claim rejected: nested JWT is malformed", reason="bad_aggregated_claim"
        ) from None


def _gate_refusal(
    refusal: Refusal, gate: str, version: str, head: tuple[TraceStep, ...]
) -> Decision:
    """The decision for a request a gate refused before (or instead of) the policy."""
    rule = f"{gate}/{type(refusal).__name__}"
    detail = (
        refusal.message
        if refusal.reason == refusal.message
        else (f"{refusal.message} ({refusal.reason})")
    )
    return Decision(
        allow=False,
        status=refusal.status,
        code=refusal.code,
        reason=refusal.reason,
        message=refusal.message,
        rule=rule,
        trace=(*head, TraceStep(rule, "", "failed", detail)),
        policy_version=version,
    )


def explain(
    route: ExplainRoute,
    claims: Mapping[str, Any],
    body: bytes,
    extra: Mapping[str, Any] | None = None,
) -> Decision:
    """The PEP's decision on *claims* (a token payload) and *body* (the request JSON) at
    *route*, with the trace of every gate and rule; :class:`ToolError` when it needs to know
    more about the route than was given. *extra* are the looked-up facts the policy
    information point would give (``{lookup name: facts}``); the trace shows, per lookup
    the request wants, the facts used."""
    version = route.policy_set.version
    head: tuple[TraceStep, ...] = ()
    gate = "token"
    try:
        if route.audience is not None:
            check_audience(claims, route.audience)
            head += (TraceStep("token/audience", "", "passed", f"aud names {route.audience}"),)
        elif route.path is not None:
            _check_audience_path(claims, route.path)
            head += (
                TraceStep(
                    "token/audience",
                    "",
                    "passed",
                    f"aud names a URL with path {route.path} (its origin is the "
                    "gateway's public_url: pass --config FILE to check it too)",
                ),
            )
        elif "aud" in claims:
            raise ToolError(_missing_audience(route))
        token = token_facts(claims, route.mapping)
        gate = "graphql"
        operation = route.gates.operation(body, JSON_BODY)
        gates = route.gates
        if route.central is not None:
            gate = "central"
            gates = route.central.gates_for(operation)
            head += (_recipient_step(gates),)
        looked_up, steps = _lookups(route.policy_set, gates, token, operation, extra or {})
        head += steps
        gate = "scope"
        field = operation.root_field
        if route.scopes_known:
            required = gates.required_scopes.get(field, gates.scope_default)
            decision = gates.decide(token, operation, looked_up, explain=True)
            head += (TraceStep("scope", "", "passed", f"token holds {required}"),)
        else:
            # The scopes a route requires are gateway configuration, not policy: without
            # it, say plainly that this gate was not evaluated instead of guessing.
            gate = "policy"
            decision = decide(
                gates.policy,
                DecisionInput(token, operation, gates.facts, looked_up),
                explain=True,
            )
            head += (
                TraceStep(
                    "scope",
                    "",
                    "skipped",
                    f"the route's scope for {field} is configuration: pass "
                    f"--config FILE or --scope {field}=SCOPE to check it",
                ),
            )
        if route.central is not None and decision.allow:
            gate = "central"
            head += decision.trace
            decision = dataclasses.replace(
                decision, trace=(_endpoint_step(route.central, gates, operation),)
            )
    except Refusal as refusal:
        if gate == "scope" and not isinstance(refusal, ScopeMismatch):
            gate = "policy"  # the PDP itself failed (PolicyError)
        return _gate_refusal(refusal, gate, version, head)
    return dataclasses.replace(decision, trace=(*head, *decision.trace))


def _recipient_step(gates: RouteGates) -> TraceStep:
    facts = gates.facts
    return TraceStep(
        "central/recipient",
        "",
        "passed",
        f"the body's recipient {facts.deelnemer_id_type} {facts.deelnemer_id} "
        f"({facts.deelnemer_kind}) decides as the route's deelnemer",
    )


def _endpoint_step(
    central: CentralExplain, gates: RouteGates, operation: OperationFacts
) -> TraceStep:
    """Where the running gateway would forward an allowed notification (else 400)."""
    facts = gates.facts
    found = central.adresboek.resolve(facts.deelnemer_id_type, facts.deelnemer_id)
    if found is None:
        raise not_valid(operation)
    return TraceStep("central/adresboek", "", "passed", f"forwarded to {found.endpoint}")


def _lookups(
    policy_set: PolicySet,
    gates: RouteGates,
    token: TokenFacts,
    operation: OperationFacts,
    extra: Mapping[str, Any],
) -> tuple[Mapping[str, Any], tuple[TraceStep, ...]]:
    """The facts of the lookups this request wants, from *extra*, and a trace step each."""
    facts = DecisionInput(token, operation, gates.facts)
    used = wanted_extra(policy_set, facts, extra)
    policy = policy_set.policy_for(operation.operation_type, operation.root_field)
    steps = []
    for lookup in policy.lookups if policy is not None else ():
        rule = f"lookup/{lookup.name}"
        if not lookup.wanted(facts):
            steps.append(TraceStep(rule, lookup.location, "skipped", "not wanted by this request"))
        elif lookup.name in used:
            shown = json.dumps(used[lookup.name], ensure_ascii=False, sort_keys=True)
            steps.append(
                TraceStep(rule, lookup.location, "given", f"extra.{lookup.name} = {shown}")
            )
        else:
            steps.append(
                TraceStep(
                    rule,
                    lookup.location,
                    "missing",
                    f"{lookup.route} would be asked; without --extra facts for "
                    f"{lookup.name!r} the checks that need extra.{lookup.name} refuse",
                )
            )
    return used, tuple(steps)


def _check_audience_path(claims: Mapping[str, Any], path: str) -> None:
    """Without the configuration the route's audience is known only by its path: refuse a
    token whose ``aud`` names no URL with that path, with the PEP's answers."""
    aud = claims.get("aud")
    if aud is None:
        check_audience(claims, "")  # the PEP's answer for a missing aud
    items = [aud] if isinstance(aud, str) else aud
    if not isinstance(items, list) or not all(isinstance(item, str) for item in items):
        check_audience(claims, "")  # the PEP's answer for a malformed aud
    assert isinstance(items, list)
    if not any(urlsplit(item).path == path for item in items):
        raise Unauthenticated("Token audience does not match this route", reason="wrong_audience")


def _missing_audience(route: ExplainRoute) -> str:
    if route.path is None:
        return "the token's aud is checked against the route: pass --route PATH with --config FILE"
    return (
        f"the audience of route {route.path} is not known: pass --config FILE, or --route "
        "as the route's URL (its audience)"
    )


# ------------------------------------------------------------------------ building the route
def parse_scopes(items: Sequence[str]) -> dict[str, str]:
    """``--scope FIELD=SCOPE`` options as a root field -> scope mapping."""
    scopes: dict[str, str] = {}
    for item in items:
        field, sep, scope = item.partition("=")
        if not sep or not field or not scope or any(ch.isspace() for ch in scope):
            raise ToolError(
                f"--scope {item!r}: expected FIELD=SCOPE, e.g. "
                "zendNotificatie=organisaties/zorgkantoor/notificaties/"
                "notificatie:create"
            )
        scopes[field] = scope
    return scopes


def _load_set(paths: Sequence[Path], environment: str | None) -> PolicySet:
    try:
        return load_policy_set(list(paths), environment=environment)
    except PolicyLoadError as exc:
        raise ToolError("policies do not load:\n" + "\n".join(exc.errors)) from None


def _configured_route(config: GatewayConfig, name: Path, route: str | None) -> RouteConfig:
    paths = ", ".join(r.path for r in config.routes)
    if route is None:
        if len(config.routes) == 1:
            return config.routes[0]
        raise ToolError(
            f"{name} has {len(config.routes)} routes: pass --route PATH (one of {paths})"
        )
    for candidate in config.routes:
        if route in (candidate.path, candidate.audience):
            return candidate
    raise ToolError(f"route {route!r} is not in {name} (routes: {paths})")


def configured_route(
    config_file: Path, route: str | None, policies: Sequence[Path], environment: str | None
) -> ExplainRoute:
    """A route of the gateway configuration, with everything the PEP decides it with.

    *policies* (``--policy``) replace the route's own; *environment* the configured one.
    """
    try:
        config = load_config(config_file)
    except ConfigError as exc:
        raise ToolError(str(exc)) from None
    central = config.notificaties
    if central is not None and route in (NOTIFICATIES_PATH, central.audience):
        return _central_route(config, policies, environment)
    chosen = _configured_route(config, config_file, route)
    policy_set = _load_set(
        policies or chosen.policies,
        environment if environment is not None else config.policy.environment,
    )
    analyser = Analyser(config.graphql.limits, cache_size=0, schema=route_schema(chosen))
    return ExplainRoute(
        gates=RouteGates.for_route(chosen, analyser, policy_set),
        policy_set=policy_set,
        mapping=config.tokens.claim_mapping,
        path=chosen.path,
        audience=chosen.audience,
        scopes_known=True,
    )


def _central_route(
    config: GatewayConfig, policies: Sequence[Path], environment: str | None
) -> ExplainRoute:
    """The central notification route: its analyser and policies, and per request the
    body's recipient as the deelnemer (``notificaties.recipient``, the adresboek's kinds)."""
    assert config.notificaties is not None and config.adresboek is not None  # the loader's rule
    chosen = central_route(config.notificaties)
    policy_set = _load_set(
        policies or chosen.policies,
        environment if environment is not None else config.policy.environment,
    )
    try:
        adresboek = AdresboekSource(config.adresboek)
    except AdresboekError as exc:
        raise ToolError(str(exc)) from None
    analyser = Analyser(config.graphql.limits, cache_size=0, schema=route_schema(chosen))
    gates = RouteGates.for_route(chosen, analyser, policy_set)
    notificaties = config.notificaties
    return ExplainRoute(
        gates=gates,
        policy_set=policy_set,
        mapping=config.tokens.claim_mapping,
        path=chosen.path,
        audience=chosen.audience,
        scopes_known=True,
        central=CentralExplain(
            gates_for=lambda op: recipient_gates(notificaties, adresboek.kind, gates, op),
            adresboek=adresboek,
        ),
    )


def option_route(
    route: str | None,
    policies: Sequence[Path],
    environment: str | None,
    *,
    scopes: Mapping[str, str] | None,
    strict_input: bool,
    schema: Path | None = None,
) -> ExplainRoute:
    """A route described by options alone: ``--route`` as a path (deelnemer only) or as the
    route's URL (deelnemer and audience), ``--scope`` for its scope gate; the default claim
    mapping and GraphQL limits, and the bundled network schema (the gateway's defaults)."""
    if route is not None and urlsplit(route).path == NOTIFICATIES_PATH:
        raise ToolError(
            f"the central route {NOTIFICATIES_PATH} decides for the body's recipient: pass "
            "--config FILE (its notificaties: and adresboek:)"
        )
    if not policies:
        raise ToolError("pass --policy PATH (or --config FILE to use the route's policies)")
    policy_set = _load_set(policies, environment)
    audience: str | None = None
    path = route
    if route is not None and urlsplit(route).scheme in ("http", "https"):
        audience, path = route, urlsplit(route).path
    facts = described_route_facts(policy_set, path, strict_input=strict_input)
    if audience is not None:
        facts = dataclasses.replace(facts, audience=audience)
    # The gateway's default: the bundled network schema (a register route names its own).
    if schema is not None and not schema.is_file():
        raise ToolError(f"{schema}: no such schema file")
    analyser = Analyser(GraphQLLimits(), cache_size=0, schema=load_schema(schema or BUNDLED_SCHEMA))
    gates = RouteGates(facts, analyser, policy_set, scopes or {})
    return ExplainRoute(
        gates=gates,
        policy_set=policy_set,
        mapping=default_claim_mapping(),
        path=path,
        audience=audience,
        scopes_known=scopes is not None,
    )


# ------------------------------------------------------------------------ REST requests
def explain_rest(
    request: Mapping[str, Any],
    claims: Mapping[str, Any],
    *,
    config_file: Path | None,
    route: str | None,
    policies: Sequence[Path],
    environment: str | None,
) -> tuple[Decision, PolicySet, str | None]:
    """``policy explain`` for a REST request description (``method``, ``path`` with its
    query, ``headers``, ``body``; ``extra``: what the route's lookups would answer).

    With ``--config`` the route's own gates decide (audience, its OpenAPI document, the
    method's scope, its policies); without, the policies alone, with the REST templates of
    the set and the route's facts from ``--route`` (a prefix such as ``/ketenindex``)."""
    extra = request.get("extra") or {}
    if not isinstance(extra, Mapping):
        raise ToolError("the request's extra must be an object (the lookups' answers)")
    if config_file is None:
        if not policies:
            raise ToolError("pass --policy PATH (or --config FILE to use the route's policies)")
        policy_set = _load_set(policies, environment)
        facts = described_route_facts(policy_set, route, rest=True)
        mapping = default_claim_mapping()
        try:
            operation = offline_request(request, PathTemplates(policy_set.rest_templates))
            decision = decide(
                policy_set,
                DecisionInput(token_facts(claims, mapping), operation, facts, extra),
                explain=True,
            )
        except Refusal as refusal:
            return _gate_refusal(refusal, "rest", policy_set.version, ()), policy_set, route
        skipped = TraceStep("scope", "", "skipped", "the route's scopes are configuration")
        return dataclasses.replace(decision, trace=(skipped, *decision.trace)), policy_set, route
    try:
        config = load_config(config_file)
    except ConfigError as exc:
        raise ToolError(str(exc)) from None
    chosen = _configured_route(config, config_file, route)
    if chosen.rest is None:
        raise ToolError(f"route {chosen.path} is a GraphQL route: pass a GraphQL request")
    policy_set = _load_set(
        policies or chosen.policies,
        environment if environment is not None else config.policy.environment,
    )
    gates = RestGates(
        route_facts(chosen),
        RestAnalyser(load_openapi(chosen), lambda: PathTemplates(policy_set.rest_templates)),
        policy_set,
        chosen.rest.read_scope,
        chosen.rest.write_scope,
    )
    head: tuple[TraceStep, ...] = ()
    gate = "token"
    try:
        check_audience(claims, chosen.audience)
        head += (TraceStep("token/audience", "", "passed", f"aud names {chosen.audience}"),)
        token = token_facts(claims, config.tokens.claim_mapping)
        gate = "rest"
        templates = PathTemplates(policy_set.rest_templates)
        operation = offline_request(request, templates, gates.analyser.document)
        gate = "scope"
        gates.check_scope(token, operation)
        required = gates.required_scope(operation.operation_type)
        head += (TraceStep("scope", "", "passed", f"token holds {required}"),)
        gate = "policy"
        decision = gates.decide(token, operation, extra, explain=True)
    except Refusal as refusal:
        return _gate_refusal(refusal, gate, policy_set.version, head), policy_set, chosen.path
    return dataclasses.replace(decision, trace=(*head, *decision.trace)), policy_set, chosen.path
