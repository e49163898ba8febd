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

from gateway.graphql.analyser import Analyser
from gateway.graphql.offline import facts_from_request
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
