"""Events the pipeline reports, and the observer interface that turns them into
logs, audit records and metrics. The pipeline never formats log lines itself."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

# Observability is a leaf (docs/architecture.md): it knows the facts and the decision it
# renders only by the shape it reads, below; gateway.facts.TokenFacts, OperationFacts and
# gateway.policy.decision.Decision have that shape.


class Caller(Protocol):
    """What the decision log reads of the token's facts (``TokenFacts``)."""

    @property
    def client_id(self) -> str | None: ...
    @property
    def subject(self) -> str | None: ...
    @property
    def instantie_type(self) -> str | None: ...
    @property
    def identifier_type(self) -> str | None: ...
    @property
    def identifier(self) -> str | None: ...
    @property
    def actor(self) -> str | None: ...


class Operation(Protocol):
    """What the decision log reads of the operation's facts (``OperationFacts``)."""

    @property
    def operation_type(self) -> str: ...
    @property
    def operation_name(self) -> str | None: ...
    @property
    def root_field(self) -> str: ...


class Verdict(Protocol):
    """What the decision log reads of the policy's decision (``Decision``)."""

    @property
    def rule(self) -> str | None: ...
    @property
    def location(self) -> str | None: ...
    @property
    def policy_version(self) -> str | None: ...


@dataclass(slots=True)
class DecisionEvent:
    """One PEP decision (NEN 7513: who did what with which record, when, outcome).

    The pipeline attaches what it learns as it goes (the frozen token and operation facts,
    the policy's decision) and copies nothing; :meth:`fields` flattens them once, when the
    event is rendered, into the decision log's keys.
    """

    decision_id: str
    route: str
    trace_id: str | None = None
    request_id: str | None = None
    outcome: str = "deny"
    """``allow``, ``deny`` or ``error`` (upstream failure after an allow, PDP failure)."""
    status: int = 0
    reason: str | None = None
    code: str | None = None
    token: Caller | None = None
    operation: Operation | None = None
    decision: Verdict | None = None
    audit: Mapping[str, Any] = field(default_factory=dict)
    """The audit values under the names the policies' ``audit:`` blocks chose: the deciding
    policy's, else every name of the route's policy set with no value (``null`` / ``[]``)."""
    upstream_ms: float | None = None
    policy_ms: float | None = None
    total_ms: float = 0.0
    upstream_error: str | None = None
    """``refused``, ``reset``, ``timeout`` when the upstream failed."""

    @property
    def rule(self) -> str | None:
        """The deciding rule (None before the policy decided)."""
        return self.decision.rule if self.decision is not None else None

    def fields(self) -> dict[str, Any]:
        """The decision log's keys, in its order: who (token), what (operation), the audit
        values, then timings and ids. Absent facts are ``None``."""
        t, o, d = self.token, self.operation, self.decision
        # One dict display (the audit values spliced in): per request, on the log's path.
        return {
            "decision_id": self.decision_id,
            "outcome": self.outcome,
            "status": self.status,
            "route": self.route,
            "reason": self.reason,
            "code": self.code,
            "rule": d.rule if d else None,
            "location": d.location if d else None,
            "client_id": t.client_id if t else None,
            "sub": t.subject if t else None,
            "instantie_type": t.instantie_type if t else None,
            "identifier_type": t.identifier_type if t else None,
            "identifier": t.identifier if t else None,
            "actor": t.actor if t else None,
            "operation_type": o.operation_type if o else None,
            "operation_name": o.operation_name if o else None,
            "root_field": o.root_field if o else None,
            **self.audit,
            "upstream_ms": self.upstream_ms,
            "policy_ms": self.policy_ms,
            "total_ms": self.total_ms,
            "trace_id": self.trace_id,
            "request_id": self.request_id,
            "policy_version": d.policy_version if d else None,
            "upstream_error": self.upstream_error,
        }


DECISION_LOG_KEYS = frozenset(DecisionEvent("", "").fields())
"""The keys the decision log writes itself: no audit name may be one of them."""


@dataclass
class TokenEvent:
    """One token request at the authorization server (never the token or a secret).

    No ``__slots__`` on purpose: orjson renders a dataclass from its ``__dict__`` three
    times faster than from slots.
    """

    outcome: str
    """``issued`` or the OAuth2 error code (``invalid_client``, ``invalid_scope``, ...)."""
    client_id: str | None
    auth_method: str | None = None
    scopes: tuple[str, ...] = ()
    audience: str | None = None
    jti: str | None = None
    actor: str | None = None
    error_description: str | None = None
    duration_ms: float = 0.0
    blocked_by: str | None = None
    """``client`` or ``address``: the brute-force limit that refused the request (``429``)."""


class Observer(Protocol):
    """Implemented by :mod:`gateway.observability`; a no-op is used when none is set."""

    def decision(self, event: DecisionEvent) -> None: ...
    def token(self, event: TokenEvent) -> None: ...
    def shadow_mismatch(self, route: str, active: str, shadow: str, rule: str | None) -> None: ...
    def parse_cache(self, hit: bool) -> None: ...
    def jwks_refresh(self, issuer: str, outcome: str, cause: str | None = None) -> None: ...
    def policy_reload(self, outcome: str, version: str | None) -> None: ...
    def adresboek_reload(self, outcome: str) -> None: ...
    def upstream_error(self, route: str, kind: str) -> None: ...


class NullObserver:
    """Observer that records nothing (unit tests of single modules, offline CLI)."""

    def decision(self, event: DecisionEvent) -> None:
        pass

    def token(self, event: TokenEvent) -> None:
        pass

    def shadow_mismatch(self, route: str, active: str, shadow: str, rule: str | None) -> None:
        pass

    def parse_cache(self, hit: bool) -> None:
        pass

    def jwks_refresh(self, issuer: str, outcome: str, cause: str | None = None) -> None:
        pass

    def policy_reload(self, outcome: str, version: str | None) -> None:
        pass

    def adresboek_reload(self, outcome: str) -> None:
        pass

    def upstream_error(self, route: str, kind: str) -> None:
        pass
