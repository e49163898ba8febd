"""The ``audit:`` block: which facts the audit trail records under which names, compiled from
real YAML files."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.facts import RouteFacts
from gateway.policy import PolicyLoadError, PolicySet, load_policy_set
from gateway.policy.decision import AuditValue
from tests.fixtures.policy import IWLZ, POLICY_HEAD, Writer, facts, operation, route, token

HEAD = (
    POLICY_HEAD
    + """\
  - id: afzender
    require: {fact: args.in.afzenderID, equals: {fact: token.identifier}}
    reason: afzender_id is not valid
"""
)

ONE_INPUT = """\
audit:
  event_type: args.in.eventType
  afzender: [args.in.afzenderIDType, args.in.afzenderID]
  ontvanger: [args.in.ontvangerIDType, args.in.ontvangerID]
  subjects: {fact: args.in.subjectList, each: item.subject}
  records: {fact: args.in.subjectList, each: item.recordID}
"""

# The same facts, but not all under one input object (the sender from the token, the
# recipient from the route, records from a second list): every value through its getter.
MIXED = """\
audit:
  event_type: args.in.eventType
  afzender: [token.identifier_type, token.identifier]
  ontvanger: [route.deelnemer_id_type, route.deelnemer_id]
  subjects: {fact: args.in.subjectList, each: item.subject}
  records: {fact: args.other, each: item.nested.recordID}
"""


def iwlz_audit(
    event_type: str | None = None,
    afzender: str | None = None,
    ontvanger: str | None = None,
    subjects: tuple[str, ...] = (),
    records: tuple[str, ...] = (),
) -> dict[str, AuditValue]:
    """The values of the iWlz-shaped blocks above, under their names, in their order."""
    return {
        "event_type": event_type,
        "afzender": afzender,
        "ontvanger": ontvanger,
        "subjects": subjects,
        "records": records,
    }


def load(write: Writer, audit: str) -> PolicySet:
    file = write("set/policy.yaml", HEAD + audit)
    return load_policy_set([file])


def notification(**values: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "eventType": "NIEUWE_INDICATIE_ZORGKANTOOR",
        "afzenderIDType": "UZOVI",
        "afzenderID": "5151",
        "ontvangerIDType": "AGB",
        "ontvangerID": "12345678",
        "subjectList": [
            {"subject": "WlzIndicatie/1", "recordID": "rec-1"},
            {"subject": "WlzIndicatie/2", "recordID": "rec-2"},
        ],
    }
    base.update(values)
    return {"in": {k: v for k, v in base.items() if v is not None}}


def test_audit_values_come_from_the_named_facts(write: Writer) -> None:
    decision = load(write, ONE_INPUT).decide(facts(notification()))
    assert decision.allow
    assert decision.audit == iwlz_audit(
        event_type="NIEUWE_INDICATIE_ZORGKANTOOR",
        afzender="UZOVI:5151",
        ontvanger="AGB:12345678",
        subjects=("WlzIndicatie/1", "WlzIndicatie/2"),
        records=("rec-1", "rec-2"),
    )


def test_a_refusal_by_the_policy_carries_the_audit_values_too(write: Writer) -> None:
    decision = load(write, ONE_INPUT).decide(facts(notification(afzenderID="9999")))
    assert not decision.allow and decision.reason == "afzender_id is not valid"
    assert decision.audit is not None
    assert decision.audit["afzender"] == "UZOVI:9999"
    assert decision.audit["records"] == ("rec-1", "rec-2")


def test_cached_refusals_carry_each_requests_own_values(write: Writer) -> None:
    # Refusals are reused per (check, operation); the audit values must not be.
    policy_set = load(write, ONE_INPUT)
    first = policy_set.decide(facts(notification(afzenderID="1", eventType="A")))
    second = policy_set.decide(facts(notification(afzenderID="2", eventType="B")))
    assert (first.rule, first.message) == (second.rule, second.message)
    assert first.audit is not None and second.audit is not None
    assert (first.audit["afzender"], first.audit["event_type"]) == ("UZOVI:1", "A")
    assert (second.audit["afzender"], second.audit["event_type"]) == ("UZOVI:2", "B")


def test_each_takes_one_value_per_item_and_skips_items_without_text(write: Writer) -> None:
    items = [
        {"subject": "s-1", "recordID": "r-1"},
        {"subject": "s-2"},  # no recordID
        {"recordID": 7, "subject": None},  # wrongly typed / null values
        "not an object",
        {"subject": "s-3", "recordID": "r-3"},
    ]
    audit = load(write, ONE_INPUT).decide(facts(notification(subjectList=items))).audit
    assert audit is not None
    assert audit["subjects"] == ("s-1", "s-2", "s-3")
    assert audit["records"] == ("r-1", "r-3")


def test_missing_and_wrongly_typed_values_leave_fields_empty(write: Writer) -> None:
    policy_set = load(write, ONE_INPUT)
    audit = policy_set.decide(
        facts(
            notification(
                eventType=None,
                afzenderID=5151,
                ontvangerIDType=["AGB"],
                subjectList="s-1",
            )
        )
    ).audit
    assert audit == iwlz_audit(None, None, None, (), ())
    for args in ({}, {"in": None}, {"in": "text"}, {"in": [1, 2]}):
        assert policy_set.decide(facts(args)).audit == iwlz_audit()


def test_facts_outside_the_input_object(write: Writer) -> None:
    f = facts(
        notification(),
        op=operation(args={**notification(), "other": [{"nested": {"recordID": "r-9"}}]}),
        token=token(identifier_type="KVK", identifier="62253778"),
        route=route("UZOVI", "5152"),
    )
    assert load(write, MIXED).decide(f).audit == iwlz_audit(
        "NIEUWE_INDICATIE_ZORGKANTOOR",
        "KVK:62253778",
        "UZOVI:5152",
        ("WlzIndicatie/1", "WlzIndicatie/2"),
        ("r-9",),
    )


def test_only_the_names_the_block_chooses_are_recorded(write: Writer) -> None:
    policy_set = load(write, "audit:\n  event_type: args.in.eventType\n")
    assert policy_set.decide(facts(notification())).audit == {
        "event_type": "NIEUWE_INDICATIE_ZORGKANTOOR"
    }


def test_no_audit_block_and_default_deny_carry_no_audit_values(write: Writer) -> None:
    assert load(write, "").decide(facts(notification())).audit is None
    policy_set = load(write, ONE_INPUT)
    other = facts(op=operation("zendMelding", notification()))
    decision = policy_set.decide(other)
    assert decision.rule == "default-deny" and decision.audit is None


def test_explain_carries_the_audit_values(write: Writer) -> None:
    policy_set = load(write, ONE_INPUT)
    allowed = policy_set.decide(facts(notification()), explain=True)
    refused = policy_set.decide(facts(notification(afzenderID="1")), explain=True)
    assert allowed.trace and allowed.audit is not None
    assert allowed.audit["afzender"] == "UZOVI:5151"
    assert refused.audit is not None and refused.audit["afzender"] == "UZOVI:1"


texts = st.one_of(st.none(), st.integers(), st.text(max_size=4), st.lists(st.text(max_size=2)))
items = st.one_of(
    st.none(),
    st.text(max_size=3),
    st.dictionaries(st.sampled_from(["subject", "recordID", "x"]), texts),
)
inputs = st.dictionaries(
    st.sampled_from(
        [
            "eventType",
            "afzenderIDType",
            "afzenderID",
            "ontvangerIDType",
            "ontvangerID",
            "subjectList",
        ]
    ),
    st.one_of(texts, st.lists(items, max_size=4)),
)


def expected(values: Any) -> dict[str, AuditValue]:
    """What the audit trail must record for one input object (only text is recorded)."""
    if not isinstance(values, dict):
        return iwlz_audit()

    def text(key: str) -> str | None:
        v = values.get(key)
        return v if isinstance(v, str) else None

    def pair(prefix: str) -> str | None:
        id_type, ident = text(prefix + "IDType"), text(prefix + "ID")
        return f"{id_type}:{ident}" if id_type is not None and ident is not None else None

    entries = values.get("subjectList")
    entries = [e for e in entries if isinstance(e, dict)] if isinstance(entries, list) else []
    return iwlz_audit(
        text("eventType"),
        pair("afzender"),
        pair("ontvanger"),
        tuple(e["subject"] for e in entries if isinstance(e.get("subject"), str)),
        tuple(e["recordID"] for e in entries if isinstance(e.get("recordID"), str)),
    )


@pytest.fixture(scope="module")
def one_input_set(tmp_path_factory: pytest.TempPathFactory) -> PolicySet:
    file = tmp_path_factory.mktemp("audit") / "policy.yaml"
    file.write_text(HEAD + ONE_INPUT, encoding="utf-8")
    return load_policy_set([file])


@settings(max_examples=300, deadline=None)
@given(values=st.one_of(inputs, texts))
def test_any_input_gives_the_expected_values_and_never_raises(
    one_input_set: PolicySet,
    values: Any,
) -> None:
    assert one_input_set.decide(facts({"in": values})).audit == expected(values)


# ---------------------------------------------------------------------------- the iWlz set


def test_iwlz_melding_records_its_own_input_argument() -> None:
    policy_set = load_policy_set([IWLZ])
    melding = {
        "meldingInput": {
            "eventType": "IWLZFOUTMELDING",
            "afzenderIDType": "AGB",
            "afzenderID": "12345678",
            "ontvangerIDType": "KVK",
            "ontvangerID": "62253778",
            "subjectList": [{"subject": "WlzIndicatie/1", "recordID": "WlzIndicatie/1"}],
        }
    }
    decision = policy_set.decide(
        facts(
            op=operation("zendMelding", melding),
            token=token(
                instantie_type="Zorgaanbieder", identifier_type="AGB", identifier="12345678"
            ),
            route=route("KVK", "62253778", "onderneming"),
        )
    )
    assert decision.allow
    assert decision.audit == iwlz_audit(
        "IWLZFOUTMELDING", "AGB:12345678", "KVK:62253778", ("WlzIndicatie/1",), ("WlzIndicatie/1",)
    )


def test_iwlz_raadpleging_records_who_asked_whose_register() -> None:
    policy_set = load_policy_set([IWLZ])
    register = RouteFacts(
        path="/registers/bemiddelingsregister/graphql",
        audience="/registers/bemiddelingsregister/graphql",
        deelnemer_id_type="",
        deelnemer_id="",
        deelnemer_kind="",
    )
    decision = policy_set.decide(
        facts(
            op=operation(
                "bemiddelingspecificatie",
                {
                    "where": {
                        "bemiddelingspecificatieID": {"eq": "s1"},
                        "instelling": {"eq": "12345678"},
                    }
                },
                op_type="query",
                selected=("bemiddelingspecificatieID",),
            ),
            token=token(
                instantie_type="Zorgaanbieder",
                identifier_type="AGB",
                identifier="12345678",
                scopes=frozenset(
                    {"registers/wlzbemiddelingsregister/bemiddelingen/bemiddeling:read"}
                ),
            ),
            route=register,
        )
    )
    assert decision.allow
    assert decision.audit == iwlz_audit(
        None, "AGB:12345678", "/registers/bemiddelingsregister/graphql", (), ()
    )


# ---------------------------------------------------------------------------- load errors


def load_errors(write: Writer, audit: str) -> list[str]:
    file = write("set/policy.yaml", HEAD + textwrap.dedent(audit))
    with pytest.raises(PolicyLoadError) as info:
        load_policy_set([file])
    return [e.replace(str(file), "policy.yaml") for e in info.value.errors]


def test_unknown_fact_is_a_load_error_with_position(write: Writer) -> None:
    [error] = load_errors(
        write,
        """\
        audit:
          event_type: args.in.eventType
          afzender: [token.identifier_typ, token.identifier]
        """,
    )
    assert error.startswith("policy.yaml:12:14: unknown fact 'token.identifier_typ'")
    assert "known facts: token.instantie_type" in error


def test_every_bad_fact_in_the_block_is_reported(write: Writer) -> None:
    errors = load_errors(
        write,
        """\
        audit:
          event_type: operation.kind
          records: {fact: args.in.subjectList, each: token.nope}
        """,
    )
    assert len(errors) == 2
    assert errors[0].startswith("policy.yaml:11:15: unknown fact 'operation.kind'")
    assert errors[1].startswith("policy.yaml:12:46: unknown fact 'token.nope'")


def test_item_outside_each_is_a_load_error(write: Writer) -> None:
    [error] = load_errors(write, "audit:\n  event_type: item.eventType\n")
    assert error.startswith("policy.yaml:11:15: 'item.eventType' is only known inside")


def test_audit_block_shape_is_checked_by_the_schema(write: Writer) -> None:
    errors = load_errors(
        write,
        """\
        audit:
          afzender: [args.in.afzenderID]
          subjects: {list: args.in.subjectList, each: item.subject}
        """,
    )
    assert errors[0].startswith(
        "policy.yaml:11:13: audit.afzender takes exactly 2 items, "
        "got 1 ([identifier type fact, identifier fact]"
    )
    assert "policy.yaml:12:14: unknown key 'list' in audit.subjects" in "\n".join(errors)


def test_a_name_must_be_an_identifier_and_not_a_key_of_the_decision_log(write: Writer) -> None:
    errors = load_errors(
        write,
        """\
        audit:
          Afzender-ID: token.identifier
          outcome: args.in.eventType
        """,
    )
    assert errors[0].startswith("policy.yaml:11:3: audit name 'Afzender-ID' is not valid")
    assert errors[1].startswith(
        "policy.yaml:12:3: audit name 'outcome' is a key the decision log writes itself"
    )


# ---------------------------------------------------------------------------- open names


def test_any_names_record_the_facts_they_name(write: Writer) -> None:
    policy_set = load(
        write,
        """\
audit:
  sender: token.identifier
  recipient: [route.deelnemer_id_type, route.deelnemer_id]
  records: {fact: args.in.subjectList, each: item.recordID}
""",
    )
    f = facts(notification(), token=token(identifier="62253778"), route=route("UZOVI", "5152"))
    assert policy_set.decide(f).audit == {
        "sender": "62253778",
        "recipient": "UZOVI:5152",
        "records": ("rec-1", "rec-2"),
    }


def test_every_decision_of_a_set_carries_every_name_of_the_set(write: Writer) -> None:
    # Two policies naming different things: each decision has the names of both, in order
    # of first use, a name the deciding policy lacks without a value (null, or [] for a list).
    write(
        "set/melding.yaml",
        HEAD.replace("p\n", "m\n", 1).replace("zendNotificatie", "zendMelding")
        + "audit:\n  kind: args.in.eventType\n  records: {fact: args.in.subjectList, "
        "each: item.recordID}\n",
    )
    file = write(
        "set/policy.yaml", HEAD + "audit:\n  sender: token.identifier\n  kind: args.in.eventType\n"
    )
    policy_set = load_policy_set([file.parent])
    assert policy_set.audit_blank == {"kind": None, "records": (), "sender": None}
    decision = policy_set.decide(facts(notification(), token=token(identifier="5151")))
    assert decision.audit == {
        "kind": "NIEUWE_INDICATIE_ZORGKANTOOR",
        "records": (),
        "sender": "5151",
    }


def test_schema_files_stay_identical() -> None:
    repo = Path(__file__).resolve().parents[2]
    assert (repo / "policies" / "schema.json").read_bytes() == (
        repo / "gateway" / "policy" / "schema.json"
    ).read_bytes()


def test_token_and_route_values_are_keyed_by_the_attributes_they_read() -> None:
    """A raadpleging's block reads one token or route attribute per path: those attributes
    key its shared audited decision; a block reading the input (the notificatie) has none."""
    policy_set = load_policy_set([IWLZ])
    raadpleging = policy_set.policy_for("query", "bemiddelingspecificatie")
    notificatie = policy_set.policy_for("mutation", "zendNotificatie")
    assert raadpleging is not None and raadpleging.audit_block is not None
    assert notificatie is not None and notificatie.audit_block is not None
    assert raadpleging.audit_block.attributes() == (
        "token.identifier_type",
        "token.identifier",
        "route.path",
    )
    assert notificatie.audit_block.attributes() is None
    assert notificatie._audit_key is None
    query = operation("bemiddelingspecificatie", {}, op_type="query")
    one = facts(token=token(identifier_type="AGB", identifier="1"), op=query)
    two = facts(token=token(identifier_type="AGB", identifier="2"), op=query)
    assert raadpleging.decide(one).audit != raadpleging.decide(two).audit
    assert raadpleging.decide(one) is raadpleging.decide(one)
    assert raadpleging.decide(one).audit == raadpleging.audit(one)  # type: ignore[misc]
