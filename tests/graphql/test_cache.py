"""The parse cache: hits and misses are reported, the size is bounded, results are right."""

from __future__ import annotations

import contextlib

import pytest
from graphql import GraphQLSchema

from gateway.config.model import GraphQLLimits
from gateway.graphql import Analyser
from gateway.refusals import MultipleRootFields, NoOperation, QuerySyntaxError, ValidationFailed
from tests.fixtures.graphql import RecordingObserver, fixture_query, fixture_variables, request


def test_first_request_misses_and_the_same_text_then_hits() -> None:
    observer = RecordingObserver()
    analyser = Analyser(GraphQLLimits(), observer=observer)
    query = fixture_query("one_variable")
    variables = fixture_variables("one_variable_variables")
    first = analyser.analyse(request(query, variables))
    second = analyser.analyse(request(query, variables))
    assert observer.cache == [False, True]
    assert first == second


def test_a_hit_uses_the_new_variables() -> None:
    analyser = Analyser(GraphQLLimits())
    query = fixture_query("one_variable")
    variables = fixture_variables("one_variable_variables")
    analyser.analyse(request(query, variables))
    variables["notificatieInput"]["afzenderID"] = "99999999"
    assert (
        analyser.analyse(request(query, variables)).argument("notificatieInput.afzenderID")
        == "99999999"
    )


def test_a_hit_reevaluates_skip_and_include() -> None:
    analyser = Analyser(GraphQLLimits())
    query = "query Q($b: Boolean!) { f { a @include(if: $b) c } }"
    assert analyser.analyse(request(query, {"b": True})).selected_paths == ("a", "c")
    assert analyser.analyse(request(query, {"b": False})).selected_paths == ("c",)


def test_refusals_are_cached_and_reported_as_hits() -> None:
    observer = RecordingObserver()
    analyser = Analyser(GraphQLLimits(), observer=observer)
    for _ in range(2):
        with pytest.raises(QuerySyntaxError):
            analyser.analyse(request("{ broken"))
    assert observer.cache == [False, True]


def test_variable_errors_are_never_cached() -> None:
    observer = RecordingObserver()
    analyser = Analyser(GraphQLLimits(), observer=observer)
    query = fixture_query("one_variable")
    with pytest.raises(ValidationFailed):
        analyser.analyse(request(query))
    variables = fixture_variables("one_variable_variables")
    facts = analyser.analyse(request(query, variables))
    # The same cached document, now with the variable: decided on it, not refused again.
    assert observer.cache == [False, True]
    assert facts.root_field == "zendNotificatie"
    assert facts.arguments == {"notificatieInput": variables["notificatieInput"]}


def test_root_field_choice_by_variables_is_never_cached() -> None:
    analyser = Analyser(GraphQLLimits())
    query = "query Q($both: Boolean!) { a b @include(if: $both) }"
    assert analyser.analyse(request(query, {"both": False})).root_field == "a"
    with pytest.raises(MultipleRootFields):
        analyser.analyse(request(query, {"both": True}))


def test_operation_name_and_none_share_one_cached_document() -> None:
    observer = RecordingObserver()
    analyser = Analyser(GraphQLLimits(), observer=observer)
    query = "query A { a }"
    assert analyser.analyse(request(query, operation_name="A")).root_field == "a"
    assert analyser.analyse(request(query)).root_field == "a"
    assert analyser.analyse(request(query, operation_name="A")).root_field == "a"
    assert observer.cache == [False, True, True]
    assert len(analyser) == 1


def test_unknown_operation_names_do_not_grow_the_cached_document() -> None:
    analyser = Analyser(GraphQLLimits())
    query = "query A { a }"
    for name in ("B", "C", "D"):
        with pytest.raises(NoOperation):
            analyser.analyse(request(query, operation_name=name))
    assert len(analyser) == 1


def test_cache_is_bounded_and_evicts_the_least_recently_used() -> None:
    observer = RecordingObserver()
    analyser = Analyser(GraphQLLimits(), cache_size=2, observer=observer)
    for name in ("a", "b", "a", "c", "a", "b"):
        analyser.analyse(request(f"{{ {name} }}"))
    # a miss, b miss, a hit, c miss (evicts b), a hit, b miss (evicts c)
    assert observer.cache == [False, False, True, False, True, False]
    assert len(analyser) == 2


def test_cache_size_zero_never_stores() -> None:
    observer = RecordingObserver()
    analyser = Analyser(GraphQLLimits(), cache_size=0, observer=observer)
    for _ in range(3):
        analyser.analyse(request("{ a }"))
    assert observer.cache == [False, False, False]
    assert len(analyser) == 0


def test_schema_validation_result_is_cached(schema: GraphQLSchema) -> None:
    observer = RecordingObserver()
    analyser = Analyser(GraphQLLimits(), schema=schema, observer=observer)
    query = fixture_query("one_variable").replace("notificatieID", "geheim")
    for _ in range(2):
        with pytest.raises(ValidationFailed, match="geheim"):
            analyser.analyse(request(query, fixture_variables("one_variable_variables")))
    assert observer.cache == [False, True]


def test_texts_that_differ_only_in_whitespace_are_different_entries() -> None:
    observer = RecordingObserver()
    analyser = Analyser(GraphQLLimits(), observer=observer)
    analyser.analyse(request("{ a }"))
    analyser.analyse(request("{ a  }"))
    assert observer.cache == [False, False]


def test_the_last_text_again_needs_no_cache_lookup(monkeypatch: pytest.MonkeyPatch) -> None:
    observer = RecordingObserver()
    analyser = Analyser(GraphQLLimits(), observer=observer)
    query = fixture_query("one_variable")
    variables = fixture_variables("one_variable_variables")
    first = analyser.analyse(request(query, variables))

    def no_lookup(text: str) -> None:
        raise AssertionError("looked up")

    monkeypatch.setattr(analyser, "_document", no_lookup)
    assert analyser.analyse(request(query, variables)) == first
    assert observer.cache == [False, True]  # still a hit
    with pytest.raises(AssertionError, match="looked up"):  # another name: a lookup
        analyser.analyse(request(query, variables, "anders"))


def test_remembering_the_last_text_keeps_the_least_recently_used_order() -> None:
    """A refused text between two hits of one text is the most recent lookup: the next hit
    of the first text moves it to the front again, so the next miss evicts the refused one."""
    observer = RecordingObserver()
    analyser = Analyser(GraphQLLimits(), cache_size=2, observer=observer)
    for text in ("{ a }", "{ a", "{ a }", "{ c }", "{ a }", "{ a"):
        with contextlib.suppress(QuerySyntaxError):
            analyser.analyse(request(text))
    # a miss, bad miss, a hit (to the front), c miss (evicts bad), a hit, bad miss
    assert observer.cache == [False, False, True, False, True, False]
