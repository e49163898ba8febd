"""The policy decision point: YAML policies compiled at load into plain Python checks.

Public API::

    from gateway.policy import PolicyStore, PolicySet, PolicyLoadError, load_policy_set
"""

from gateway.policy.decision import Decision, DecisionPoint, TraceStep
from gateway.policy.engine import PolicySet
from gateway.policy.errors import LoadIssue, PolicyLoadError
from gateway.policy.loader import check_policy_set, load_policy_set
from gateway.policy.store import PolicyStore

__all__ = [
    "Decision",
    "DecisionPoint",
    "LoadIssue",
    "PolicyLoadError",
    "PolicySet",
    "PolicyStore",
    "TraceStep",
    "check_policy_set",
    "load_policy_set",
]
