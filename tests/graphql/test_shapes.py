"""The request shapes real senders use all give the facts the policy decides on."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.graphql import Analyser
from gateway.refusals import MultipleOperations, MultipleRootFields, NoOperation
from tests.fixtures.graphql import fixture_query, fixture_variables, request

SUBJECT = "WlzIndicatie/ef88ce35-58fa-4e6d-ac7a-6e298dd211d6"
SEED_INPUT: dict[str, Any] = {
    "afzenderID": "62253778",
    "afzenderIDType": "KVK",
    "eventType": "NIEUWE_INDICATIE_ZORGKANTOOR",
    "ontvangerID": "5151",
    "ontvangerIDType": "UZOVI",
    "timestamp": "2024-07-02T00:00:00Z",
    "subjectList": [{"recordID": SUBJECT, "subject": SUBJECT}],
}


def test_seed_003_example_substitutes_each_field_variable(any_analyser: Analyser) -> None:
    facts = any_analyser.analyse(
        request(fixture_query("seed_003_example"), fixture_variables("seed_003_variables"))
    )
    assert facts.operation_type == "mutation"
    assert facts.operation_name == "zendNotificatie"
    assert facts.root_field == "zendNotificatie"
    assert facts.root_alias is None
    assert facts.arguments == {"notificatieInput": SEED_INPUT}
    assert facts.selected_paths == ("notificatieID",)
    assert facts.argument("notificatieInput.afzenderID") == "62253778"
    assert facts.display_name == "zendNotificatie"


def test_one_notificatie_input_variable(any_analyser: Analyser) -> None:
    facts = any_analyser.analyse(
        request(fixture_query("one_variable"), fixture_variables("one_variable_variables"))
    )
    assert facts.operation_name == "ZendNotificatie"
    assert facts.argument("notificatieInput.timestamp") == "2024-07-02"
    assert facts.argument("notificatieInput.ontvangerIDType") == "UZOVI"
    assert facts.argument("notificatieInput.subjectList") == [
        {"subject": SUBJECT, "recordID": SUBJECT}
    ]


def test_inline_literals_give_enum_names_and_plain_values(any_analyser: Analyser) -> None:
    facts = any_analyser.analyse(request(fixture_query("inline_literals")))
    assert facts.operation_name is None
    assert facts.display_name == "zendNotificatie"
    expected = dict(SEED_INPUT, subjectList=[{"subject": SUBJECT, "recordID": SUBJECT}])
    assert facts.arguments == {"notificatieInput": expected}


def test_alias_is_resolved_to_the_real_root_field(any_analyser: Analyser) -> None:
    facts = any_analyser.analyse(
        request(fixture_query("alias"), fixture_variables("one_variable_variables"))
    )
    assert facts.root_field == "zendNotificatie"
    assert facts.root_alias == "ontvangst"
    assert facts.selected_paths == ("notificatieID",)


def test_named_and_inline_fragments_are_expanded(any_analyser: Analyser) -> None:
    facts = any_analyser.analyse(
        request(fixture_query("fragments"), fixture_variables("one_variable_variables"))
    )
    assert facts.selected_paths == (
        "notificatieID",
        "eventType",
        "subjectList",
        "subjectList.subject",
        "subjectList.recordID",
    )


def test_melding_example_of_rfc0018(any_analyser: Analyser) -> None:
    facts = any_analyser.analyse(
        request(fixture_query("melding_rfc0018"), fixture_variables("melding_rfc0018_variables"))
    )
    assert facts.root_field == "zendMelding"
    assert facts.argument("meldingInput.eventType") == "IWLZFOUTMELDING"
    assert len(facts.argument("meldingInput.subjectList")) == 2
    # $ontvangerKenmerk is declared nullable, not sent and has no default: absent, not None.
    assert "ontvangerKenmerk" not in facts.arguments["meldingInput"]


def test_raadpleging_query(analyser: Analyser) -> None:
    facts = analyser.analyse(request(fixture_query("raadpleging"), {"ontvangerID": "5151"}))
    assert facts.operation_type == "query"
    assert facts.arguments == {"where": {"ontvangerIDType": "UZOVI", "ontvangerID": "5151"}}
    assert facts.selected_paths == (
        "notificatieID",
        "eventType",
        "subjectList",
        "subjectList.recordID",
    )


def test_schema_applies_argument_defaults(schema_analyser: Analyser) -> None:
    facts = schema_analyser.analyse(request(fixture_query("raadpleging"), {"ontvangerID": "5151"}))
    assert facts.arguments["first"] == 20


def test_variable_default_applies_when_not_sent(any_analyser: Analyser) -> None:
    query = (
        'query Q($id: String = "5152", $type: IDTypeEnum = UZOVI) '
        "{ notificaties(where: {ontvangerID: $id, ontvangerIDType: $type}) "
        "{ notificatieID } }"
    )
    facts = any_analyser.analyse(request(query))
    assert facts.argument("where.ontvangerID") == "5152"
    assert facts.argument("where.ontvangerIDType") == "UZOVI"
    sent = any_analyser.analyse(request(query, {"id": "5151"}))
    assert sent.argument("where.ontvangerID") == "5151"


def test_absent_variable_without_default_is_absent_not_null(any_analyser: Analyser) -> None:
    query = "query Q($id: String) { notificaties(where: {ontvangerID: $id}) { notificatieID } }"
    assert any_analyser.analyse(request(query)).arguments["where"] == {}
    explicit = any_analyser.analyse(request(query, {"id": None}))
    assert explicit.arguments["where"] == {"ontvangerID": None}


def test_absent_variable_as_a_whole_argument_is_absent(analyser: Analyser) -> None:
    query = "query Q($f: NotificatieFilter) { notificaties(where: $f) { notificatieID } }"
    assert analyser.analyse(request(query)).arguments == {}


def test_single_value_for_a_list_variable_becomes_a_list(any_analyser: Analyser) -> None:
    variables = dict(fixture_variables("seed_003_variables"))
    variables["subjectList"] = {"subject": SUBJECT, "recordID": SUBJECT}
    facts = any_analyser.analyse(request(fixture_query("seed_003_example"), variables))
    assert facts.argument("notificatieInput.subjectList") == [
        {"subject": SUBJECT, "recordID": SUBJECT}
    ]


@pytest.mark.parametrize(
    ("flags", "paths"),
    [
        ({"withType": True, "skipId": False}, ("notificatieID", "eventType")),
        ({"withType": False, "skipId": False}, ("notificatieID",)),
        ({"withType": True, "skipId": True}, ("eventType",)),
    ],
)
def test_skip_and_include_follow_the_variables(
    any_analyser: Analyser, flags: dict[str, bool], paths: tuple[str, ...]
) -> None:
    query = (
        'query Q($withType: Boolean!, $skipId: Boolean!) { notificatie(notificatieID: "1") '
        "{ notificatieID @skip(if: $skipId) ... @include(if: $withType) { eventType } } }"
    )
    assert any_analyser.analyse(request(query, flags)).selected_paths == paths


def test_constant_skip_and_include_are_applied(any_analyser: Analyser) -> None:
    query = (
        '{ notificatie(notificatieID: "1") { notificatieID eventType @skip(if: true) '
        "ontvangerID @include(if: false) afzenderID @include(if: true) } }"
    )
    assert any_analyser.analyse(request(query)).selected_paths == ("notificatieID", "afzenderID")


def test_skip_on_a_root_field_chooses_the_root_field(any_analyser: Analyser) -> None:
    query = (
        'query Q($one: Boolean!) { notificatie(notificatieID: "1") @include(if: $one) '
        "{ notificatieID } notificaties @skip(if: $one) { notificatieID } }"
    )
    assert any_analyser.analyse(request(query, {"one": True})).root_field == "notificatie"
    assert any_analyser.analyse(request(query, {"one": False})).root_field == "notificaties"


def test_two_root_fields_left_after_skip_are_refused(any_analyser: Analyser) -> None:
    query = (
        'query Q($one: Boolean!) { notificatie(notificatieID: "1") { notificatieID } '
        "notificaties @skip(if: $one) { notificatieID } }"
    )
    with pytest.raises(MultipleRootFields) as info:
        any_analyser.analyse(request(query, {"one": False}))
    assert info.value.message == "Only one selectionset in an operation is supported."
    assert any_analyser.analyse(request(query, {"one": True})).root_field == "notificatie"


def test_two_root_fields_are_refused(any_analyser: Analyser) -> None:
    query = '{ notificatie(notificatieID: "1") { notificatieID } notificaties { notificatieID } }'
    with pytest.raises(MultipleRootFields):
        any_analyser.analyse(request(query))


def test_same_root_field_aliased_twice_is_two_root_fields(analyser: Analyser) -> None:
    query = (
        '{ a: notificatie(notificatieID: "1") { notificatieID } '
        'b: notificatie(notificatieID: "2") { notificatieID } }'
    )
    with pytest.raises(MultipleRootFields):
        analyser.analyse(request(query))


def test_root_field_in_a_fragment_counts(analyser: Analyser) -> None:
    query = (
        'query Q { notificatie(notificatieID: "1") { notificatieID } ...More } '
        "fragment More on Query { notificaties { notificatieID } }"
    )
    with pytest.raises(MultipleRootFields):
        analyser.analyse(request(query))


def test_repeated_identical_root_field_is_one_field(any_analyser: Analyser) -> None:
    query = (
        '{ notificatie(notificatieID: "1") { notificatieID } '
        'notificatie(notificatieID: "1") { eventType } }'
    )
    facts = any_analyser.analyse(request(query))
    assert facts.selected_paths == ("notificatieID", "eventType")


TWO_OPERATIONS = (
    'query Een { notificatie(notificatieID: "1") { notificatieID } } '
    "mutation Twee($i: NotificatieInput!) { zendNotificatie(notificatieInput: $i) "
    "{ notificatieID } }"
)


def test_two_operations_without_operation_name_are_refused(any_analyser: Analyser) -> None:
    with pytest.raises(MultipleOperations) as info:
        any_analyser.analyse(request(TWO_OPERATIONS))
    assert info.value.message == "Only one operation at the time is supported."
    assert info.value.code == "BAD_REQUEST"


@pytest.mark.parametrize("operation_name", ["Een", "Twee", "Drie", None])
def test_two_operations_are_refused_whatever_operation_name_picks(
    any_analyser: Analyser, operation_name: str | None
) -> None:
    # The network's rule (and the only reading every executor agrees on): one operation
    # per document, even when operationName names one of them.
    with pytest.raises(MultipleOperations) as info:
        any_analyser.analyse(request(TWO_OPERATIONS, operation_name=operation_name))
    assert info.value.message == "Only one operation at the time is supported."


def test_operation_name_of_the_one_operation_is_accepted(any_analyser: Analyser) -> None:
    facts = any_analyser.analyse(
        request(
            fixture_query("one_variable"),
            fixture_variables("one_variable_variables"),
            operation_name="ZendNotificatie",
        )
    )
    assert facts.root_field == "zendNotificatie"


def test_operation_name_must_name_an_operation_even_with_one(analyser: Analyser) -> None:
    with pytest.raises(NoOperation):
        analyser.analyse(request(fixture_query("one_variable"), operation_name="Other"))


def test_document_with_only_fragments_has_no_operation(analyser: Analyser) -> None:
    with pytest.raises(NoOperation):
        analyser.analyse(request("fragment F on Query { notificaties { notificatieID } }"))


def test_anonymous_shorthand_query(any_analyser: Analyser) -> None:
    facts = any_analyser.analyse(request('{ notificatie(notificatieID: "7") { notificatieID } }'))
    assert facts.operation_type == "query"
    assert facts.operation_name is None
    assert facts.arguments == {"notificatieID": "7"}


def test_subscription_is_reported_as_such(analyser: Analyser) -> None:
    facts = analyser.analyse(request("subscription S { notificatieOntvangen { notificatieID } }"))
    assert facts.operation_type == "subscription"
    assert facts.root_field == "notificatieOntvangen"


def test_typename_and_nested_paths_are_listed(analyser: Analyser) -> None:
    query = "{ client(id: 1) { __typename naam adres { straat huisnummer } } }"
    facts = analyser.analyse(request(query))
    assert facts.selected_paths == (
        "__typename",
        "naam",
        "adres",
        "adres.straat",
        "adres.huisnummer",
    )


def test_scalar_literals_are_json_like(analyser: Analyser) -> None:
    query = '{ f(i: 1, x: 1.5, b: true, n: null, s: "t", e: KVK, l: [1, [2]], o: {a: {b: [C]}}) }'
    assert analyser.analyse(request(query)).arguments == {
        "i": 1,
        "x": 1.5,
        "b": True,
        "n": None,
        "s": "t",
        "e": "KVK",
        "l": [1, [2]],
        "o": {"a": {"b": ["C"]}},
    }


def test_absent_variable_inside_a_list_is_null(analyser: Analyser) -> None:
    query = 'query Q($a: String) { f(l: [$a, "b"]) }'
    assert analyser.analyse(request(query)).arguments == {"l": [None, "b"]}


def test_facts_of_two_requests_share_no_mutable_values(analyser: Analyser) -> None:
    query = fixture_query("inline_literals")
    first = analyser.analyse(request(query))
    first.arguments["notificatieInput"]["afzenderID"] = "changed"
    second = analyser.analyse(request(query))
    assert second.argument("notificatieInput.afzenderID") == "62253778"
