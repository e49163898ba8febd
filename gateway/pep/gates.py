"""The gates of one route between a verified token and the upstream: analyse, scope, policy.

The PEP pipeline and ``nid-gateway policy explain`` both decide through
:class:`RouteGates`: the same analyser (one operation, one root field, limits, the route's
schema), the route's scope gate, then the policy with the route's facts, in that order. So
the offline answer is the running gateway's answer for the same token payload and body.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from gateway.config.model import RouteConfig
from gateway.facts import DecisionInput, OperationFacts, RouteFacts, TokenFacts
from gateway.graphql.analyser import Analyser
from gateway.pep.analyse import analyse
from gateway.pep.authenticate import check_scopes
from gateway.pep.decide import decide, policy_error
from gateway.pep.lookups import NO_FACTS
from gateway.policy.decision import Decision, DecisionPoint


def route_facts(route: RouteConfig) -> RouteFacts:
    """The decision facts of *route* (built once at setup)."""
    d = route.deelnemer
    return RouteFacts(
        path=route.path,
        audience=route.audience,
        deelnemer_id_type=d.id_type if d else "",
        deelnemer_id=d.id if d else "",
        deelnemer_kind=d.kind if d else "",
        name=d.name if d else "",
        strict_input=route.strict_input,
    )


@dataclass(frozen=True, slots=True)
class RouteGates:
    """What one route decides with besides the token: built once per route."""

    facts: RouteFacts
    analyser: Analyser
    policy: DecisionPoint
    required_scopes: Mapping[str, str]
    """Root field -> the scope the token must hold (``{kind}`` filled in)."""
    scope_default: str | None = None

    @classmethod
    def for_route(cls, route: RouteConfig, analyser: Analyser, policy: DecisionPoint) -> RouteGates:
        """The gates of a configured *route*, deciding with *analyser* and *policy*."""
        return cls(route_facts(route), analyser, policy, route.required_scopes, route.scope_default)

    def operation(self, body: bytes, content_type: str | None) -> OperationFacts:
        """What the request body will execute; the analyser's refusals (415, syntax, limits,
        no or several operations, several root fields, schema) are raised."""
        return analyse(body, content_type, self.analyser)

    def check_scopes(self, token: TokenFacts, operation: OperationFacts) -> None:
        """The scope gate alone (:class:`~gateway.refusals.ScopeMismatch`): run before any
        lookup, so a caller without the scope never costs a register or store round trip."""
        check_scopes(token, operation, self.required_scopes, self.scope_default)

    def decide(
        self,
        token: TokenFacts,
        operation: OperationFacts,
        extra: Mapping[str, Any] | None = None,
        *,
        explain: bool = False,
    ) -> Decision:
        """The scope gate (:class:`~gateway.refusals.ScopeMismatch`), then the policy's
        decision on the token, the operation, the route and the looked-up *extra* facts."""
        required = self.required_scopes.get(operation.root_field, self.scope_default)
        if required is None or required not in token.scopes:
            # check_scopes refuses with the texts it always gave (one place for them).
            check_scopes(token, operation, self.required_scopes, self.scope_default)
        if explain:
            given = DecisionInput(token, operation, self.facts, extra or {})
            return decide(self.policy, given, explain=True)
        # Per request: a twin of DecisionInput (same slots, plain attribute stores) filled
        # and turned into one (``__class__``, as decision.with_audit): the frozen dataclass
        # __init__ goes through object.__setattr__ per field. The PDP is asked in place
        # (decide's own frame spared); a PDP that raises fails closed as there.
        facts: Any = _new(_Input)
        facts.token = token
        facts.operation = operation
        facts.route = self.facts
        facts.extra = extra or NO_FACTS
        facts.__class__ = DecisionInput
        try:
            return self.policy.decide(facts)
        except Exception as exc:
            raise policy_error(exc) from exc


_INPUT_FIELDS = ("token", "operation", "route", "extra")


class _Input:
    """:class:`DecisionInput`'s layout without its frozen ``__setattr__``: filled per
    request, then made a DecisionInput (``__class__``)."""

    __slots__ = _INPUT_FIELDS


def _check_layout() -> None:
    names = tuple(f.name for f in fields(DecisionInput))
    if names != _INPUT_FIELDS or DecisionInput.__slots__ != _INPUT_FIELDS:
        # RouteGates.decide sets each slot by name: a new field must be set there too.
        raise RuntimeError(f"DecisionInput fields changed to {names}: update RouteGates.decide")


_check_layout()
_new = object.__new__
