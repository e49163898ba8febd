"""The route's gates ask the policy store with the same input a plain ``DecisionInput``
makes (built slot by slot on the hot path), and a PDP that raises fails closed."""

from __future__ import annotations

import json
from typing import Any

import pytest

from gateway.config.model import GraphQLLimits, default_claim_mapping
from gateway.facts import DecisionInput, RouteFacts
from gateway.graphql import GraphQLRequest
from gateway.graphql.analyser import Analyser
from gateway.graphql.schema import BUNDLED_SCHEMA, load_schema
from gateway.pep.gates import RouteGates
from gateway.policy import Decision, PolicyStore
from gateway.policy.decision import AuditValues
from gateway.refusals import PolicyError
from gateway.tokens.claims import map_claims
from tests.fixtures.policy import IWLZ, REPO

FIXTURES = REPO / "tests" / "graphql" / "fixtures"
ROUTE = RouteFacts("/deelnemers/uzovi/5151/graphql", "a", "UZOVI", "5151", "zorgkantoor")
SCOPE = "organisaties/zorgkantoor/notificaties/notificatie:create"
SCOPES = {"zendNotificatie": SCOPE}
ANALYSER = Analyser(GraphQLLimits(), schema=load_schema(BUNDLED_SCHEMA))


def _operation(**changed: str) -> Any:
    variables = {**json.loads((FIXTURES / "seed_003_variables.json").read_text()), **changed}
    query = (FIXTURES / "seed_003_example.graphql").read_text()
    return ANALYSER.analyse(GraphQLRequest(query, variables, "zendNotificatie"))


TOKEN = map_claims(
    {"instantie_type": "Onderneming", "kvk": "62253778", "scope": SCOPE}, default_claim_mapping()
)


@pytest.mark.parametrize("changed", [{}, {"afzenderID": "1"}, {"eventType": "ONBEKEND"}])
def test_the_gates_decide_as_the_store_on_a_plain_input(changed: dict[str, str]) -> None:
    store = PolicyStore([IWLZ])
    gates = RouteGates(ROUTE, ANALYSER, store, SCOPES)
    operation = _operation(**changed)
    for _ in range(2):  # the second time on what the first built
        decided = gates.decide(TOKEN, operation)
        assert decided == store.decide(DecisionInput(TOKEN, operation, ROUTE, {}))
        assert decided.audit == store.decide(DecisionInput(TOKEN, operation, ROUTE)).audit
    explained = gates.decide(TOKEN, operation, explain=True)
    assert (explained.allow, explained.rule, explained.reason) == (
        decided.allow,
        decided.rule,
        decided.reason,
    )


class _Failing:
    def __init__(self) -> None:
        self.audit_blank: AuditValues = {}
        self.seen: list[DecisionInput] = []

    def decide(self, facts: DecisionInput, *, explain: bool = False) -> Decision:
        self.seen.append(facts)
        raise ZeroDivisionError


def test_a_pdp_that_raises_fails_closed_with_the_input_it_was_given() -> None:
    pdp = _Failing()
    gates = RouteGates(ROUTE, ANALYSER, pdp, SCOPES)
    operation = _operation()
    for explain in (False, True):
        with pytest.raises(PolicyError) as caught:
            gates.decide(TOKEN, operation, {"abonnement": {"active": True}}, explain=explain)
        assert caught.value.reason == "policy evaluation failed: ZeroDivisionError"
    plain, explained = pdp.seen
    assert (
        plain
        == explained
        == DecisionInput(TOKEN, operation, ROUTE, {"abonnement": {"active": True}})
    )
