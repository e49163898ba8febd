"""Schema validation against the bundled netwerkpunt schema, and loading schemas."""

from __future__ import annotations

from pathlib import Path

import pytest
from graphql import GraphQLSchema, graphql_sync

from gateway.config.errors import ConfigError
from gateway.graphql import BUNDLED_SCHEMA, Analyser, is_iso_date_or_datetime, load_schema
from gateway.refusals import ValidationFailed
from tests.fixtures.graphql import fixture_query, fixture_variables, request


def test_bundled_schema_executes_the_seed_example_as_written(schema: GraphQLSchema) -> None:
    # The example resource servers execute against this schema with graphql-core.
    result = graphql_sync(
        schema,
        fixture_query("seed_003_example"),
        root_value={"zendNotificatie": lambda _info, **_kw: {"notificatieID": "n-1"}},
        variable_values=fixture_variables("seed_003_variables"),
    )
    assert result.errors is None
    assert result.data == {"zendNotificatie": {"notificatieID": "n-1"}}


@pytest.mark.parametrize(
    ("query", "variables", "root_field"),
    [
        ("seed_003_example", "seed_003_variables", "zendNotificatie"),
        ("one_variable", "one_variable_variables", "zendNotificatie"),
        ("inline_literals", None, "zendNotificatie"),
        ("alias", "one_variable_variables", "zendNotificatie"),
        ("fragments", "one_variable_variables", "zendNotificatie"),
        ("melding_rfc0018", "melding_rfc0018_variables", "zendMelding"),
    ],
)
def test_fixtures_pass_schema_validation(
    schema_analyser: Analyser, query: str, variables: str | None, root_field: str
) -> None:
    values = fixture_variables(variables) if variables else {}
    facts = schema_analyser.analyse(request(fixture_query(query), values))
    assert (facts.operation_type, facts.root_field) == ("mutation", root_field)


@pytest.mark.parametrize(
    "timestamp",
    [
        "2024-07-02",
        "2024-07-02T00:00:00Z",
        "2016-07-20T17:30:15+05:30",
        "2016-07-20T17:30:15.234890+05:30",
    ],
)
def test_datetime_accepts_a_bare_date_and_date_times(
    schema_analyser: Analyser, timestamp: str
) -> None:
    variables = dict(fixture_variables("seed_003_variables"), timestamp=timestamp)
    facts = schema_analyser.analyse(request(fixture_query("seed_003_example"), variables))
    assert facts.argument("notificatieInput.timestamp") == timestamp


@pytest.mark.parametrize("timestamp", ["gisteren", "2024-13-01", "02-07-2024", ""])
def test_datetime_refuses_other_text(schema_analyser: Analyser, timestamp: str) -> None:
    variables = dict(fixture_variables("seed_003_variables"), timestamp=timestamp)
    with pytest.raises(ValidationFailed, match="DateTime cannot represent"):
        schema_analyser.analyse(request(fixture_query("seed_003_example"), variables))


def test_datetime_literal_is_checked(schema_analyser: Analyser) -> None:
    query = fixture_query("inline_literals").replace('"2024-07-02T00:00:00Z"', '"morgen"')
    with pytest.raises(ValidationFailed, match="DateTime"):
        schema_analyser.analyse(request(query))


def test_iso_date_helper() -> None:
    assert is_iso_date_or_datetime("2024-07-02")
    assert not is_iso_date_or_datetime("2024-7-2")


def test_unknown_enum_value_is_a_validation_error(schema_analyser: Analyser) -> None:
    variables = dict(fixture_variables("seed_003_variables"), ontvangerIDType="ZORGKANTOOR")
    with pytest.raises(ValidationFailed) as info:
        schema_analyser.analyse(request(fixture_query("seed_003_example"), variables))
    assert info.value.message.startswith("zendNotificatie mutation: Variable '$ontvangerIDType'")


def test_unknown_field_fails_only_with_schema_validation(
    analyser: Analyser, schema_analyser: Analyser
) -> None:
    query = fixture_query("one_variable").replace("notificatieID", "geheim")
    variables = fixture_variables("one_variable_variables")
    assert analyser.analyse(request(query, variables)).selected_paths == ("geheim",)
    with pytest.raises(ValidationFailed) as info:
        schema_analyser.analyse(request(query, variables))
    assert info.value.message == (
        "ZendNotificatie mutation: Cannot query field 'geheim' on type 'Notificatie'."
    )


def test_missing_required_input_field_is_refused(schema_analyser: Analyser) -> None:
    variables = fixture_variables("one_variable_variables")
    del variables["notificatieInput"]["eventType"]
    with pytest.raises(ValidationFailed, match="eventType"):
        schema_analyser.analyse(request(fixture_query("one_variable"), variables))


def test_wrong_variable_type_is_refused(schema_analyser: Analyser) -> None:
    query = "query Q($id: Int!) { notificatie(notificatieID: $id) { notificatieID } }"
    with pytest.raises(ValidationFailed, match="expecting type 'ID!'"):
        schema_analyser.analyse(request(query, {"id": 1}))


def test_wrong_runtime_value_type_is_refused(schema_analyser: Analyser) -> None:
    variables = dict(fixture_variables("seed_003_variables"), afzenderID=["62253778"])
    with pytest.raises(ValidationFailed, match=r"\$afzenderID"):
        schema_analyser.analyse(request(fixture_query("seed_003_example"), variables))


def test_load_schema_is_cached_per_path(tmp_path: Path) -> None:
    first = load_schema(BUNDLED_SCHEMA)
    assert load_schema(BUNDLED_SCHEMA) is first
    copy = tmp_path / "copy.graphql"
    copy.write_bytes(BUNDLED_SCHEMA.read_bytes())
    other = load_schema(copy)
    assert other is not first
    assert load_schema(copy) is other


def test_load_schema_names_file_and_position_of_bad_sdl(tmp_path: Path) -> None:
    bad = tmp_path / "bad.graphql"
    bad.write_text("type Query {\n  a: \n}\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_schema(bad)
    assert str(info.value).startswith(f"{bad}:3:1: invalid GraphQL SDL")


def test_load_schema_refuses_an_inconsistent_schema(tmp_path: Path) -> None:
    bad = tmp_path / "bad.graphql"
    bad.write_text("type Query { a: Missing }\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="Missing"):
        load_schema(bad)


def test_load_schema_refuses_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read GraphQL schema"):
        load_schema(tmp_path / "nope.graphql")


def test_datetime_texts_seen_valid_are_kept_bounded_and_others_still_refused(
    schema_analyser: Analyser,
) -> None:
    """A valid text is kept (at most the bound, then the set starts over); a text never
    found valid is refused each time, with the same message."""
    from gateway.graphql import schema as schema_module

    query = fixture_query("seed_003_example")
    for day in range(1, 29):
        for month in range(1, 13):
            timestamp = f"2024-{month:02}-{day:02}"
            variables = dict(fixture_variables("seed_003_variables"), timestamp=timestamp)
            assert (
                schema_analyser.analyse(request(query, variables)).argument(
                    "notificatieInput.timestamp"
                )
                == timestamp
            )
            assert 0 < len(schema_module._valid_texts) <= schema_module._VALID_TEXTS_KEPT
    for _ in range(2):
        variables = dict(fixture_variables("seed_003_variables"), timestamp="2024-02-30")
        with pytest.raises(ValidationFailed, match="DateTime cannot represent '2024-02-30'"):
            schema_analyser.analyse(request(query, variables))
    assert "2024-02-30" not in schema_module._valid_texts
