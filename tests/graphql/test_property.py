"""Whatever text or variables arrive, the analyser answers with facts or a Refusal."""

from __future__ import annotations

from typing import Any

from graphql import GraphQLSchema
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.config.model import GraphQLLimits
from gateway.facts import OperationFacts
from gateway.graphql import Analyser
from gateway.refusals import Refusal
from tests.fixtures.graphql import fixture_query, request

# Pieces of GraphQL, so generated text often gets past the lexer and into the analyser.
PIECES = st.sampled_from(
    [
        "{",
        "}",
        "(",
        ")",
        "[",
        "]",
        ":",
        "$",
        "@",
        "...",
        "!",
        "=",
        " ",
        "\n",
        ",",
        "query",
        "mutation",
        "subscription",
        "fragment",
        "on",
        "Q",
        "F",
        "a",
        "b",
        "x",
        "zendNotificatie",
        "notificatieInput",
        "skip",
        "include",
        "if",
        "true",
        "false",
        "null",
        "1",
        "2.5",
        '"s"',
        '"""b"""',
        "KVK",
        "T",
        "Int",
        "String",
        "#c\n",
    ]
)
TEXT = st.one_of(st.text(max_size=200), st.lists(PIECES, max_size=80).map("".join))
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=10),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4)
    ),
    max_leaves=20,
)
VARIABLES = st.dictionaries(
    st.sampled_from(["a", "b", "x", "i", "notificatieInput"]), JSON, max_size=4
)
LIMITS = GraphQLLimits(
    max_query_length=2000, max_depth=6, max_aliases=5, max_list_items=10, max_tokens=300
)


def _check(
    analyser: Analyser, query: str, variables: dict[str, Any], operation_name: str | None
) -> None:
    try:
        facts = analyser.analyse(request(query, variables, operation_name))
    except Refusal as refusal:
        assert 400 <= refusal.status < 500
        assert refusal.message
    else:
        # Facts of one operation on one root field.
        assert isinstance(facts, OperationFacts)
        assert facts.operation_type in ("query", "mutation", "subscription"), query
        assert facts.root_field, query


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(query=TEXT, variables=VARIABLES, operation_name=st.none() | st.sampled_from(["Q", "F", "x"]))
def test_arbitrary_text_gives_facts_or_a_refusal(
    query: str, variables: dict[str, Any], operation_name: str | None
) -> None:
    _check(Analyser(LIMITS), query, variables, operation_name)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(query=TEXT, variables=VARIABLES, operation_name=st.none() | st.sampled_from(["Q", "F", "x"]))
def test_arbitrary_text_with_schema_gives_facts_or_a_refusal(
    schema: GraphQLSchema, query: str, variables: dict[str, Any], operation_name: str | None
) -> None:
    _check(Analyser(LIMITS, schema=schema), query, variables, operation_name)


@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(variables=st.dictionaries(st.sampled_from(["notificatieInput", "x"]), JSON, max_size=2))
def test_arbitrary_variables_for_a_real_query_give_facts_or_a_refusal(
    schema: GraphQLSchema, variables: dict[str, Any]
) -> None:
    for analyser in (Analyser(LIMITS), Analyser(LIMITS, schema=schema)):
        _check(analyser, fixture_query("one_variable"), variables, None)
