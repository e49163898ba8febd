"""What the policy decision point answers."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import Any, Protocol

from gateway.facts import DecisionInput


@dataclass(frozen=True, slots=True)
class TraceStep:
    """One rule visited while deciding (for ``policy explain``)."""

    rule: str
    location: str
    """``file:line`` of the rule."""
    outcome: str
    """``matched``, ``passed``, ``failed``, ``skipped``."""
    detail: str = ""


AuditValue = str | tuple[str, ...] | None
"""One audit value: a text (``None`` when missing) or a list of texts."""
AuditValues = Mapping[str, AuditValue]
"""The audit values of one request under the names a policy's ``audit:`` block chose."""


@dataclass(frozen=True, slots=True)
class Decision:
    allow: bool
    status: int
    """200 when allowed, else the refusal's HTTP status."""
    code: str | None = None
    """GraphQL ``extensions.code`` of a refusal, e.g. ``GRAPHQL_VALIDATION_FAILED``."""
    reason: str | None = None
    """The rule's reason text, e.g. ``afzender_id is not valid``."""
    message: str | None = None
    """What the caller reads: ``"<OperationName> <mutation|query>: <reason>"``."""
    rule: str | None = None
    """Id of the deciding rule."""
    location: str | None = None
    """``file:line`` of the deciding rule."""
    trace: tuple[TraceStep, ...] = ()
    policy_version: str | None = None
    """Content hash of the policy set that decided."""
    audit: AuditValues | None = None
    """The audit values of the request under every audit name of the policy set, extracted by
    the policy that applies (None when no policy applies or it has no ``audit:`` block)."""


def _slot_setters() -> tuple[Callable[[Decision, Any], None], ...]:
    names = tuple(f.name for f in fields(Decision))
    if names != _DECISION_FIELDS:
        # with_audit below sets each slot by name: a new field must be added there too.
        raise RuntimeError(f"Decision fields changed to {names}: update with_audit")
    return tuple(getattr(Decision, name).__set__ for name in names)


_DECISION_FIELDS = (
    "allow",
    "status",
    "code",
    "reason",
    "message",
    "rule",
    "location",
    "trace",
    "policy_version",
    "audit",
)
(
    _set_allow,
    _set_status,
    _set_code,
    _set_reason,
    _set_message,
    _set_rule,
    _set_location,
    _set_trace,
    _set_version,
    _set_audit,
) = _slot_setters()
_new = object.__new__


def with_audit(decision: Decision, audit: AuditValues | None) -> Decision:
    """A copy of *decision* (a shared allow or cached refusal) carrying *audit*.

    Runs once per decided request, so it fills the slots directly: three times cheaper than
    the frozen dataclass ``__init__`` (which goes through ``object.__setattr__`` per field).
    """
    d = decision
    c: Decision = _new(Decision)
    _set_allow(c, d.allow)
    _set_status(c, d.status)
    _set_code(c, d.code)
    _set_reason(c, d.reason)
    _set_message(c, d.message)
    _set_rule(c, d.rule)
    _set_location(c, d.location)
    _set_trace(c, d.trace)
    _set_version(c, d.policy_version)
    _set_audit(c, audit)
    return c


class DecisionPoint(Protocol):
    """The narrow interface the PEP calls."""

    def decide(self, facts: DecisionInput, *, explain: bool = False) -> Decision: ...

    @property
    def audit_blank(self) -> AuditValues:
        """Every audit name of the policy set, with no value: what a request records when
        no policy with an ``audit:`` block decided it."""
        ...
