"""What the policy decision point answers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

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


class DecisionPoint(Protocol):
    """The narrow interface the PEP calls."""

    def decide(self, facts: DecisionInput, *, explain: bool = False) -> Decision: ...
