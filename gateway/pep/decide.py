"""Step 3, decide: ask the policy decision point, turn a "no" into a refusal.

The PDP answers with the status, GraphQL code and message of a refusal; the matching
:class:`Refusal` class carries them to the caller. A PDP that raises fails closed
(:class:`PolicyError`, never forwarded).
"""

from __future__ import annotations

from functools import cache

from gateway.facts import DecisionInput
from gateway.policy.decision import Decision, DecisionPoint
from gateway.refusals import (
    BadRequest,
    PolicyDenied,
    PolicyError,
    Refusal,
    ValidationFailed,
)

# The usual answers map onto the shared refusal classes; anything else a policy author
# configures gets a class made once for that (status, code).
_KNOWN: dict[tuple[int, str], type[Refusal]] = {
    (400, ValidationFailed.code): ValidationFailed,
    (403, PolicyDenied.code): PolicyDenied,
    (400, BadRequest.code): BadRequest,
}


@cache
def refusal_class(status: int, code: str) -> type[Refusal]:
    """The :class:`Refusal` subclass answering with *status* and *code*."""
    known = _KNOWN.get((status, code))
    if known is not None:
        return known
    return type(f"PolicyRefusal{status}", (Refusal,), {"status": status, "code": code})


def decide(policy: DecisionPoint, facts: DecisionInput, *, explain: bool = False) -> Decision:
    """The PDP's decision on *facts* (with its trace when *explain*); :class:`PolicyError`
    when the PDP itself fails."""
    try:
        return policy.decide(facts, explain=explain)
    except Exception as exc:
        raise policy_error(exc) from exc


def policy_error(exc: Exception) -> PolicyError:
    """The refusal of a PDP that raised *exc* (fail closed)."""
    return PolicyError(reason=f"policy evaluation failed: {type(exc).__name__}")


def refusal_for(decision: Decision) -> Refusal:
    """The refusal carrying a denying decision's status, code, message and reason."""
    status = decision.status if 400 <= decision.status <= 599 else 403
    cls = refusal_class(status, decision.code or PolicyDenied.code)
    return cls(decision.message or None, reason=decision.reason)
