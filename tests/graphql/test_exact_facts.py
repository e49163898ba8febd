"""A static operation's facts by its compiled coercers alone are the general path's facts.

``OperationPlan.facts`` takes a short path when the selection is the same for every request
and every argument coercer compiled: the variables by the compiled coercers, then the
arguments by the compiled ones, nothing else. Each request here (the fixtures' and the
published templates' variables, then generated changes to them: members dropped, nulled,
retyped, added, lists for single values and back) must give exactly what the general path
(``_collected_facts``) gives: the same facts, variables and plan, or the same refusal.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from graphql import GraphQLSchema
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.config.model import GraphQLLimits
from gateway.facts import OperationFacts
from gateway.graphql import Analyser, GraphQLRequest, load_schema
from gateway.graphql.plan import OperationPlan
from gateway.refusals import Refusal

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = Path(__file__).parent / "fixtures"
SCHEMAS = sorted((ROOT / "config" / "schemas").glob("*.graphql"))
TEMPLATES = sorted((ROOT / "policies" / "iwlz" / "raadplegingen" / "templates").glob("*.graphql"))
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _variables_of(query: Path) -> dict[str, Any]:
    for candidate in (
        query.with_suffix(".variables.json"),
        query.with_name(query.stem + "_variables.json"),
    ):
        if candidate.exists():
            loaded: dict[str, Any] = json.loads(candidate.read_text(encoding="utf-8"))
            return loaded
    return {}


def _cases() -> list[tuple[str, OperationPlan, dict[str, Any]]]:
    """Every fixture and template query with the schema it validates against."""
    cases = []
    queries = sorted(FIXTURES.glob("*.graphql")) + TEMPLATES
    schemas: list[GraphQLSchema] = [load_schema(path) for path in SCHEMAS]
    for query in queries:
        text = query.read_text(encoding="utf-8")
        for path, schema in zip(SCHEMAS, schemas, strict=True):
            try:
                plan = Analyser(GraphQLLimits(), schema=schema)._plan(text, None)
            except Refusal:
                continue
            cases.append((f"{query.stem}@{path.stem}", plan, _variables_of(query)))
    return cases


CASES = _cases()


def _outcome(run: Any, inputs: dict[str, Any]) -> Any:
    try:
        facts: OperationFacts = run(inputs)
    except Refusal as refusal:
        return type(refusal), refusal.message, refusal.reason
    return facts, facts.variables, facts.plan


_SCALARS = st.sampled_from(
    [None, "", "x", "KVK", "UZOVI", "2024-07-02T00:00:00Z", "2024-07-02", "nope", 0, 7, 1.5, True]
)


def _changed(value: Any) -> st.SearchStrategy[Any]:
    """*value* itself, or one change to it at some depth."""
    options: list[st.SearchStrategy[Any]] = [_SCALARS]
    if isinstance(value, dict):
        options.append(_changed_object(value))
    if isinstance(value, list):
        options.append(st.just(value[0] if value else None))
        if value:
            options.append(_changed(value[0]).map(lambda new: [new, *value[1:]]))
    else:
        options.append(st.just([value]))
    return st.one_of(options)


def _changed_object(value: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    """The object *value* itself, or one change to a member of it at some depth."""
    options: list[st.SearchStrategy[dict[str, Any]]] = [st.just(value)]
    if value:
        keys = sorted(value)
        options.append(
            st.sampled_from(keys).flatmap(
                lambda key: _changed(value[key]).map(lambda new: {**value, key: new})
            )
        )
        options.append(
            st.sampled_from(keys).map(lambda key: {k: v for k, v in value.items() if k != key})
        )
    options.append(_SCALARS.map(lambda extra: {**value, "unknownMember": extra}))
    return st.one_of(options)


@pytest.mark.parametrize(("label", "plan", "variables"), CASES, ids=[c[0] for c in CASES])
def test_the_fixtures_variables_give_the_general_paths_facts(
    label: str, plan: OperationPlan, variables: dict[str, Any]
) -> None:
    assert _outcome(plan.facts, variables) == _outcome(plan._collected_facts, variables)


@SETTINGS
@given(data=st.data())
def test_changed_variables_give_the_general_paths_facts_or_refusal(data: st.DataObject) -> None:
    _label, plan, variables = data.draw(st.sampled_from(CASES))
    inputs = data.draw(_changed_object(variables))
    assert _outcome(plan.facts, inputs) == _outcome(plan._collected_facts, inputs)


def test_the_seed_notification_takes_the_short_path(
    schema: GraphQLSchema, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Valid variables never reach the general path (its per-node lookups and
    ``_Variables``); the facts still carry the plan the policy engine specialises on."""
    query = (FIXTURES / "seed_003_example.graphql").read_text(encoding="utf-8")
    variables = json.loads((FIXTURES / "seed_003_variables.json").read_text(encoding="utf-8"))
    analyser = Analyser(GraphQLLimits(), schema=schema)
    request = GraphQLRequest(query, variables)
    expected = analyser.analyse(request)

    def general(self: OperationPlan, inputs: Any) -> OperationFacts:
        raise AssertionError("the general path ran")

    monkeypatch.setattr(OperationPlan, "_collected_facts", general)
    facts = analyser.analyse(request)
    assert facts == expected and facts.plan is expected.plan is not None
    assert facts.variables == expected.variables
