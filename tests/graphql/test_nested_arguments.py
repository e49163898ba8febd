"""``arguments_at``: the arguments of nested fields, by field path, one set per selection.

The same with and without the register's schema: variables substituted, aliases and
fragments each counted, ``@skip`` followed, so a policy sees every filter the register gets.
"""

from __future__ import annotations

import pytest

from gateway.config.model import GraphQLLimits
from gateway.graphql import Analyser, load_schema
from tests.fixtures.gateway import REPO
from tests.fixtures.graphql import request

SCHEMA = REPO / "config" / "schemas" / "bemiddelingsregister.graphql"
QUERY = """
query Q($id: UUID!, $van: Date!, $zonder: Boolean!) {
  bemiddelingspecificatie(where: {bemiddelingspecificatieID: {eq: $id}}) {
    bemiddeling {
      bemiddelingspecificatie(where: {toewijzingEinddatum: {gte: $van}}) { instelling }
      alle: bemiddelingspecificatie { instelling }
      ...R
    }
  }
}
fragment R on Bemiddeling {
  regiehouder(where: {einddatum: {eq: null}}) @skip(if: $zonder) { instelling }
}
"""


@pytest.fixture(params=["no_schema", "schema"])
def analyser(request: pytest.FixtureRequest) -> Analyser:
    schema = load_schema(SCHEMA) if request.param == "schema" else None
    return Analyser(GraphQLLimits(), schema=schema)


def test_every_selection_of_a_nested_field_has_its_argument_set(analyser: Analyser) -> None:
    variables = {"id": "51000000-0000-4000-8000-000000000001", "van": "2025-01-01"}
    facts = analyser.analyse(request(QUERY, {**variables, "zonder": False}))
    assert facts.arguments_at == {
        "bemiddeling.bemiddelingspecificatie": [
            {"where": {"toewijzingEinddatum": {"gte": "2025-01-01"}}},
            {},  # the alias without a filter is not hidden behind the first selection
        ],
        "bemiddeling.regiehouder": [{"where": {"einddatum": {"eq": None}}}],
    }


def test_a_skipped_nested_field_has_no_argument_set(analyser: Analyser) -> None:
    variables = {"id": "51000000-0000-4000-8000-000000000001", "van": "2025-01-01"}
    facts = analyser.analyse(request(QUERY, {**variables, "zonder": True}))
    assert "bemiddeling.regiehouder" not in facts.arguments_at
    assert len(facts.arguments_at["bemiddeling.bemiddelingspecificatie"]) == 2
