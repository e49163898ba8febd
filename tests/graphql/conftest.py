"""The GraphQL analyser tests' fixtures: the bundled schema and analysers with and without it."""

from __future__ import annotations

import pytest
from graphql import GraphQLSchema

from gateway.config.model import GraphQLLimits
from gateway.graphql import BUNDLED_SCHEMA, Analyser, load_schema


@pytest.fixture(scope="session")
def schema() -> GraphQLSchema:
    return load_schema(BUNDLED_SCHEMA)


@pytest.fixture
def analyser() -> Analyser:
    """An analyser without schema validation, default limits."""
    return Analyser(GraphQLLimits())


@pytest.fixture
def schema_analyser(schema: GraphQLSchema) -> Analyser:
    """An analyser validating against the bundled netwerkpunt schema."""
    return Analyser(GraphQLLimits(), schema=schema)


@pytest.fixture(params=["no_schema", "schema"])
def any_analyser(request: pytest.FixtureRequest, schema: GraphQLSchema) -> Analyser:
    """Both analysers: shapes real senders use must give the same facts either way."""
    return Analyser(GraphQLLimits(), schema=schema if request.param == "schema" else None)
