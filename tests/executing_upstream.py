"""A resource server that executes what it receives, to see what an upstream really runs.

It reads the JSON body as a careless server might (``first`` or ``last`` of a duplicated
member wins, decompressing by ``Content-Encoding``), and executes the document with
graphql-core's executor against the bundled network schema *without validating it*, the
way an upstream that trusts its gateway would. Every field the executor resolves is
recorded, with the arguments of root fields: the test compares that with what the gateway
decided on.
"""

from __future__ import annotations

import gzip
import json
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from graphql import (
    ExecutionResult,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLResolveInfo,
    GraphQLSchema,
    execute,
    get_named_type,
    parse,
)

from gateway.graphql.schema import BUNDLED_SCHEMA, load_schema

Wins = Literal["first", "last"]

ALLOWED_INPUT: dict[str, Any] = {
    "timestamp": "2024-07-02T00:00:00Z",
    "afzenderIDType": "KVK",
    "afzenderID": "62253778",
    "ontvangerIDType": "UZOVI",
    "ontvangerID": "5151",
    "eventType": "NIEUWE_INDICATIE_ZORGKANTOOR",
    "subjectList": [{"subject": "WlzIndicatie/1", "recordID": "WlzIndicatie/1"}],
}
"""A notification the iWlz policy allows from the CIZ to zorgkantoor 5151."""
ALLOWED_LITERAL = (
    '{timestamp: "2024-07-02T00:00:00Z", afzenderIDType: KVK, '
    'afzenderID: "62253778", ontvangerIDType: UZOVI, ontvangerID: "5151", '
    'eventType: "NIEUWE_INDICATIE_ZORGKANTOOR", '
    'subjectList: [{subject: "WlzIndicatie/1", recordID: "WlzIndicatie/1"}]}'
)
"""The same notification as a GraphQL input literal."""
REFUSED_LITERAL = ALLOWED_LITERAL.replace('"62253778"', '"99999999"')
"""The same, sent as afzender 99999999: refused by the policy."""

_SCALARS: dict[str, Any] = {
    "ID": "id-1",
    "String": "s",
    "DateTime": "2024-07-02",
    "IDTypeEnum": "UZOVI",
    "Int": 1,
    "Boolean": True,
    "Float": 1.0,
}


@dataclass
class Execution:
    """What one executed request ran: root fields with their arguments, and field paths
    below the root (field names, dotted, as :attr:`OperationFacts.selected_paths`)."""

    roots: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    paths: set[str] = field(default_factory=set)
    errors: list[str] = field(default_factory=list)


def schema() -> GraphQLSchema:
    """The bundled network schema (the same object the gateway validates against)."""
    return load_schema(BUNDLED_SCHEMA)


def _value(type_: Any, path: str) -> Any:
    if isinstance(type_, GraphQLNonNull):
        return _value(type_.of_type, path)
    if isinstance(type_, GraphQLList):
        return [_value(type_.of_type, path)]
    if isinstance(type_, GraphQLObjectType):
        return {"__path": path}
    return _SCALARS.get(get_named_type(type_).name, "s")


def run(
    document: str,
    variables: Mapping[str, Any] | None,
    operation_name: str | None,
) -> Execution:
    """Execute *document* unvalidated against the network schema, recording what runs."""
    out = Execution()

    def resolve(source: Any, info: GraphQLResolveInfo[Any], **args: Any) -> Any:
        parent = source.get("__path") if isinstance(source, dict) else None
        if parent is None:
            out.roots.append((info.field_name, args))
            path = ""
        else:
            path = f"{parent}.{info.field_name}" if parent else info.field_name
            out.paths.add(path)
        return _value(info.return_type, path)

    try:
        ast = parse(document)
    except Exception as exc:  # a server that cannot parse runs nothing
        out.errors.append(str(exc))
        return out
    result = execute(
        schema(),
        ast,
        variable_values=dict(variables or {}),
        operation_name=operation_name,
        field_resolver=resolve,
    )
    if isinstance(result, ExecutionResult):
        out.errors.extend(e.message for e in result.errors or ())
    return out


def read_body(body: bytes, content_encoding: str | None, wins: Wins) -> Any:
    """The JSON body as a *wins*-reading server decodes it."""
    if content_encoding == "gzip":
        body = gzip.decompress(body)
    elif content_encoding == "deflate":
        body = zlib.decompress(body)

    def pick(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for key, value in pairs:
            if wins == "last" or key not in result:
                result[key] = value
        return result

    return json.loads(body, object_pairs_hook=pick)


def run_http_body(body: bytes, content_encoding: str | None, wins: Wins) -> Execution:
    """Decode a forwarded GraphQL-over-HTTP body as a careless server would and execute it."""
    try:
        payload = read_body(body, content_encoding, wins)
    except (ValueError, OSError) as exc:
        return Execution(errors=[str(exc)])
    return run(payload.get("query", ""), payload.get("variables"), payload.get("operationName"))
