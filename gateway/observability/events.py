"""Events the pipeline reports, and the observer interface that turns them into
logs, audit records and metrics. The pipeline never formats log lines itself."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass
class DecisionEvent:
    """One PEP decision (NEN 7513: who did what with which record, when, outcome).

    No ``__slots__`` on purpose: orjson renders a dataclass from its ``__dict__`` three
    times faster than from slots, and the decision log renders one per request.
    """

    decision_id: str
    outcome: str
    """``allow``, ``deny`` or ``error`` (upstream failure after an allow, PDP failure)."""
    status: int
    route: str
    reason: str | None = None
    code: str | None = None
    rule: str | None = None
    location: str | None = None
    client_id: str | None = None
    sub: str | None = None
    instantie_type: str | None = None
    identifier_type: str | None = None
    identifier: str | None = None
    actor: str | None = None
    operation_type: str | None = None
    operation_name: str | None = None
    root_field: str | None = None
    event_type: str | None = None
    afzender: str | None = None
    """``<IDType>:<ID>`` from the body."""
    ontvanger: str | None = None
    subjects: tuple[str, ...] = ()
    records: tuple[str, ...] = ()
    upstream_ms: float | None = None
    policy_ms: float | None = None
    total_ms: float = 0.0
    trace_id: str | None = None
    request_id: str | None = None
    policy_version: str | None = None
    upstream_error: str | None = None
    """``refused``, ``reset``, ``timeout`` when the upstream failed."""


@dataclass
class TokenEvent:
    """One token request at the authorization server (never the token or a secret).

    No ``__slots__``, like :class:`DecisionEvent` (rendered by orjson from ``__dict__``).
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

    def upstream_error(self, route: str, kind: str) -> None:
        pass
