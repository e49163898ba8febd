"""Each construct of the policy language, compiled from real YAML files and decided."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from gateway.facts import DecisionInput
from gateway.policy import Decision, PolicyLoadError, PolicySet, load_policy_set
from tests.fixtures.policy import Writer, facts, operation, policy_text, route, token

CATALOGUE = """
catalogue: data
lists:
  soorten: [UZOVI, AGB]
  ids: [5151, "5152"]
  leeg: []
tables:
  instanties:
    - {instantie_type: Zorgkantoor, id_type: UZOVI}
    - {instantie_type: Zorgaanbieder, id_type: AGB}
  gebonden:
    columns: [event_type, id]
    rows: []
"""


def load(
    write: Writer,
    checks: str,
    *,
    data: str = CATALOGUE,
    env: str | None = None,
    overlay: str | None = None,
    **kw: Any,
) -> PolicySet:
    write("set/policy.yaml", policy_text(checks, **kw))
    write("set/catalogus/data.yaml", data)
    if overlay:
        write("set/omgevingen/o.yaml", overlay)
    return load_policy_set([write("set/.keep", "").parent], environment=env)


def decide(policy_set: PolicySet, f: DecisionInput) -> Decision:
    return policy_set.decide(f)


def test_equals_literal(write: Writer) -> None:
    s = load(
        write,
        """
      - id: c
        require: {fact: args.x, equals: A}
        reason: x is not A
    """,
    )
    assert s.decide(facts({"x": "A"})).allow
    d = s.decide(facts({"x": "B"}))
    assert (d.allow, d.status, d.code, d.reason) == (
        False,
        400,
        "GRAPHQL_VALIDATION_FAILED",
        "x is not A",
    )


def test_equals_number_literal_is_compared_as_text(write: Writer) -> None:
    s = load(
        write,
        """
      - id: c
        require: {fact: args.id, equals: 5151}
    """,
    )
    assert s.decide(facts({"id": "5151"})).allow
    assert not s.decide(facts({"id": 5151})).allow


def test_equals_true_does_not_match_one(write: Writer) -> None:
    s = load(
        write,
        """
      - id: c
        require: {fact: args.flag, equals: true}
    """,
    )
    assert s.decide(facts({"flag": True})).allow
    assert not s.decide(facts({"flag": 1})).allow


def test_equals_another_fact(write: Writer) -> None:
    s = load(
        write,
        """
      - id: c
        require: {fact: args.input.afzenderID, equals: {fact: token.identifier}}
    """,
    )
    assert s.decide(facts({"input": {"afzenderID": "5151"}})).allow
    assert not s.decide(facts({"input": {"afzenderID": "5152"}})).allow


def test_equals_fact_never_matches_two_missing_values(write: Writer) -> None:
    s = load(
        write,
        """
      - id: c
        require: {fact: args.afzenderID, equals: {fact: token.identifier}}
    """,
    )
    assert s.decide(facts({"afzenderID": "5151"})).allow
    assert s.decide(facts({}, token=token(identifier=None))).rule == "p/c"


def test_in_named_list_and_inline_list(write: Writer) -> None:
    s = load(
        write,
        """
      - id: a
        require: {fact: args.t, in: soorten}
      - id: b
        require: {fact: args.id, in: [5151, "5152"]}
    """,
    )
    assert s.decide(facts({"t": "AGB", "id": "5152"})).allow
    assert s.decide(facts({"t": "KVK", "id": "5152"})).rule == "p/a"
    assert s.decide(facts({"t": "AGB", "id": "1"})).rule == "p/b"


def test_in_with_a_list_value_does_not_match_or_raise(write: Writer) -> None:
    s = load(
        write,
        """
      - id: a
        require: {fact: args.t, in: soorten}
    """,
    )
    assert s.decide(facts({"t": "AGB"})).allow
    assert (s.decide(facts({"t": ["AGB"]})).rule, s.decide(facts({"t": {"x": 1}})).rule) == (
        "p/a",
        "p/a",
    )


def test_present_true_and_false(write: Writer) -> None:
    s = load(
        write,
        """
      - id: a
        require: {fact: token.instantie_type, present: true}
      - id: b
        require: {fact: args.kenmerk, present: false}
    """,
    )
    assert s.decide(facts({})).allow
    assert s.decide(facts({}, token=token(instantie_type=None))).rule == "p/a"
    assert s.decide(facts({"kenmerk": "abc"})).rule == "p/b"
    assert s.decide(facts({"kenmerk": ""})).allow


def test_pattern_matches_whole_value(write: Writer) -> None:
    s = load(
        write,
        """
      - id: a
        require: {fact: args.id, pattern: "[0-9]{4}"}
    """,
    )
    assert s.decide(facts({"id": "5151"})).allow
    assert not s.decide(facts({"id": "51512"})).allow
    assert not s.decide(facts({"id": 5151})).allow


def test_format_date_time_and_date(write: Writer) -> None:
    s = load(
        write,
        """
      - id: a
        require: {fact: args.ts, format: date-time}
      - id: b
        require: {fact: args.d, format: date}
    """,
    )
    ok = {"d": "2024-07-02"}
    for ts in (
        "2016-07-20T17:30:15Z",
        "2016-07-20T17:30:15+05:30",
        "2016-07-20T17:30:15.234890+05:30",
    ):
        assert s.decide(facts({**ok, "ts": ts})).allow, ts
    for bad in ("2024-07-02", "2024-13-02T00:00:00Z", "2024-07-02T00:00:00", "nu", None):
        assert s.decide(facts({**ok, "ts": bad})).rule == "p/a", bad
    assert s.decide(facts({"ts": "2024-07-02T00:00:00Z", "d": "2024-02-30"})).rule == "p/b"


def test_count_min_and_max(write: Writer) -> None:
    s = load(
        write,
        """
      - id: a
        require: {fact: args.list, count: {min: 1, max: 2}}
    """,
    )
    assert s.decide(facts({"list": [1]})).allow
    assert not s.decide(facts({"list": []})).allow
    assert not s.decide(facts({"list": [1, 2, 3]})).allow
    assert not s.decide(facts({"list": "ab"})).allow


def test_every_item_checks_each_element(write: Writer) -> None:
    s = load(
        write,
        """
      - id: a
        require:
          fact: args.subjectList
          every:
            all:
              - {fact: item.subject, present: true}
              - {fact: item.recordID, pattern: "WlzIndicatie/.+"}
    """,
    )
    good = {"subject": "s", "recordID": "WlzIndicatie/1"}
    assert s.decide(facts({"subjectList": [good, good]})).allow
    assert not s.decide(facts({"subjectList": [good, {"subject": "s"}]})).allow
    assert not s.decide(facts({"subjectList": [good, "not a mapping"]})).allow
    assert not s.decide(facts({"subjectList": None})).allow


def test_some_item(write: Writer) -> None:
    s = load(
        write,
        """
      - id: a
        require: {fact: args.tags, some: {fact: item, equals: X}}
    """,
    )
    assert s.decide(facts({"tags": ["A", "X"]})).allow
    assert not s.decide(facts({"tags": ["A"]})).allow


def test_subset_of_selected_fields_no_inheritance(write: Writer) -> None:
    s = load(
        write,
        """
      - id: a
        require: {fact: operation.selected, subset_of: [id, client, client.naam]}
    """,
        field="clienten",
        op="query",
    )
    allowed = operation("clienten", op_type="query", selected=("id", "client", "client.naam"))
    nested = operation("clienten", op_type="query", selected=("client", "client.bsn"))
    assert s.decide(facts(op=allowed)).allow
    assert not s.decide(facts(op=nested)).allow


def test_subset_of_on_an_input_object_tests_its_keys(write: Writer) -> None:
    s = load(
        write,
        """
      - id: a
        require: {fact: args.where, subset_of: [agb]}
    """,
    )
    assert s.decide(facts({"where": {"agb": "1"}})).allow
    assert not s.decide(facts({"where": {"agb": "1", "bsn": "2"}})).allow


def test_contains_on_scopes(write: Writer) -> None:
    s = load(
        write,
        """
      - id: a
        require: {fact: token.scopes, contains: "organisaties/zorgkantoor/x"}
    """,
    )
    assert s.decide(facts({}, token=token(scopes=frozenset({"organisaties/zorgkantoor/x"})))).allow
    assert not s.decide(facts({})).allow


def test_row_lookup_over_a_table(write: Writer) -> None:
    s = load(
        write,
        """
      - id: a
        require:
          row: instanties
          where:
            instantie_type: {fact: token.instantie_type}
            id_type: {fact: args.afzenderIDType}
    """,
    )
    assert s.decide(facts({"afzenderIDType": "UZOVI"})).allow
    assert not s.decide(facts({"afzenderIDType": "AGB"})).allow
    assert not s.decide(facts({"afzenderIDType": ["UZOVI"]})).allow


def test_row_with_a_literal_column(write: Writer) -> None:
    s = load(
        write,
        """
      - id: a
        require: {row: instanties, where: {instantie_type: Zorgaanbieder, id_type: {fact: args.t}}}
    """,
    )
    assert s.decide(facts({"t": "AGB"})).allow
    assert not s.decide(facts({"t": "UZOVI"})).allow


def test_all_any_not(write: Writer) -> None:
    s = load(
        write,
        """
      - id: a
        require:
          all:
            - any:
                - {fact: args.t, equals: A}
                - {fact: args.t, equals: B}
            - not: {fact: args.u, equals: X}
    """,
    )
    assert s.decide(facts({"t": "B", "u": "Y"})).allow
    assert not s.decide(facts({"t": "C", "u": "Y"})).allow
    assert not s.decide(facts({"t": "A", "u": "X"})).allow


def test_when_selects_the_requests_a_check_applies_to(write: Writer) -> None:
    s = load(
        write,
        """
      - id: strict
        when: {fact: route.strict_input, equals: true}
        require: {fact: args.ts, format: date-time}
    """,
    )
    assert s.decide(facts({"ts": "2024-07-02"})).allow
    assert not s.decide(facts({"ts": "2024-07-02"}, route=route(strict=True))).allow


def test_first_failing_check_in_order_decides(write: Writer) -> None:
    s = load(
        write,
        """
      - id: one
        require: {fact: args.a, present: true}
        reason: first
      - id: two
        require: {fact: args.b, present: true}
        reason: second
    """,
    )
    d = s.decide(facts({}))
    assert (d.rule, d.reason) == ("p/one", "first")
    assert d.location is not None and d.location.endswith("policy.yaml:7")


def test_message_template_capitalises_the_operation_name(write: Writer) -> None:
    refusal = (
        "refusal:\n  status: 400\n  code: GRAPHQL_VALIDATION_FAILED\n"
        '  message: "{Operation} {type}: {reason} ({operation})"\n'
    )
    s = load(
        write,
        """
      - id: a
        require: {fact: args.x, present: true}
        reason: x ontbreekt
    """,
        refusal=refusal,
    )
    named = operation(name="stuurIets")
    assert s.decide(facts(op=named)).message == "StuurIets mutation: x ontbreekt (stuurIets)"
    assert s.decide(facts({})).message == "ZendNotificatie mutation: x ontbreekt (zendNotificatie)"


def test_check_without_reason_is_policy_access_denied(write: Writer) -> None:
    s = load(
        write,
        """
      - id: a
        require: {fact: args.x, present: true}
    """,
    )
    d = s.decide(facts({}))
    assert (d.status, d.code, d.message) == (403, "FORBIDDEN", "Policy Access Denied")


def test_check_overrides_status_code_and_message(write: Writer) -> None:
    s = load(
        write,
        """
      - id: a
        require: {fact: args.x, present: true}
        reason: nope
        status: 422
        code: UNPROCESSABLE
        message: "{operation}: {reason}"
    """,
    )
    d = s.decide(facts({}))
    assert (d.status, d.code, d.message) == (422, "UNPROCESSABLE", "zendNotificatie: nope")


def test_no_policy_for_the_operation_is_default_deny(write: Writer) -> None:
    s = load(
        write,
        """
      - id: a
        require: {fact: args.x, present: true}
    """,
    )
    d = s.decide(facts(op=operation("iets")))
    assert (d.allow, d.status, d.code, d.message, d.rule) == (
        False,
        403,
        "FORBIDDEN",
        "Policy Access Denied",
        "default-deny",
    )
    query = operation("zendNotificatie", op_type="query")
    assert s.decide(facts(op=query)).rule == "default-deny"


def test_policy_may_apply_to_several_fields(write: Writer) -> None:
    s = load(
        write,
        """
      - id: a
        require: {fact: args.x, present: true}
    """,
        field="[zendNotificatie, zendMelding]",
    )
    assert s.decide(facts({"x": 1}, op=operation("zendMelding", {"x": 1}))).allow
    assert s.decide(facts({"x": 1})).allow


def test_raw_claims_and_route_and_operation_facts(write: Writer) -> None:
    s = load(
        write,
        """
      - id: a
        require:
          all:
            - {fact: token.claims.instantie_naam, equals: Zorgkantoor Noord}
            - {fact: route.deelnemer_kind, equals: zorgkantoor}
            - {fact: operation.display_name, equals: zendNotificatie}
            - {fact: token.actor, equals: "uzovi:5151"}
    """,
    )
    tok = token(claims={"instantie_naam": "Zorgkantoor Noord"}, actor="uzovi:5151")
    assert s.decide(facts({}, token=tok)).allow
    assert not s.decide(facts({})).allow


def test_overlay_changes_lists_and_tables_per_environment(write: Writer) -> None:
    overlay = """
    overlay: productie
    lists:
      soorten: {add: [KVK], remove: [AGB]}
    tables:
      gebonden:
        add: [{event_type: E, id: "1"}]
    """
    checks = """
      - id: a
        require: {fact: args.t, in: soorten}
      - id: b
        when: {row: gebonden, where: {event_type: {fact: args.e}}}
        require: {row: gebonden, where: {event_type: {fact: args.e}, id: {fact: args.id}}}
    """
    base = load(write, checks, overlay=overlay)
    prod = load(write, checks, overlay=overlay, env="productie")
    assert base.decide(facts({"t": "AGB", "e": "E", "id": "2"})).allow
    assert not base.decide(facts({"t": "KVK"})).allow
    assert prod.decide(facts({"t": "KVK", "e": "E", "id": "1"})).allow
    assert prod.decide(facts({"t": "KVK", "e": "E", "id": "2"})).rule == "p/b"
    assert prod.decide(facts({"t": "AGB"})).rule == "p/a"
    assert base.version != prod.version
    assert prod.environments == ("productie",)


def test_explain_visits_every_check_and_reports_the_first_failure(write: Writer) -> None:
    s = load(
        write,
        """
      - id: one
        require: {fact: args.a, equals: A}
        reason: first
      - id: skipped
        when: {fact: route.strict_input, equals: true}
        require: {fact: args.b, present: true}
      - id: two
        require: {fact: args.c, in: soorten}
        reason: second
    """,
    )
    d = s.decide(facts({"a": "B", "c": "X"}), explain=True)
    assert d.reason == "first"
    outcomes = [(step.rule, step.outcome) for step in d.trace]
    assert outcomes == [
        ("environment", "matched"),
        ("p", "matched"),
        ("p/one", "failed"),
        ("p/skipped", "skipped"),
        ("p/two", "failed"),
    ]
    assert "args.a is 'B', must equal 'A'" in d.trace[2].detail
    assert "list soorten" in d.trace[4].detail


def test_version_is_a_content_hash(write: Writer, tmp_path: Path) -> None:
    checks = """
      - id: a
        require: {fact: args.a, present: true}
    """
    first = load(write, checks)
    again = load(write, checks)
    changed = load(write, checks.replace("args.a", "args.b"))
    assert first.version == again.version
    assert first.version != changed.version
    assert first.version.startswith("sha256:")


GROUPS = CATALOGUE.replace("lists:\n", "lists:\n  Kop: [id, naam]\n  Adres: [straat, plaats]\n")


def test_fields_allows_groups_and_fields_per_parent_path(write: Writer) -> None:
    s = load(
        write,
        """
      - id: velden
        require:
          fact: operation.selected
          fields:
            .: [Kop, client]
            client: [Kop, adres]
            "*.adres": [Adres]
        reason: "{found} is not readable"
        status: 403
        code: FORBIDDEN
    """,
        data=GROUPS,
        field="c",
        op="query",
    )

    def selected(*paths: str) -> DecisionInput:
        return facts(op=operation("c", op_type="query", selected=paths))

    assert s.decide(
        selected("id", "client", "client.naam", "client.adres", "client.adres.plaats")
    ).allow
    # The same name at another path is not allowed: a group holds where it is granted.
    d = s.decide(selected("id", "client", "client.straat"))
    assert (d.allow, d.status, d.reason) == (False, 403, "client.straat is not readable")
    d = s.decide(selected("naam", "geheim"))
    assert (d.reason, d.message) == ("geheim is not readable", "geheim is not readable")
    # Decided again from the remembered verdict: the same answer.
    assert s.decide(selected("naam", "geheim")).reason == "geheim is not readable"
    explained = s.decide(selected("naam", "geheim"), explain=True)
    assert "geheim is not allowed there" in explained.trace[-1].detail


def test_fields_names_a_misspelt_group_at_load(write: Writer) -> None:
    with pytest.raises(PolicyLoadError) as info:
        load(
            write,
            """
          - id: velden
            require: {fact: operation.selected, fields: {.: [Kopp]}}
        """,
            data=GROUPS,
        )
    assert "unknown list 'Kopp'" in info.value.errors[0]
    assert "did you mean 'Kop'" in info.value.errors[0]


def test_not_some_names_the_item_it_found(write: Writer) -> None:
    s = load(
        write,
        """
      - id: nesting
        require:
          not:
            {fact: operation.selected, some: {fact: item, pattern: "(.+\\\\.)?x\\\\.y(\\\\..+)?"}}
        reason: "{found} may not be nested"
    """,
        field="c",
        op="query",
    )
    ok = operation("c", op_type="query", selected=("x", "x.z"))
    bad = operation("c", op_type="query", selected=("a", "a.x", "a.x.y", "a.x.y.z"))
    assert s.decide(facts(op=ok)).allow
    assert s.decide(facts(op=bad)).reason == "a.x.y may not be nested"


def test_not_before_compares_dates_and_date_times(write: Writer) -> None:
    s = load(
        write,
        """
      - id: venster
        require: {fact: args.eind, not_before: {fact: args.begin}}
    """,
    )
    assert s.decide(facts({"begin": "2025-01-01", "eind": "2025-01-01"})).allow
    assert s.decide(facts({"begin": "2025-01-01", "eind": "2025-12-31"})).allow
    assert not s.decide(facts({"begin": "2025-01-01", "eind": "2024-12-31"})).allow
    assert not s.decide(facts({"begin": "2025-01-01", "eind": "morgen"})).allow
    assert not s.decide(facts({"begin": "2025-01-01", "eind": "2025-01-02T00:00:00Z"})).allow
    # Date-times are instants: 01:00+01:00 is midnight UTC.
    assert s.decide(
        facts({"begin": "2025-01-01T00:00:00Z", "eind": "2025-01-01T01:00:00+01:00"})
    ).allow
    assert not s.decide(
        facts({"begin": "2025-01-01T00:00:00Z", "eind": "2025-01-01T00:59:59+01:00"})
    ).allow


def test_date_window_ties_a_nested_filter_to_the_root_dates(write: Writer) -> None:
    s = load(
        write,
        """
      - id: venster
        require:
          fact: args.lijst
          date_window: {end: einddatum, from: [{fact: args.begin}, {fact: args.moment}]}
    """,
    )
    root = {"begin": "2025-01-01", "moment": "2024-12-15T23:30:00-01:00"}

    def window(where: Any, **more: Any) -> Decision:
        return s.decide(facts({**root, **more, "lijst": where}))

    open_or_from = [{"einddatum": {"eq": None}}, {"einddatum": {"gte": "2025-01-01"}}]
    assert window({"or": open_or_from}).allow
    assert window({"and": [{"or": open_or_from}, {"ingangsdatum": {"ngt": "2025-12-31"}}]}).allow
    # The date-time's own calendar day (as written) opens the window too; a later day narrows.
    assert window({"or": [{"einddatum": {"gte": "2024-12-15"}}]}).allow
    assert window({"or": [{"einddatum": {"gt": "2026-01-01"}}]}).allow
    # Earlier than every from value: a wider window than the root filter allows.
    assert not window({"or": [{"einddatum": {"gte": "2024-12-14"}}]}).allow
    assert not window(
        {"or": [{"einddatum": {"eq": None}}, {"einddatum": {"eq": "2000-01-01"}}]}
    ).allow
    # An alternative on another field, an unknown bound, no or, no where: refused.
    assert not window({"or": [{"einddatum": {"eq": None}}, {"rol": {"neq": "x"}}]}).allow
    assert not window({"or": [{"einddatum": {"lt": "2030-01-01"}}]}).allow
    assert not window({"einddatum": {"gte": "2025-01-01"}}).allow
    assert not window(None).allow
    assert not window({"or": [{"einddatum": {"gte": "morgen"}}]}).allow
    # Without a root date no dated alternative can be in the window (fail closed).
    assert not s.decide(facts({"lijst": {"or": open_or_from}})).allow
    explained = s.decide(
        facts({**root, "lijst": {"or": [{"einddatum": {"gte": "2020-01-01"}}]}}), explain=True
    )
    assert any("before the window" in step.detail for step in explained.trace)


def closed_window(write: Writer, begin: str, until: str) -> PolicySet:
    """A policy whose one check is a closed date window on ``args.lijst``."""
    return load(
        write,
        f"""
      - id: venster
        require:
          fact: args.lijst
          date_window:
            end: einddatum
            from: [{{fact: args.{begin}}}]
            start: ingangsdatum
            until: [{until}]
    """,
    )


def test_date_window_until_bounds_the_start_of_a_closed_window(write: Writer) -> None:
    s = closed_window(write, "begin", '{fact: args.eind, years: 1, day: "05-31"}')
    window = {"or": [{"einddatum": {"eq": None}}, {"einddatum": {"gte": "2024-02-29"}}]}

    def decide(eind: str | None, bound: dict[str, Any] | None) -> bool:
        lijst = {**window, **({"ingangsdatum": bound} if bound else {})}
        return s.decide(facts({"begin": "2024-02-29", "eind": eind, "lijst": lijst})).allow

    # An open window (no einddatum) needs no upper bound; a closed one does.
    assert decide(None, None)
    assert not decide("2024-12-31", None)
    # 31 May of the year after the einddatum, inclusive; lt and lte count as ngt.
    assert decide("2024-12-31", {"ngt": "2025-05-31"})
    assert decide("2024-12-31", {"lt": "2025-01-01"})
    assert not decide("2024-12-31", {"ngt": "2025-06-01"})
    assert not decide("2024-12-31", {"gte": "2025-01-01"})
    # As an item of and: too.
    lijst = {"and": [window, {"ingangsdatum": {"lte": "2025-05-31"}}]}
    assert s.decide(facts({"begin": "2024-02-29", "eind": "2024-12-31", "lijst": lijst})).allow


def test_date_window_until_adds_years_on_29_february(write: Writer) -> None:
    s = closed_window(write, "eind", "{fact: args.eind, years: 1}")

    def decide(bound: str) -> bool:
        lijst = {"or": [{"einddatum": {"eq": None}}], "ingangsdatum": {"ngt": bound}}
        return s.decide(facts({"eind": "2024-02-29", "lijst": lijst})).allow

    assert decide("2025-02-28")
    assert not decide("2025-03-01")


def test_date_window_needs_end_and_from(write: Writer) -> None:
    with pytest.raises(PolicyLoadError, match="from"):
        load(
            write,
            """
      - id: venster
        require: {fact: args.lijst, date_window: {end: einddatum}}
    """,
        )


def test_some_on_a_set_of_scopes(write: Writer) -> None:
    s = load(
        write,
        """
      - id: a
        require: {fact: token.scopes, some: {fact: item, in: soorten}}
    """,
    )
    assert s.decide(facts({}, token=token(scopes=frozenset({"x", "AGB"})))).allow
    assert not s.decide(facts({}, token=token(scopes=frozenset({"x"})))).allow
