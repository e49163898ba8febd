"""The facts a decision is made on: what the token says, what the request asks, where it goes.

These are the narrow interface between the pipeline steps:
``authenticate`` produces :class:`TokenFacts`, ``analyse`` produces
:class:`OperationFacts`, the route configuration gives :class:`RouteFacts`, and the
policy engine decides on a :class:`DecisionInput`. All are immutable and built once per
request; the engine never looks at raw YAML, HTTP or JWT again.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class TokenFacts:
    """What a verified access token says about the caller, after the claim mapping."""

    claims: Mapping[str, Any]
    """The verified token payload (what the `claims` header carries upstream)."""
    client_id: str | None
    subject: str | None
    instantie_type: str | None
    identifier_type: str | None
    """The caller's identifier type, e.g. ``UZOVI``, ``AGB``, ``KVK`` (from the claim mapping)."""
    identifier: str | None
    """The caller's identifier value, e.g. ``5151``."""
    scopes: frozenset[str] = frozenset()
    actor: str | None = None
    """``act.sub`` when a party acts on behalf of another, e.g. ``uzovi:5151``."""
    issuer: str | None = None


@dataclass(frozen=True, slots=True)
class RestFacts:
    """What a REST request asks, as the policy sees it (``request.*`` facts).

    ``template`` is the path template the request matched (``/voorzitter/uitkomsten/{id}``),
    ``params`` its named parameters (percent-decoded), ``query`` the query parameters (each
    sent once: a repeated one is refused before any policy), ``headers`` the request headers
    by lower-case name (``authorization`` and ``cookie`` left out), ``body`` the parsed JSON
    body (None without one).
    """

    method: str
    path: str
    template: str
    params: Mapping[str, str] = field(default_factory=dict)
    query: Mapping[str, str] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)
    body: Any = None


@dataclass(frozen=True, slots=True)
class OperationFacts:
    """What a GraphQL request will execute, with everything resolved.

    ``arguments`` are the root field's arguments with variables substituted and
    defaults applied: nested input objects are dicts, lists are lists, enum values
    are their names (strings). ``selected_paths`` are the dotted paths of the fields
    selected below the root field (after fragments and ``@skip``/``@include``), e.g.
    ``("notificatieID",)`` or ``("client", "client.bsn")``.
    """

    operation_type: str
    """``query``, ``mutation`` or ``subscription``."""
    operation_name: str | None
    root_field: str
    """The root field's real name (aliases resolved)."""
    arguments: Mapping[str, Any]
    selected_paths: tuple[str, ...] = ()
    root_alias: str | None = None
    arguments_at: Mapping[str, list[Mapping[str, Any]]] = field(default_factory=dict)
    """The arguments of the fields selected below the root field, by field path
    (``bemiddeling.client.contactpersoon``): one argument set per selection of the field
    (aliases and fragments each count), resolved as ``arguments``. Lists the fields that
    take arguments (without a schema: the paths sent with arguments at least once)."""
    rest: RestFacts | None = None
    """A REST request: ``operation_type`` is then its method and ``root_field`` its path
    template, so one selector index serves both kinds."""
    variables: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)
    """The coerced variables ``arguments`` were built from (set with ``plan``)."""
    plan: Any = field(default=None, compare=False, repr=False)
    """The query plan (:class:`gateway.graphql.plan.OperationPlan`) that built these facts
    from ``variables``, when every argument came from its compiled templates (None: built
    otherwise). The policy engine keeps its partial evaluation per plan
    (:mod:`gateway.policy.partial`): everything but the variables' values is the plan's."""

    @property
    def display_name(self) -> str:
        """The name used in messages: the operation name, else the root field's name."""
        return self.operation_name or self.root_field

    def argument(self, path: str) -> Any:
        """The value at a dotted argument path (``notificatieInput.afzenderID``), or None."""
        value: Any = self.arguments
        for part in path.split("."):
            if not isinstance(value, Mapping):
                return None
            value = value.get(part)
        return value


class Var:
    """Where a variable's value goes in a plan's symbolic arguments
    (:meth:`gateway.graphql.plan.OperationPlan.symbolic`): ``$name`` itself, not a value."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return "$" + self.name


@dataclass(frozen=True, slots=True)
class RouteFacts:
    """The route a request was sent to, and the deelnemer behind it."""

    path: str
    audience: str
    deelnemer_id_type: str
    """e.g. ``UZOVI``."""
    deelnemer_id: str
    """e.g. ``5151``."""
    deelnemer_kind: str
    """The scope word for this deelnemer: ``zorgkantoor``, ``zorgaanbieder``, ``onderneming``."""
    name: str = ""
    strict_input: bool = False
    """Check ``timestamp``/``subjectList``/``ontvangerKenmerk`` strictly (route option)."""


@dataclass(frozen=True, slots=True)
class DecisionInput:
    """Everything the PDP may look at for one request."""

    token: TokenFacts
    operation: OperationFacts
    route: RouteFacts
    extra: Mapping[str, Any] = field(default_factory=dict)
