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
            plan.write()  # not only at its second use: the cases compare the written path
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


# ------------------------------------------- the written function (gateway/graphql/written.py)

_STRICT_SCHEMA = """
scalar DateTime
enum Kind { A B }
input Inner {
  s: String!, n: Int, f: Float, b: Boolean, k: Kind = A, when: DateTime, tags: [String!]
}
input Outer { inner: Inner!, list: [Inner!], id: ID, opt: String = "d" }
type Result { id: ID, sub(first: Int = 3, k: Kind): Result }
type Query {
  run(i: Int!, f: Float, s: String, b: Boolean!, k: Kind, ids: [ID!], o: Outer,
      when: DateTime, lit: Outer, d: Int = 5, n: [[Int]]): Result
}
"""
_STRICT_QUERY = """
query q($i: Int!, $f: Float, $s: String = "x", $b: Boolean!, $k: Kind, $ids: [ID!],
        $o: Outer, $when: DateTime, $n: Int, $inner: Inner!, $nn: [[Int]] = [[1]]) {
  run(i: $i, f: $f, s: $s, b: $b, k: $k, ids: $ids, o: $o, when: $when, n: $nn,
      lit: {inner: $inner, list: [{s: "a", n: $n}], id: 7}) {
    id
    sub(k: $k) { id }
  }
}
"""
_VALID = {
    "i": 1,
    "b": True,
    "inner": {"s": "x"},
    "o": {"inner": {"s": "y", "tags": ["t"], "k": "B"}, "list": [{"s": "z", "n": 2}]},
}
_STRICT_VALUES = st.sampled_from(
    [
        *(None, True, False, 0, 1, -1, 2**40, 1.5, 1.0, float("nan"), "", "x", "1", "A", "B"),
        *("C", "2024-07-02", "2024-07-02T00:00:00Z", "nope", [], ["a"], [1], [None], [[2]]),
        *({}, {"s": "a"}, {"s": 1}, {"s": "a", "n": True}, {"s": "a", "f": 2}, {"s": None}),
        {"s": "a", "k": "B", "when": "2024-07-02", "tags": "one", "b": False},
        {"inner": {"s": "x"}},
        {"inner": {"s": "x"}, "list": [{"s": "y", "k": "B"}], "id": 3},
        {"inner": {"s": "x"}, "list": {"s": "y"}, "extra": 1},
        {"inner": None},
    ]
)


@pytest.fixture(scope="module")
def strict_plan() -> OperationPlan:
    from gateway.graphql import load_schema_text

    analyser = Analyser(GraphQLLimits(), schema=load_schema_text(_STRICT_SCHEMA))
    plan = analyser._plan(_STRICT_QUERY, None)
    plan.write()
    return plan


def _written_or_general(plan: OperationPlan, inputs: dict[str, Any]) -> Any:
    assert plan.exact is not None
    return _outcome(lambda i: plan.exact(i, plan) or plan._collected_facts(i), inputs)  # type: ignore[misc]


def test_the_strict_plan_is_written_and_takes_valid_variables(strict_plan: OperationPlan) -> None:
    assert strict_plan.exact is not None
    facts = strict_plan.exact(_VALID, strict_plan)
    assert facts is not None and type(facts) is OperationFacts
    assert _outcome(lambda _: facts, _VALID) == _outcome(strict_plan._collected_facts, _VALID)
    assert facts.arguments["s"] == "x" and facts.arguments["d"] == 5  # defaults applied
    assert facts.arguments["o"]["inner"]["k"] == "B" and facts.arguments["n"] == [[1]]
    # A default is copied per request, never shared.
    assert facts.variables["nn"] is not strict_plan.exact(_VALID, strict_plan).variables["nn"]  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("i", True),  # a Boolean is no Int
        ("i", 1.5),
        ("i", "1"),  # a String is no number
        ("i", 2**40),  # beyond 32 bits
        ("i", None),  # non-null
        ("f", 1),  # an Int is a Float
        ("f", True),
        ("s", 1),
        ("b", 1),
        ("k", "C"),
        ("k", 1),
        ("ids", 1),  # an ID from an Int; one value where a list is expected
        ("ids", [None]),
        ("when", "nope"),
        ("when", 20240702),
        ("inner", {"s": "a", "n": True}),
        ("inner", {"s": "a", "extra": 1}),
        ("inner", {"n": 1}),
        ("o", {"inner": {"s": "x"}, "list": {"s": "y"}}),
        ("nn", [1, [2, None]]),
        ("nn", None),
        ("n", None),
        ("unknown", 1),
    ],
)
def test_the_written_function_coerces_strictly_as_the_general_path(
    strict_plan: OperationPlan, name: str, value: Any
) -> None:
    inputs = {**_VALID, name: value}
    assert _written_or_general(strict_plan, inputs) == _outcome(
        strict_plan._collected_facts, inputs
    )


@pytest.mark.parametrize("name", ["i", "b", "inner", "s", "nn", "o"])
def test_a_missing_variable_is_refused_or_defaulted_as_the_general_path(
    strict_plan: OperationPlan, name: str
) -> None:
    inputs = {k: v for k, v in _VALID.items() if k != name}
    assert _written_or_general(strict_plan, inputs) == _outcome(
        strict_plan._collected_facts, inputs
    )


@SETTINGS
@given(
    changes=st.dictionaries(
        st.sampled_from(["i", "f", "s", "b", "k", "ids", "o", "when", "n", "inner", "nn", "x"]),
        st.one_of(_STRICT_VALUES, st.lists(_STRICT_VALUES, max_size=2)),
        max_size=4,
    ),
    dropped=st.sets(st.sampled_from(sorted(_VALID)), max_size=2),
)
def test_generated_variables_give_the_general_paths_facts_or_refusal(
    strict_plan: OperationPlan, changes: dict[str, Any], dropped: set[str]
) -> None:
    inputs = {k: v for k, v in {**_VALID, **changes}.items() if k not in dropped}
    expected = _outcome(strict_plan._collected_facts, inputs)
    assert _written_or_general(strict_plan, inputs) == expected
    written = strict_plan.exact(inputs, strict_plan)  # type: ignore[misc]
    if written is not None:  # what it answers, it answers alone: the general path's facts
        assert (written, written.variables, written.plan) == expected


def test_the_written_source_holds_no_query_text(strict_plan: OperationPlan) -> None:
    """Names of variables, arguments and fields are constants of the function, never
    source: a query cannot write code."""
    from gateway.graphql.written import source_of

    assert strict_plan._signatures is not None and strict_plan._static_collected is not None
    node, field_def, _paths, nested = strict_plan._static_collected
    assert field_def is not None
    variables = tuple(
        (sig, has_default, coerce, strict_plan._defaults.get(sig.name))
        for sig, has_default, coerce in strict_plan._signatures
    )
    source = source_of(variables, (("", node, field_def), *nested), strict_plan.general_facts())
    assert source is not None
    for word in ("inner", "tags", "run", "lit", "sub", "Kind", "notificatie"):
        assert f"'{word}'" not in source and f'"{word}"' not in source


def test_a_plan_is_written_at_its_second_use_and_a_text_seen_once_never() -> None:
    # Compiling the written function costs about as much as the rest of a miss: a query
    # text sent once (a miss per request) must not pay it; a repeated one gets it.
    from gateway.graphql import load_schema_text

    analyser = Analyser(GraphQLLimits(), schema=load_schema_text(_STRICT_SCHEMA))
    analyser.analyse_fields(_STRICT_QUERY, _VALID, None)
    plan = analyser._plan(_STRICT_QUERY, None)
    assert plan.exact is None
    analyser.analyse_fields(_STRICT_QUERY, _VALID, None)
    assert plan.exact is not None
    analyser.analyse_fields(_STRICT_QUERY, _VALID, None)
    assert analyser._last is not None and analyser._last[3] is plan.exact
    general = _outcome(plan._collected_facts, _VALID)
    assert _outcome(lambda i: analyser.analyse_fields(_STRICT_QUERY, i, None), _VALID) == general
