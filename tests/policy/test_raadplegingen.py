"""The raadplegingen policies against the register schemas: every published template, as
the gateway analyses it on a register route (schema-validated, fragments and aliases
resolved by graphql-core), decided as the matrices say; and `policy explain` naming the rule."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from gateway.cli import main
from gateway.config.model import GraphQLLimits, default_claim_mapping
from gateway.facts import DecisionInput, RouteFacts
from gateway.graphql import GraphQLRequest
from gateway.graphql.analyser import Analyser
from gateway.graphql.schema import load_schema
from gateway.policy import load_policy_set
from gateway.tokens.claims import map_claims
from tests.fixtures.policy import IWLZ, REPO

TEMPLATES = IWLZ / "raadplegingen" / "templates"
BEM = ("bemiddelingsregister", "registers/wlzbemiddelingsregister/bemiddelingen/bemiddeling:read")
IND = ("indicatieregister", "registers/wlzindicatieregister/indicaties/indicatie:read")
ZA = {"instantie_type": "Zorgaanbieder", "agb": "12345678"}
ZK_5151 = {"instantie_type": "Zorgkantoor", "uzovi": "5151"}
ZK_5152 = {"instantie_type": "Zorgkantoor", "uzovi": "5152"}
CIZ = {"instantie_type": "Onderneming", "kvk": "62253778"}

# template -> (register, caller, the deciding rule: the policy when allowed, else the check)
TEMPLATE_DECISIONS: dict[str, tuple[tuple[str, str], dict[str, str], str]] = {
    "QBR-0001-ZA": (BEM, ZA, "iwlz-bemiddelingspecificatie"),
    "QBR-0002-ZA": (BEM, ZA, "iwlz-bemiddelingspecificatie"),
    "QBR-0003-ZA": (BEM, ZA, "iwlz-bemiddelingspecificatie"),
    "QBR-0004-ZKu": (BEM, ZK_5151, "iwlz-bemiddelingspecificatie"),
    "QBR-0005-ZKu": (BEM, ZK_5152, "iwlz-bemiddelingspecificatie"),
    "QBR-0006-ZKu": (BEM, ZK_5151, "iwlz-bemiddelingspecificatie"),
    "QBR-0007-ZKn": (BEM, ZK_5152, "iwlz-overdracht"),
    "QBR-0008-ZKn": (BEM, ZK_5152, "iwlz-overdracht"),
    "QBR-0009-ZAr": (BEM, ZA, "iwlz-regiehouder"),
    "QBR-0010-CIZ": (BEM, CIZ, "iwlz-bemiddeling"),
    "QBR-0011-CIZ": (BEM, CIZ, "iwlz-bemiddeling"),
    "QBR-0012-ZKu": (BEM, ZK_5151, "iwlz-bemiddelingspecificatie"),
    "QBR-0013-ZKu": (BEM, ZK_5151, "iwlz-regiehouder"),
    "QIR-0001-ZKi": (IND, ZK_5151, "iwlz-wlzindicatie"),
    "QIR-0002-ZA": (IND, ZA, "iwlz-wlzindicatie"),
    "QIR-0003-ZKn": (IND, ZK_5152, "iwlz-wlzindicatie"),
    "QIR-0004-ZKu": (IND, ZK_5152, "iwlz-wlzindicatie"),
    "QIR-0005-ZKn": (IND, ZK_5152, "iwlz-wlzindicatie/IRA0001-wlzindicatieID"),
}

S1 = {
    "toewijzingIngangsdatum": "2025-01-01",
    "toewijzingEinddatum": None,
    "vaststellingMoment": "2024-12-15T10:00:00.000+01:00",
}
S2 = {
    "toewijzingIngangsdatum": "2025-06-01",
    "toewijzingEinddatum": "2025-12-31",
    "vaststellingMoment": "2025-05-20T09:30:00.000+02:00",
}
TODAY = "2026-12-03"
# What the policy information point gives for the templates that need it, from the demo's
# fixture records (config/demo/registers/), as the lookups' queries would find them.
PIP_FACTS: dict[str, dict[str, Any]] = {
    "QBR-0012-ZKu": {"UCBR-0012": {"gevraagd": [S2], "eigen": [S1], "peildatum": TODAY}},
    "QBR-0013-ZKu": {
        "UCBR-0013": {
            "gevraagd": [{"ingangsdatum": "2025-01-01", "einddatum": None}],
            "eigen": [S1],
            "peildatum": TODAY,
        }
    },
    "QIR-0002-ZA": {"IRA0003": {"specificaties": [{"bemiddelingspecificatieID": "S1"}]}},
    "QIR-0003-ZKn": {
        "IRA0002-IRA0004": {
            "bemiddelingen": [
                {
                    "verantwoordelijkZorgkantoor": "5151",
                    "overdracht": {"verantwoordelijkZorgkantoor": "5152"},
                    "bemiddelingspecificatie": [{"bemiddelingspecificatieID": "S2"}],
                }
            ]
        }
    },
}
PIP_FACTS["QIR-0004-ZKu"] = PIP_FACTS["QIR-0003-ZKn"]


def template(name: str) -> tuple[str, dict[str, Any]]:
    return (
        (TEMPLATES / f"{name}.graphql").read_text(),
        json.loads((TEMPLATES / f"{name}.variables.json").read_text()),
    )


def test_every_published_template_has_a_decision() -> None:
    published = {p.stem for p in TEMPLATES.glob("*.graphql")}
    assert published == set(TEMPLATE_DECISIONS)


@pytest.mark.parametrize("name", sorted(TEMPLATE_DECISIONS))
def test_template_on_its_register_route(name: str) -> None:
    (register, scope), claims, rule = TEMPLATE_DECISIONS[name]
    policy_set = load_policy_set([IWLZ])
    analyser = Analyser(
        GraphQLLimits(),
        cache_size=0,
        schema=load_schema(REPO / "config" / "schemas" / f"{register}.graphql"),
    )
    query, variables = template(name)
    operation = analyser.analyse(GraphQLRequest(query, variables))
    path = f"/registers/{register}/graphql"
    route = RouteFacts(
        path=path, audience=path, deelnemer_id_type="", deelnemer_id="", deelnemer_kind=""
    )
    token = map_claims({**claims, "client_id": "c", "scope": scope}, default_claim_mapping())
    extra = PIP_FACTS.get(name, {})
    decision = policy_set.decide(DecisionInput(token, operation, route, extra))
    assert decision.rule == rule, decision.message
    assert decision.allow == ("/" not in rule)
    if not decision.allow:
        assert (decision.status, decision.code) == (403, "FORBIDDEN")
    if extra:  # the same request without the looked-up facts: refused (fail closed)
        refused = policy_set.decide(DecisionInput(token, operation, route))
        assert not refused.allow and refused.status == 403


def test_explain_names_the_broken_binding_and_its_rule(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    query, variables = template("QBR-0001-ZA")
    claims = tmp_path / "claims.json"
    claims.write_text(
        json.dumps(
            {
                **ZA,
                "client_id": "za",
                "scope": BEM[1],
                "aud": "http://gw/registers/bemiddelingsregister/graphql",
            }
        )
    )
    request = tmp_path / "request.json"
    request.write_text(
        json.dumps({"query": query, "variables": {**variables, "instelling": "87654321"}})
    )
    code = main(
        [
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
    )
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    assert (result["allow"], result["status"], result["code"]) == (False, 403, "FORBIDDEN")
    assert result["message"] == (
        "Bemiddelingspecificatie query: where.instelling.eq must be the caller's own AGB (BRA0001)"
    )
    assert result["rule"] == "iwlz-bemiddelingspecificatie/BRA0001-instelling"
    assert "raadplegingen/bemiddelingspecificatie.yaml:" in result["location"]
    failed = [s for s in result["trace"] if s["outcome"] == "failed"]
    assert "must equal token.identifier ('12345678')" in failed[0]["detail"]
