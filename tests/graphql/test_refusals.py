"""Queries the analyser refuses: syntax, limits, operation choice, variables."""

from __future__ import annotations

import pytest

from gateway.config.model import GraphQLLimits
from gateway.graphql import Analyser
from gateway.refusals import (
    BadRequest,
    LimitExceeded,
    NoOperation,
    QuerySyntaxError,
    Refusal,
    ValidationFailed,
)
from tests.fixtures.graphql import fixture_query, fixture_variables, request


@pytest.mark.parametrize(
    "query",
    [
        "mutation { zendNotificatie(",
        "{ a { } }",
        "query Q { a(x: ) }",
        '{ a(x: "\\uD800") }',
        "{ a } }",
        "kaboom",
    ],
)
def test_unparsable_query_is_invalid_query_syntax(any_analyser: Analyser, query: str) -> None:
    with pytest.raises(QuerySyntaxError) as info:
        any_analyser.analyse(request(query))
    refusal = info.value
    assert (refusal.status, refusal.code, refusal.message) == (
        400,
        "GRAPHQL_PARSE_FAILED",
        "Invalid Query Syntax",
    )
    assert refusal.reason.startswith("Syntax Error:")


@pytest.mark.parametrize("query", ["", "   ", "# only a comment\n"])
def test_empty_document_is_a_syntax_error(analyser: Analyser, query: str) -> None:
    with pytest.raises(QuerySyntaxError):
        analyser.analyse(request(query))


def test_query_nested_deeper_than_the_parser_can_recurse_is_refused(analyser: Analyser) -> None:
    query = "{ a" + " { a" * 3000 + " }" * 3001
    with pytest.raises(QuerySyntaxError):
        analyser.analyse(request(query))


def test_list_literal_nested_deeper_than_the_parser_can_recurse_is_refused(
    analyser: Analyser,
) -> None:
    with pytest.raises(QuerySyntaxError):
        analyser.analyse(request("{ f(a: " + "[" * 3000 + "]" * 3000 + ") }"))


def test_query_length_limit() -> None:
    analyser = Analyser(GraphQLLimits(max_query_length=100))
    query = '{ a(x: "' + "x" * 100 + '") }'
    with pytest.raises(LimitExceeded) as info:
        analyser.analyse(request(query))
    assert info.value.status == 400
    assert info.value.message == (
        f"The query is {len(query)} characters long, over the limit of 100 (max_query_length)"
    )
    assert info.value.reason == "max_query_length"


def test_depth_limit_counts_field_nesting() -> None:
    analyser = Analyser(GraphQLLimits(max_depth=3))
    assert analyser.analyse(request("{ a { b { c } } }")).selected_paths == ("b", "b.c")
    with pytest.raises(LimitExceeded, match=r"nested more than 3 levels deep.*\(max_depth\)"):
        analyser.analyse(request("{ a { b { c { d } } } }"))


def test_depth_limit_counts_nesting_through_fragments() -> None:
    analyser = Analyser(GraphQLLimits(max_depth=3))
    query = "{ a { ...F } } fragment F on T { b { c { d } } }"
    with pytest.raises(LimitExceeded, match="max_depth"):
        analyser.analyse(request(query))


def test_depth_limit_counts_value_nesting() -> None:
    analyser = Analyser(GraphQLLimits(max_depth=3))
    analyser.analyse(request("{ f(a: {b: [{c: 1}]}) }"))
    with pytest.raises(LimitExceeded, match=r"value literal is nested more than 3 levels"):
        analyser.analyse(request("{ f(a: {b: [{c: [1]}]}) }"))


def test_huge_list_literal_is_refused(analyser: Analyser) -> None:
    query = "{ f(l: [" + ", ".join(["1"] * 1001) + "]) }"
    with pytest.raises(LimitExceeded) as info:
        analyser.analyse(request(query))
    assert info.value.message == (
        "A list literal has 1001 items, over the limit of 1000 (max_list_items)"
    )


def test_list_literal_in_a_variable_default_is_counted() -> None:
    analyser = Analyser(GraphQLLimits(max_list_items=2))
    with pytest.raises(LimitExceeded, match="max_list_items"):
        analyser.analyse(request("query Q($l: [Int] = [1, 2, 3]) { f(l: $l) }"))


def test_alias_bomb_is_refused(analyser: Analyser) -> None:
    query = "{ f { " + " ".join(f"a{i}: notificatieID" for i in range(31)) + " } }"
    with pytest.raises(LimitExceeded) as info:
        analyser.analyse(request(query))
    assert info.value.message == (
        "The query uses more than 30 aliases, over the limit of 30 (max_aliases)"
    )


def test_aliases_reused_through_fragments_are_all_counted() -> None:
    analyser = Analyser(GraphQLLimits(max_aliases=4))
    query = "{ f { ...A ...A ...A } } fragment A on T { x: id y: id }"
    with pytest.raises(LimitExceeded, match="max_aliases"):
        analyser.analyse(request(query))


def test_token_bomb_is_refused() -> None:
    analyser = Analyser(GraphQLLimits(max_tokens=100))
    with pytest.raises(LimitExceeded) as info:
        analyser.analyse(request("{ f { " + "a " * 200 + "} }"))
    assert info.value.message == (
        "The query has more than 100 tokens, over the limit of 100 (max_tokens)"
    )


def test_fragment_bomb_is_refused_before_it_expands(analyser: Analyser) -> None:
    # 2**20 fields once expanded, from a few hundred characters of query text.
    fragments = " ".join(f"fragment F{i} on T {{ ...F{i + 1} ...F{i + 1} }}" for i in range(20))
    query = "query Q { f { ...F0 } } " + fragments + " fragment F20 on T { x }"
    with pytest.raises(LimitExceeded, match=r"expands to more than 5000 fields.*\(max_tokens\)"):
        analyser.analyse(request(query))


def test_fragment_cycle_is_refused(analyser: Analyser) -> None:
    query = "query Q { f { ...A } } fragment A on T { x ...B } fragment B on T { ...A }"
    with pytest.raises(ValidationFailed) as info:
        analyser.analyse(request(query))
    assert info.value.message == 'Q query: Cannot spread fragment "A" within itself.'


def test_unknown_fragment_is_refused(analyser: Analyser) -> None:
    with pytest.raises(ValidationFailed) as info:
        analyser.analyse(request("query Q { f { ...B } }"))
    assert info.value.message == 'Q query: Unknown fragment "B".'


def test_type_definitions_in_the_request_are_refused(analyser: Analyser) -> None:
    with pytest.raises(ValidationFailed, match="not executable"):
        analyser.analyse(request("type T { a: Int } query Q { a }"))


def test_missing_required_variable_is_refused(analyser: Analyser) -> None:
    with pytest.raises(ValidationFailed) as info:
        analyser.analyse(request(fixture_query("one_variable")))
    refusal = info.value
    assert refusal.code == "GRAPHQL_VALIDATION_FAILED"
    assert refusal.message == (
        'ZendNotificatie mutation: Variable "$notificatieInput" of '
        'required type "NotificatieInput!" was not provided.'
    )


def test_null_for_a_non_null_variable_is_refused(analyser: Analyser) -> None:
    with pytest.raises(ValidationFailed, match="must not be null"):
        analyser.analyse(request(fixture_query("one_variable"), {"notificatieInput": None}))


def test_missing_variable_in_the_seed_example_names_the_root_field(any_analyser: Analyser) -> None:
    variables = fixture_variables("seed_003_variables")
    del variables["afzenderID"]
    with pytest.raises(ValidationFailed) as info:
        any_analyser.analyse(request(fixture_query("seed_003_example"), variables))
    assert info.value.message.startswith("zendNotificatie mutation: Variable ")
    assert "$afzenderID" in info.value.message


def test_undeclared_variable_is_refused(any_analyser: Analyser) -> None:
    query = "query Q { notificatie(notificatieID: $id) { notificatieID } }"
    with pytest.raises(ValidationFailed, match=r"\$id"):
        any_analyser.analyse(request(query, {"id": "1"}))


def test_skip_with_a_non_boolean_variable_is_refused(analyser: Analyser) -> None:
    with pytest.raises(ValidationFailed, match="must be a Boolean"):
        analyser.analyse(request("query Q($s: Boolean) { a @skip(if: $s) }", {"s": "yes"}))


def test_variables_nested_too_deeply_are_refused_with_a_schema(schema_analyser: Analyser) -> None:
    nested: dict[str, object] = {}
    inner = nested
    for _ in range(3000):
        inner["eventType"] = {}
        inner = inner["eventType"]  # type: ignore[assignment]
    query = "query Q($f: NotificatieFilter) { notificaties(where: $f) { notificatieID } }"
    with pytest.raises((ValidationFailed, BadRequest)):
        schema_analyser.analyse(request(query, {"f": nested}))


def test_refusals_from_the_cache_are_fresh_exceptions(analyser: Analyser) -> None:
    caught: list[Refusal] = []
    for _ in range(2):
        with pytest.raises(NoOperation) as info:
            analyser.analyse(request("fragment F on T { a }"))
        caught.append(info.value)
    assert caught[0] is not caught[1]
    assert caught[0].message == caught[1].message == "No operation found to evaluate"
