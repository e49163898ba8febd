"""The published query templates and the demo's example registers.

Every template validates against its register's schema (``config/schemas/``) with the
variables it ships with; the example registers (``gateway/examples/register.py`` over
``config/demo/registers/*.yaml``) answer each template over real HTTP with the fixture
records the contract pins, applying the ``where`` filters.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from graphql import OperationDefinitionNode, parse, validate

from gateway.examples.register import RegisterDataError, create_register_app
from gateway.graphql.schema import load_schema

REPO = Path(__file__).resolve().parents[2]
TEMPLATES = REPO / "policies" / "iwlz" / "raadplegingen" / "templates"
SCHEMAS = REPO / "config" / "schemas"
FIXTURES = REPO / "config" / "demo" / "registers"
REGISTER = {"QBR": "bemiddelingsregister", "QIR": "indicatieregister"}

S1, S2, S3 = (f"51000000-0000-4000-8000-00000000000{i}" for i in (1, 2, 3))
R1 = "2e000000-0000-4000-8000-000000000001"
O1 = "0d000000-0000-4000-8000-000000000001"
I1 = "a1000000-0000-4000-8000-000000000001"
B1 = "b1000000-0000-4000-8000-000000000001"

# What each template finds in the demo fixture with its example variables: the root
# field's records, by their identifying field.
FOUND: dict[str, tuple[str, str, list[str]]] = {
    "QBR-0001-ZA": ("bemiddelingspecificatie", "bemiddelingspecificatieID", [S1]),
    "QBR-0002-ZA": ("bemiddelingspecificatie", "bemiddelingspecificatieID", []),
    "QBR-0003-ZA": ("bemiddelingspecificatie", "bemiddelingspecificatieID", [S1]),
    "QBR-0004-ZKu": ("bemiddelingspecificatie", "bemiddelingspecificatieID", [S1]),
    "QBR-0005-ZKu": ("bemiddelingspecificatie", "bemiddelingspecificatieID", [S2]),
    "QBR-0006-ZKu": ("bemiddelingspecificatie", "bemiddelingspecificatieID", [S1]),
    "QBR-0007-ZKn": ("overdracht", "overdrachtID", [O1]),
    "QBR-0008-ZKn": ("overdracht", "overdrachtID", [O1]),
    "QBR-0009-ZAr": ("regiehouder", "regiehouderID", [R1]),
    "QBR-0010-CIZ": ("bemiddeling", "wlzIndicatieID", [I1]),
    "QBR-0011-CIZ": ("bemiddeling", "wlzIndicatieID", [I1]),
    "QBR-0012-ZKu": ("bemiddelingspecificatie", "bemiddelingspecificatieID", [S2]),
    "QBR-0013-ZKu": ("regiehouder", "regiehouderID", [R1]),
    "QIR-0001-ZKi": ("wlzIndicatie", "wlzindicatieID", [I1]),
    "QIR-0002-ZA": ("wlzIndicatie", "wlzindicatieID", [I1]),
    "QIR-0003-ZKn": ("wlzIndicatie", "wlzindicatieID", [I1]),
    "QIR-0004-ZKu": ("wlzIndicatie", "wlzindicatieID", [I1]),
    "QIR-0005-ZKn": ("wlzIndicatie", "wlzindicatieID", [I1]),
}
NAMES = sorted(p.stem for p in TEMPLATES.glob("*.graphql"))


def template(name: str, **variables: Any) -> dict[str, Any]:
    """The published template *name* as a request body, its variables with *variables*."""
    example = json.loads((TEMPLATES / f"{name}.variables.json").read_text(encoding="utf-8"))
    return {
        "query": (TEMPLATES / f"{name}.graphql").read_text(encoding="utf-8"),
        "variables": {**example, **variables},
    }


def register_of(name: str) -> str:
    return REGISTER[name[:3]]


@pytest.fixture
async def registers(aiohttp_client: Any) -> dict[str, Any]:
    """Both example registers, each on a real loopback port."""
    return {
        name: await aiohttp_client(
            create_register_app(SCHEMAS / f"{name}.graphql", FIXTURES / f"{name}.yaml")
        )
        for name in REGISTER.values()
    }


async def ask(registers: dict[str, Any], register: str, body: dict[str, Any]) -> Any:
    response = await registers[register].post("/graphql", json=body)
    assert response.status == 200
    return await response.json()


def test_every_template_of_the_matrices_is_here_with_its_variables() -> None:
    assert sorted(FOUND) == NAMES
    for name in NAMES:
        (operation,) = parse(template(name)["query"]).definitions
        assert isinstance(operation, OperationDefinitionNode)
        declared = {v.variable.name.value for v in operation.variable_definitions or ()}
        assert declared == set(template(name)["variables"]), name


@pytest.mark.parametrize("name", NAMES)
def test_the_published_template_validates_against_its_register_schema(name: str) -> None:
    schema = load_schema(SCHEMAS / f"{register_of(name)}.graphql")
    assert validate(schema, parse(template(name)["query"])) == []


def test_a_field_the_register_does_not_have_does_not_validate() -> None:
    schema = load_schema(SCHEMAS / "bemiddelingsregister.graphql")
    query = template("QBR-0001-ZA")["query"].replace("zzpCode", "zzpKode")
    (error,) = validate(schema, parse(query))
    assert "Cannot query field 'zzpKode' on type 'Bemiddelingspecificatie'" in error.message


@pytest.mark.parametrize("name", NAMES)
async def test_the_example_register_answers_the_template_with_the_fixture_records(
    registers: dict[str, Any], name: str
) -> None:
    answer = await ask(registers, register_of(name), template(name))
    root, key, expected = FOUND[name]
    assert "errors" not in answer
    assert [record[key] for record in answer["data"][root]] == expected


async def test_a_filter_that_matches_nothing_gives_an_empty_list(registers: dict[str, Any]) -> None:
    answer = await ask(
        registers, "bemiddelingsregister", template("QBR-0001-ZA", instelling="99999999")
    )
    assert answer == {"data": {"bemiddelingspecificatie": []}}


async def test_nested_filters_select_the_overlapping_records(registers: dict[str, Any]) -> None:
    # QBR-0003-ZA for S1 (from 2025-01-01, open): S1 and S2 overlap, S3 (2020) does not.
    answer = await ask(registers, "bemiddelingsregister", template("QBR-0003-ZA"))
    (own,) = answer["data"]["bemiddelingspecificatie"]
    bemiddeling = own["bemiddeling"]
    assert bemiddeling["bemiddelingID"] == B1
    assert [s["bemiddelingspecificatieID"] for s in bemiddeling["bemiddelingspecificatie"]] == [
        S1,
        S2,
    ]
    assert [r["regiehouderID"] for r in bemiddeling["regiehouder"]] == [R1]
    assert bemiddeling["client"]["bsn"] == "999990019"


async def test_an_and_filter_under_a_link_keeps_the_callers_own_specificatie(
    registers: dict[str, Any],
) -> None:
    # The template's example: zorgkantoor 5151 with its own S1.
    answer = await ask(registers, "bemiddelingsregister", template("QBR-0013-ZKu"))
    (regiehouder,) = answer["data"]["regiehouder"]
    assert regiehouder["bemiddeling"]["bemiddelingspecificatie"] == [
        {
            "toewijzingIngangsdatum": "2025-01-01",
            "toewijzingEinddatum": None,
            "vaststellingMoment": "2024-12-15T10:00:00.000+01:00",
        }
    ]
    other = await ask(registers, "bemiddelingsregister", template("QBR-0013-ZKu", uzovi="5152"))
    (regiehouder,) = other["data"]["regiehouder"]
    assert regiehouder["bemiddeling"]["bemiddelingspecificatie"] == []


@pytest.mark.parametrize(
    ("where", "found"),
    [
        ("{toewijzingEinddatum: {eq: null}}", [S1]),
        ("{toewijzingEinddatum: {neq: null}}", [S2, S3]),
        ('{toewijzingIngangsdatum: {gte: "2025-01-01"}}', [S1, S2]),
        ('{toewijzingIngangsdatum: {ngt: "2025-01-01"}}', [S1, S3]),
        (
            '{or: [{instelling: {eq: "12345678"}}, {uitvoerendZorgkantoor: {eq: "5152"}}]}',
            [S1, S2, S3],
        ),
        ('{instelling: {in: ["87654321"]}, toewijzingEinddatum: {lt: "2021-01-01"}}', [S3]),
        ('{bemiddeling: {verantwoordelijkZorgkantoor: {eq: "5152"}}}', [S3]),
        ('{zzpCode: {startsWith: "4"}}', [S3]),
        ('{zzpCode: {nendsWith: "VV"}}', []),
    ],
)
async def test_the_example_register_applies_the_filter_operators(
    registers: dict[str, Any], where: str, found: list[str]
) -> None:
    query = f"{{ bemiddelingspecificatie(where: {where}) {{ bemiddelingspecificatieID }} }}"
    answer = await ask(registers, "bemiddelingsregister", {"query": query})
    assert [
        s["bemiddelingspecificatieID"] for s in answer["data"]["bemiddelingspecificatie"]
    ] == found


async def test_a_list_filter_asks_for_some_related_record(registers: dict[str, Any]) -> None:
    query = (
        "{ bemiddeling(where: {bemiddelingspecificatie: "
        '{some: {instelling: {eq: "12345678"}}}}) { bemiddelingID } }'
    )
    answer = await ask(registers, "bemiddelingsregister", {"query": query})
    assert answer["data"]["bemiddeling"] == [{"bemiddelingID": B1}]


async def test_a_one_record_link_without_a_match_is_null(registers: dict[str, Any]) -> None:
    query = "{ bemiddeling { bemiddelingID overdracht { overdrachtID } } }"
    answer = await ask(registers, "bemiddelingsregister", {"query": query})
    assert [b["overdracht"] for b in answer["data"]["bemiddeling"]] == [{"overdrachtID": O1}, None]


async def test_a_body_that_is_not_a_graphql_request_is_400(registers: dict[str, Any]) -> None:
    response = await registers["indicatieregister"].post("/graphql", data=b"[1]")
    assert response.status == 400
    assert (await response.json())["errors"][0]["message"] == "expected a JSON object with a query"


def test_a_link_the_schema_does_not_have_is_named_with_its_place(tmp_path: Path) -> None:
    fixture = tmp_path / "register.yaml"
    fixture.write_text(
        "route: /registers/x/graphql\nrecords: {}\nlinks:\n"
        "  Regiehouder.client: {clientID: clientID}\n",
        encoding="utf-8",
    )
    with pytest.raises(RegisterDataError, match=r"register\.yaml:4: Regiehouder\.client is not"):
        create_register_app(SCHEMAS / "bemiddelingsregister.graphql", fixture)
