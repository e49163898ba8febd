"""The raadpleging template decisions the policy benchmarks time and count: the published
QBR templates as written, each request analysed as the register route analyses it; and
the RFC0008 notification cases (zendNotificatie) with their Rego input.

Shared by bench_policy.py (wall clock, beside Rego) and bench_policy_instructions.py
(callgrind; regopy's allocator does not run under valgrind, so nothing here imports it).
"""

from __future__ import annotations

import datetime as dt
import json
import re
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gateway.config.model import GraphQLLimits, default_claim_mapping  # noqa: E402
from gateway.facts import DecisionInput, RouteFacts  # noqa: E402
from gateway.graphql import (  # noqa: E402
    Analyser,
    facts_from_request,
    load_schema,
    request_from_mapping,
)
from gateway.tokens.claims import map_claims  # noqa: E402

TEMPLATES = ROOT / "policies" / "iwlz" / "raadplegingen" / "templates"
REGISTER_SCHEMA = ROOT / "config" / "schemas" / "bemiddelingsregister.graphql"
READ = "registers/wlzbemiddelingsregister/bemiddelingen/bemiddeling:read"
ZA = {"instantie_type": "Zorgaanbieder", "agb": "12345678", "client_id": "za", "scope": READ}
ZA_OTHER = {**ZA, "agb": "87654321"}
ZK_5151 = {"instantie_type": "Zorgkantoor", "uzovi": "5151", "client_id": "zk", "scope": READ}
# (template, claims, expected allow): the biggest templates allowed, and refused on binding.
RAADPLEGINGEN = [
    ("QBR-0002-ZA", ZA, True),
    ("QBR-0003-ZA", ZA, True),
    ("QBR-0001-ZA", ZA, True),
    ("QBR-0004-ZKu", ZK_5151, True),
    ("QBR-0002-ZA", ZA_OTHER, False),
]
VARIANTS = 97
"""Distinct variable sets per template (dates shifted by 0..96 days, own IDs): no two
consecutive decisions of a template see the same dates, as on a real register route."""

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def varied(variables: dict[str, Any], k: int) -> dict[str, Any]:
    """The template's example *variables* with every date (and date-time's day) moved *k*
    days later and the specificatie's ID made unique: the window's relations stay true."""
    out: dict[str, Any] = {}
    for name, value in variables.items():
        if isinstance(value, str) and _DATE.match(value):
            day = dt.date.fromisoformat(value[:10]) + dt.timedelta(days=k)
            value = day.isoformat() + value[10:]
        elif isinstance(value, str) and name.lower() == "bemiddelingspecificatieid":
            value = value[:-4] + f"{k:04d}"
        out[name] = value
    return out


class TemplateRequests:
    """Fresh facts for one template decision per call, built as the register route builds
    them (the register's schema, the plan cached per query text, the variables coerced per
    request): identity memos cannot carry one decision's work into the next."""

    def __init__(self, name: str, claims: dict[str, str]) -> None:
        mapping = default_claim_mapping()
        path = "/registers/bemiddelingsregister/graphql"
        self.name = name
        self.token = map_claims(claims, mapping)
        self.route = RouteFacts(
            path=path, audience=path, deelnemer_id_type="", deelnemer_id="", deelnemer_kind=""
        )
        query = (TEMPLATES / f"{name}.graphql").read_text()
        example = json.loads((TEMPLATES / f"{name}.variables.json").read_text())
        self.requests = [
            request_from_mapping({"query": query, "variables": varied(example, k)})
            for k in range(VARIANTS)
        ]
        self.analyser = Analyser(GraphQLLimits(), schema=load_schema(REGISTER_SCHEMA))
        self.calls = 0

    def facts(self) -> DecisionInput:
        """The next request's facts (a new object every call)."""
        request = self.requests[self.calls % VARIANTS]
        self.calls += 1
        return DecisionInput(self.token, self.analyser.analyse(request), self.route)


def build_raadplegingen() -> list[TemplateRequests]:
    """One request source per template decision of RAADPLEGINGEN."""
    return [TemplateRequests(name, claims) for name, claims, _allow in RAADPLEGINGEN]


QUERY = (
    "mutation zendNotificatie($afzenderID: String!, $afzenderIDType: IDTypeEnum!, "
    "$eventType: String!, $ontvangerID: String!, $ontvangerIDType: IDTypeEnum!, "
    "$timestamp: DateTime!, $subjectList: [SubjectEntity!]!) { zendNotificatie("
    "notificatieInput: {afzenderID: $afzenderID, afzenderIDType: $afzenderIDType, "
    "eventType: $eventType, ontvangerID: $ontvangerID, ontvangerIDType: $ontvangerIDType, "
    "timestamp: $timestamp, subjectList: $subjectList}) { notificatieID } }"
)
SEED = {
    "afzenderID": "62253778",
    "afzenderIDType": "KVK",
    "eventType": "NIEUWE_INDICATIE_ZORGKANTOOR",
    "ontvangerID": "5151",
    "ontvangerIDType": "UZOVI",
    "timestamp": "2024-07-02T00:00:00Z",
    "subjectList": [{"recordID": "WlzIndicatie/1", "subject": "WlzIndicatie/1"}],
}
CIZ = {"instantie_type": "Onderneming", "kvk": "62253778", "client_id": "ciz"}
ZK = {"instantie_type": "Zorgkantoor", "uzovi": "5151", "client_id": "zorgkantoor-5151"}
UZOVI_5151 = ("UZOVI", "5151", "zorgkantoor")
UZOVI_5152 = ("UZOVI", "5152", "zorgkantoor")
AGB = ("AGB", "12345678", "zorgaanbieder")

# (name, claims, variable overrides, route): the allowed seed plus every refusal reason.
CASES: list[tuple[str, dict[str, str], dict[str, Any], tuple[str, str, str]]] = [
    ("allow: CIZ NIEUWE_INDICATIE_ZORGKANTOOR", CIZ, {}, UZOVI_5151),
    (
        "allow: zorgkantoor to zorgaanbieder",
        ZK,
        {
            "afzenderID": "5151",
            "afzenderIDType": "UZOVI",
            "ontvangerID": "12345678",
            "ontvangerIDType": "AGB",
            "eventType": "NIEUWE_BEMIDDELINGSPECIFICATIE_ZORGAANBIEDER",
        },
        AGB,
    ),
    ("deny: instantie_type", {"kvk": "11111111"}, {"afzenderID": "11111111"}, UZOVI_5151),
    ("deny: afzender_type", CIZ, {"afzenderIDType": "UZOVI"}, UZOVI_5151),
    ("deny: afzender_id", CIZ, {"afzenderID": "1"}, UZOVI_5151),
    (
        "deny: event_type",
        CIZ,
        {"eventType": "NIEUWE_BEMIDDELINGSPECIFICATIE_ZORGKANTOOR"},
        UZOVI_5151,
    ),
    ("deny: ontvanger", CIZ, {"ontvangerIDType": "AGB", "ontvangerID": "12345678"}, AGB),
    ("deny: ontvanger is route", CIZ, {}, UZOVI_5152),
    (
        "deny: gebonden afzender",
        {"instantie_type": "Onderneming", "kvk": "11111111"},
        {"afzenderID": "11111111"},
        UZOVI_5151,
    ),
]


def build_cases() -> list[tuple[str, DecisionInput, dict[str, Any]]]:
    """Analyse every case once: compiled-engine facts and the equivalent Rego input."""
    mapping = default_claim_mapping()
    built = []
    for name, claims, overrides, (id_type, ident, kind) in CASES:
        op = facts_from_request({"query": QUERY, "variables": {**SEED, **overrides}})
        token = map_claims(claims, mapping)
        path = f"/deelnemers/{id_type.lower()}/{ident}/graphql"
        route = RouteFacts(
            path=path,
            audience=path,
            deelnemer_id_type=id_type,
            deelnemer_id=ident,
            deelnemer_kind=kind,
        )
        rego_input = {
            "token": {
                k: v
                for k, v in {
                    "instantie_type": token.instantie_type,
                    "identifier_type": token.identifier_type,
                    "identifier": token.identifier,
                }.items()
                if v is not None
            },
            "args": json.loads(json.dumps(dict(op.arguments))),
            "route": {"deelnemer_id_type": id_type, "deelnemer_id": ident},
        }
        built.append((name, DecisionInput(token, op, route), rego_input))
    return built
