"""GraphQL analysis: from a request body to the :class:`~gateway.facts.OperationFacts`
the policy decides on.

* :func:`parse_graphql_request` reads the HTTP body (JSON or ``application/graphql``);
* :class:`Analyser` parses, checks limits, picks the operation and its single root
  field, validates against a schema when given, and resolves arguments with variables
  and defaults, caching everything that depends on the query text only;
* :func:`load_schema` loads an SDL file (the bundled network schema is
  :data:`BUNDLED_SCHEMA`);
* :func:`facts_from_request` is the one-call helper for offline tools (``policy
  explain``, policy tests).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from graphql import GraphQLSchema

from gateway.config.model import GraphQLLimits
from gateway.facts import OperationFacts
from gateway.graphql.analyser import Analyser
from gateway.graphql.request import GraphQLRequest, parse_graphql_request, request_from_mapping
from gateway.graphql.schema import (
    BUNDLED_SCHEMA,
    is_iso_date_or_datetime,
    load_schema,
    load_schema_text,
)

__all__ = [
    "BUNDLED_SCHEMA",
    "Analyser",
    "GraphQLRequest",
    "facts_from_request",
    "is_iso_date_or_datetime",
    "load_schema",
    "load_schema_text",
    "parse_graphql_request",
    "request_from_mapping",
]


def facts_from_request(
    payload: Mapping[str, Any] | GraphQLRequest,
    *,
    schema: GraphQLSchema | None = None,
    limits: GraphQLLimits | None = None,
) -> OperationFacts:
    """Analyse one request (a decoded ``{"query", "variables", "operationName"}`` object
    or a :class:`GraphQLRequest`) without a cache, exactly as the gateway would.

    For offline tools and policy test cases; raises the same refusals as the PEP.
    """
    request = payload if isinstance(payload, GraphQLRequest) else request_from_mapping(payload)
    analyser = Analyser(limits or GraphQLLimits(), cache_size=0, schema=schema)
    return analyser.analyse(request)
