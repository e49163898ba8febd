"""A policy's ``lookups:`` (the policy information point as data) and the ``overlaps:``
operator: what the loader accepts and refuses (located), which requests want a lookup,
how yields are read from an answer, and how the facts decide, offline and in
``policy explain --extra``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from gateway.cli import main
from gateway.facts import DecisionInput
from gateway.policy import load_policy_set
from gateway.policy.errors import PolicyLoadError
from gateway.policy.lookups import AnswerShapeError, LookupSpec
from tests.fixtures.policy import IWLZ, REPO, operation, route, token

LOOKUP = """\
policy: p
applies_to: {graphql: {operation: query, field: regiehouder}}
lookups:
  - name: eigen
    when: {fact: token.instantie_type, equals: Zorgkantoor}
    source: {route: /registers/bemiddelingsregister/graphql}
    request:
      query: |
        query Pip($id: UUID!, $uzovi: String!) {
          regiehouder(where: {regiehouderID: {eq: $id}}) {
            ingangsdatum einddatum
            bemiddeling { bemiddelingspecificatie(where: {uitvoerendZorgkantoor: {eq: $uzovi}}) {
              toewijzingIngangsdatum toewijzingEinddatum vaststellingMoment } }
          }
        }
      variables: {id: args.where.regiehouderID.eq, uzovi: token.identifier}
    yields:
      gevraagd: data.regiehouder
      eigen: data.regiehouder.bemiddeling.bemiddelingspecificatie
checks:
  - id: overlap
    require:
      fact: extra.eigen.eigen
      some:
        fact: item
        overlaps:
          period: {from: [toewijzingIngangsdatum, vaststellingMoment], through: toewijzingEinddatum}
          with: {fact: extra.eigen.gevraagd}
          with_period: {from: [ingangsdatum], through: einddatum}
  - id: toegang
    require:
      fact: extra.eigen.eigen
      some:
        fact: item
        overlaps:
          period: {through: toewijzingEinddatum, extended_to: "05-31"}
          with: {fact: extra.eigen.peildatum}
"""


def write(tmp_path: Path, text: str, name: str = "p.yaml") -> Path:
    (tmp_path / name).write_text(text, encoding="utf-8")
    return tmp_path


def load_errors(tmp_path: Path, text: str) -> list[str]:
    with pytest.raises(PolicyLoadError) as caught:
        load_policy_set([write(tmp_path, text)])
    return caught.value.errors


def spec(tmp_path: Path) -> LookupSpec:
    (policy,) = load_policy_set([write(tmp_path, LOOKUP)]).policies
    (lookup,) = policy.lookups
    return lookup


def regiehouder(args: dict[str, Any], **kw: Any) -> DecisionInput:
    op = operation("regiehouder", args, op_type="query")
    return DecisionInput(kw.get("token") or token(), op, route(), kw.get("extra") or {})


WHERE = {"where": {"regiehouderID": {"eq": "R1"}}}


def test_a_lookup_is_compiled_with_its_source_variables_and_yields(tmp_path: Path) -> None:
    lookup = spec(tmp_path)
    assert (lookup.name, lookup.policy_id, lookup.route) == (
        "eigen",
        "p",
        "/registers/bemiddelingsregister/graphql",
    )
    assert lookup.location.endswith("p.yaml:4")
    assert lookup.variables_for(regiehouder(WHERE)) == {"id": "R1", "uzovi": "5151"}


def test_a_lookup_is_wanted_only_when_its_when_holds_and_every_variable_has_a_value(
    tmp_path: Path,
) -> None:
    lookup = spec(tmp_path)
    assert lookup.wanted(regiehouder(WHERE))
    assert not lookup.wanted(regiehouder({"where": {}}))  # no regiehouderID: no round trip
    assert not lookup.wanted(regiehouder(WHERE, token=token(instantie_type="Zorgaanbieder")))


def test_yields_walk_every_list_and_null_reaches_nothing(tmp_path: Path) -> None:
    lookup = spec(tmp_path)
    own = {"toewijzingIngangsdatum": "2025-01-01", "toewijzingEinddatum": None}
    answer = {
        "data": {
            "regiehouder": [
                {"ingangsdatum": "2025-01-01", "einddatum": None, "bemiddeling": None},
                {"ingangsdatum": "2025-02-01", "einddatum": None,
                 "bemiddeling": {"bemiddelingspecificatie": [own, own]}},
            ]
        }
    }  # fmt: skip
    found = lookup.extract(answer)
    assert [r["ingangsdatum"] for r in found["gevraagd"]] == ["2025-01-01", "2025-02-01"]
    assert found["eigen"] == [own, own]
    assert lookup.extract({"data": {"regiehouder": []}}) == {"gevraagd": [], "eigen": []}


@pytest.mark.parametrize(
    ("answer", "why"),
    [
        ({"data": None, "errors": [{"message": "boom"}]}, "GraphQL errors"),
        ({"data": {"regiehouder": []}, "errors": [{"message": "partial"}]}, "GraphQL errors"),
        ({"errors": []}, "no data object"),
        ([], "not a JSON object"),
        ({"data": {"bemiddeling": []}}, "no 'regiehouder'"),
        ({"data": {"regiehouder": [{"ingangsdatum": "x"}]}}, "no 'bemiddeling'"),
    ],
)
def test_an_answer_without_the_asked_shape_is_an_error(
    tmp_path: Path, answer: Any, why: str
) -> None:
    with pytest.raises(AnswerShapeError, match=why):
        spec(tmp_path).extract(answer)


OWN_OPEN = {"toewijzingIngangsdatum": "2025-01-01", "toewijzingEinddatum": None}
OWN_2025 = {
    "toewijzingIngangsdatum": "2025-06-01",
    "toewijzingEinddatum": "2025-12-31",
    "vaststellingMoment": "2025-05-20T09:30:00+02:00",
}
R1 = {"ingangsdatum": "2025-01-01", "einddatum": None}


@pytest.mark.parametrize(
    ("eigen", "gevraagd", "peildatum", "rule"),
    [
        ([OWN_OPEN], [R1], "2030-01-01", "p"),
        ([OWN_2025], [R1], "2026-05-31", "p"),
        ([OWN_2025], [R1], "2026-06-01", "p/toegang"),
        ([], [R1], "2026-01-01", "p/overlap"),
        ([OWN_OPEN], [], "2026-01-01", "p/overlap"),
        ([OWN_2025], [{"ingangsdatum": "2026-01-01"}], "2026-01-02", "p/overlap"),
        # The own period counts from the earlier vaststellingMoment (a date-time: its date).
        ([{**OWN_2025, "toewijzingIngangsdatum": "2026-02-01"}],
         [{"ingangsdatum": "2025-05-01", "einddatum": "2025-05-20"}], "2026-01-01", "p"),
        ([{**OWN_2025, "toewijzingIngangsdatum": "2026-02-01"}],
         [{"ingangsdatum": "2025-05-01", "einddatum": "2025-05-19"}], "2026-01-01", "p/overlap"),
        # An own record without any readable start date overlaps nothing.
        ([{"toewijzingIngangsdatum": "gisteren", "toewijzingEinddatum": None}], [R1],
         "2026-01-01", "p/overlap"),
    ],
)  # fmt: skip
def test_overlaps_decides_on_the_looked_up_periods(
    tmp_path: Path, eigen: list[Any], gevraagd: list[Any], peildatum: str, rule: str
) -> None:
    policy_set = load_policy_set([write(tmp_path, LOOKUP)])
    extra = {"eigen": {"eigen": eigen, "gevraagd": gevraagd, "peildatum": peildatum}}
    decision = policy_set.decide(regiehouder(WHERE, extra=extra))
    assert decision.rule == rule, decision.message


def test_without_the_looked_up_facts_the_rule_refuses(tmp_path: Path) -> None:
    policy_set = load_policy_set([write(tmp_path, LOOKUP)])
    assert policy_set.decide(regiehouder(WHERE)).rule == "p/overlap"


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        (
            "variables: {id: args.where.regiehouderID.eq, uzovi: token.identifier}",
            "variables: {id: args.where.regiehouderID.eq, uzovi: token.identifier, x: token.actor}",
            "p.yaml:16:77: variable 'x' is not declared by the query (declared: $id, $uzovi)",
        ),
        (
            "variables: {id: args.where.regiehouderID.eq, uzovi: token.identifier}",
            "variables: {id: args.where.regiehouderID.eq}",
            "p.yaml:16:18: the query's required variable(s) $uzovi get no value",
        ),
        (
            "uzovi: token.identifier}",
            "uzovi: token.identifer}",
            "p.yaml:16:59: unknown fact 'token.identifer'",
        ),
        (
            "gevraagd: data.regiehouder",
            "gevraagd: regiehouder",
            "p.yaml:18:17: yield 'gevraagd': 'regiehouder' is not a path into the answer's data",
        ),
        (
            "gevraagd: data.regiehouder",
            "peildatum: data.regiehouder",
            "p.yaml:18:7: 'peildatum' is given by the gateway (the date of the request)",
        ),
        (
            "query Pip($id: UUID!, $uzovi: String!) {",
            "mutation Pip($id: UUID!, $uzovi: String!) {",
            "p.yaml:8:14: the request must be exactly one GraphQL query operation",
        ),
        (
            "query Pip($id: UUID!, $uzovi: String!) {",
            "query Pip($id: UUID!, $uzovi: String!) {{",
            "p.yaml:8:14: the query does not parse",
        ),
        (
            "source: {route: /registers/bemiddelingsregister/graphql}",
            "source: {upstream: http://register}",
            "p.yaml:6:14: unknown key 'upstream' in lookups.0.source",
        ),
        (
            'extended_to: "05-31"',
            'extended_to: "02-30"',
            "p.yaml:36:63: '02-30' is not a day of the year (MM-DD)",
        ),
        (
            "with: {fact: extra.eigen.peildatum}",
            "with: {fact: extra}",
            "p.yaml:37:24: extra needs a name",
        ),
    ],
)
def test_a_broken_lookup_or_period_is_a_located_load_error(
    tmp_path: Path, old: str, new: str, message: str
) -> None:
    assert old in LOOKUP
    errors = load_errors(tmp_path, LOOKUP.replace(old, new))
    where, text = message.split(": ", 1)
    assert any(e.startswith(f"{tmp_path}/{where}: {text}") for e in errors), errors


def test_a_lookup_name_is_unique_in_the_set(tmp_path: Path) -> None:
    write(tmp_path, LOOKUP)
    other = LOOKUP.replace("policy: p", "policy: q").replace("field: regiehouder", "field: x")
    write(tmp_path, other, "q.yaml")
    with pytest.raises(PolicyLoadError) as caught:
        load_policy_set([tmp_path])
    (error,) = [e for e in caught.value.errors if "duplicate lookup name" in e]
    assert "q.yaml:4:" in error and "first used at" in error and "p.yaml:4" in error


def test_explain_shows_the_looked_up_facts_it_used(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    templates = IWLZ / "raadplegingen" / "templates"
    claims = tmp_path / "claims.json"
    claims.write_text(
        json.dumps(
            {
                "client_id": "zorgkantoor-5151",
                "instantie_type": "Zorgkantoor",
                "uzovi": "5151",
                "scope": "registers/wlzbemiddelingsregister/bemiddelingen/bemiddeling:read",
                "aud": "http://gw/registers/bemiddelingsregister/graphql",
            }
        )
    )
    request = tmp_path / "request.json"
    request.write_text(
        json.dumps(
            {
                "query": (templates / "QBR-0012-ZKu.graphql").read_text(),
                "variables": json.loads((templates / "QBR-0012-ZKu.variables.json").read_text()),
            }
        )
    )
    extra = tmp_path / "extra.json"
    own = {"toewijzingIngangsdatum": "2025-01-01", "toewijzingEinddatum": None}
    asked = {"toewijzingIngangsdatum": "2025-06-01", "toewijzingEinddatum": "2025-12-31"}
    facts = {"gevraagd": [asked], "eigen": [own], "peildatum": "2026-12-03"}
    extra.write_text(json.dumps({"UCBR-0012": facts}))
    args = [
        "policy",
        "explain",
        "--policy",
        str(IWLZ),
        "--claims",
        str(claims),
        "--request",
        str(request),
        "--route",
        "/registers/bemiddelingsregister/graphql",
        "--schema",
        str(REPO / "config" / "schemas" / "bemiddelingsregister.graphql"),
        "--format",
        "json",
    ]
    assert main([*args, "--extra", str(extra)]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["allow"] is True
    (step,) = [s for s in result["trace"] if s["rule"] == "lookup/UCBR-0012"]
    assert step["outcome"] == "given"
    assert step["detail"] == "extra.UCBR-0012 = " + json.dumps(facts, sort_keys=True)
    # Without --extra: the lookup is missing and the rule refuses.
    assert main(args) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["rule"] == "iwlz-bemiddelingspecificatie/UCBR-0012-overlap"
    (step,) = [s for s in result["trace"] if s["rule"] == "lookup/UCBR-0012"]
    assert step["outcome"] == "missing"
    assert "/registers/bemiddelingsregister/graphql would be asked" in step["detail"]


def test_explain_passes_facts_of_a_lookup_the_set_does_not_declare_as_given(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    claims = tmp_path / "claims.json"
    claims.write_text(
        json.dumps(
            {
                "client_id": "c",
                "instantie_type": "Zorgkantoor",
                "aud": "http://gw/registers/bemiddelingsregister/graphql",
            }
        )
    )
    request = tmp_path / "request.json"
    request.write_text(json.dumps({"query": "{ regiehouder { regierol } }"}))
    extra = tmp_path / "extra.json"
    extra.write_text(json.dumps({"UCBR-0099": {}}))
    code = main(
        [
            "policy", "explain", "--policy", str(IWLZ), "--claims", str(claims),
            "--request", str(request), "--route", "/registers/bemiddelingsregister/graphql",
            "--schema", str(REPO / "config" / "schemas" / "bemiddelingsregister.graphql"),
            "--extra", str(extra),
        ]
    )  # fmt: skip
    # Not a lookup of the set: the facts of one of the gateway's own lookups (the store's
    # abonnement, a route's Ketenindex lookup), given to the policy as they are.
    assert code == 0, capsys.readouterr().err
