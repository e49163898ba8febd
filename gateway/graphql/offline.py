"""One-call analysis for offline tools (``policy explain``, policy test cases): no cache."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from graphql import GraphQLSchema

from gateway.config.model import GraphQLLimits
from gateway.facts import OperationFacts
from gateway.graphql.analyser import Analyser
from gateway.graphql.request import GraphQLRequest, request_from_mapping


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
