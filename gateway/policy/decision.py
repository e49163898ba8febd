"""What the policy decision point answers."""

from __future__ import annotations

from collections.abc import Mapping
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


class _Filling:
    """A :class:`Decision` being filled: the same slots, plain attribute stores (one
    specialised instruction each, where the frozen class's goes through a descriptor call
    per slot); :func:`with_audit` then makes it a :class:`Decision` (same layout)."""

    __slots__ = _DECISION_FIELDS


def _check_layout() -> None:
    names = tuple(f.name for f in fields(Decision))
    if names != _DECISION_FIELDS or Decision.__slots__ != _DECISION_FIELDS:
        # with_audit below sets each slot by name: a new field must be added there too.
        raise RuntimeError(f"Decision fields changed to {names}: update with_audit")


_check_layout()
_new = object.__new__


def with_audit(decision: Decision, audit: AuditValues | None) -> Decision:
    """A copy of *decision* (a shared allow or cached refusal) carrying *audit*.

    Runs once per decided request, so it fills the slots of a :class:`_Filling` and turns
    that into a :class:`Decision` (``__class__``: the layouts are the same): about three
    times cheaper than a descriptor call per slot, which is itself three times cheaper than
    the frozen dataclass ``__init__`` (``object.__setattr__`` per field).
    """
    d = decision
    c: Any = _new(_Filling)
    c.allow = d.allow
    c.status = d.status
    c.code = d.code
    c.reason = d.reason
    c.message = d.message
    c.rule = d.rule
    c.location = d.location
    c.trace = d.trace
    c.policy_version = d.policy_version
    c.audit = audit
    c.__class__ = Decision
    made: Decision = c
    return made


class DecisionPoint(Protocol):
    """The narrow interface the PEP calls."""

    def decide(self, facts: DecisionInput, *, explain: bool = False) -> Decision: ...

    @property
    def audit_blank(self) -> AuditValues:
        """Every audit name of the policy set, with no value: what a request records when
        no policy with an ``audit:`` block decided it."""
        ...
