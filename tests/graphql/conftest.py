"""Shared fixtures for the GraphQL analyser tests: the request shapes real senders use."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from graphql import GraphQLSchema

from gateway.config.model import GraphQLLimits
from gateway.graphql import BUNDLED_SCHEMA, Analyser, GraphQLRequest, load_schema
from gateway.observability.events import NullObserver

FIXTURES = Path(__file__).parent / "fixtures"


def fixture_query(name: str) -> str:
    """The query text of ``fixtures/<name>.graphql``."""
    return (FIXTURES / f"{name}.graphql").read_text(encoding="utf-8")


def fixture_variables(name: str) -> dict[str, Any]:
    """The variables of ``fixtures/<name>.json``."""
    loaded: dict[str, Any] = json.loads((FIXTURES / f"{name}.json").read_text(encoding="utf-8"))
    return loaded


def request(query: str, variables: dict[str, Any] | None = None,
            operation_name: str | None = None) -> GraphQLRequest:
    return GraphQLRequest(query=query, variables=variables or {}, operation_name=operation_name)


class RecordingObserver(NullObserver):
    """Keeps the parse-cache reports so tests can assert hits and misses."""

    def __init__(self) -> None:
        self.cache: list[bool] = []

    def parse_cache(self, hit: bool) -> None:
        self.cache.append(hit)


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
