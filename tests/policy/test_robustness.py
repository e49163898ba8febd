"""The compiled iWlz rules never raise, whatever the request carries; shipped files are tidy."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.policy import load_policy_set
from gateway.policy.source import SCHEMA_FILE
from tests.fixtures.policy import IWLZ, REPO, facts, operation, route, token

SETS = [load_policy_set([IWLZ], environment=env) for env in (None, "productie", "test")]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True),
    st.text(max_size=12),
    st.sampled_from(["UZOVI", "KVK", "5151", "62253778"]),
)
values: st.SearchStrategy[Any] = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
READ_SCOPES = [
    "registers/wlzbemiddelingsregister/bemiddelingen/bemiddeling:read",
    "registers/wlzindicatieregister/indicaties/indicatie:read",
]
input_keys = st.sampled_from(
    [
        "afzenderID",
        "afzenderIDType",
        "eventType",
        "ontvangerID",
        "ontvangerIDType",
        "timestamp",
        "subjectList",
        "ontvangerKenmerk",
    ]
)


@settings(max_examples=300, deadline=None)
@given(
    field=st.sampled_from(
        [
            "zendNotificatie",
            "zendMelding",
            "bemiddelingspecificatie",
            "regiehouder",
            "overdracht",
            "bemiddeling",
            "wlzIndicatie",
        ]
    ),
    arg=st.sampled_from(["notificatieInput", "meldingInput", "where"]),
    body=st.one_of(values, st.dictionaries(input_keys, values, max_size=8)),
    strict=st.booleans(),
    instantie=st.one_of(
        st.none(), st.sampled_from(["Zorgkantoor", "Zorgaanbieder", "Onderneming", ""])
    ),
    selected=st.lists(st.text(max_size=10), max_size=3),
    scopes=st.frozensets(st.sampled_from(READ_SCOPES), max_size=2),
)
def test_rules_never_raise_on_any_arguments(
    field: str,
    arg: str,
    body: Any,
    strict: bool,
    instantie: str | None,
    selected: list[str],
    scopes: frozenset[str],
) -> None:
    op_type = "mutation" if field.startswith("zend") else "query"
    f = facts(
        token=token(instantie_type=instantie, scopes=scopes),
        op=operation(field, {arg: body}, op_type=op_type, selected=tuple(selected)),
        route=route(strict=strict),
    )
    for policy_set in SETS:
        decision = policy_set.decide(f)
        explained = policy_set.decide(f, explain=True)
        assert decision.allow == explained.allow
        assert decision.rule == explained.rule


def test_editor_schema_is_the_engine_schema() -> None:
    shipped = json.loads((REPO / "policies" / "schema.json").read_text())
    assert shipped == json.loads(SCHEMA_FILE.read_text())


def test_every_policy_file_names_the_schema_for_editors() -> None:
    for file in sorted(IWLZ.rglob("*.yaml")):
        first = file.read_text().splitlines()[0]
        assert first.startswith("# yaml-language-server: $schema="), file
        schema = (file.parent / first.split("$schema=", 1)[1]).resolve()
        assert schema == (REPO / "policies" / "schema.json").resolve(), file
