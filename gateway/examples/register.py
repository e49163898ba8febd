"""An example iWlz register (Bemiddelingsregister, Indicatieregister) behind the gateway.

It executes each raadpleging with graphql-core against the register's schema over fixture
records kept as data (``config/demo/registers/*.yaml``), so the published query templates
can be tried as written. A fixture file holds:

- ``route``: the gateway route the register stands behind;
- ``records``: per object type of the schema, its records (plain attributes, plus the
  keys that tie them together);
- ``links``: per ``Type.field`` that leads to other records, the join as
  ``{key on the related record: key on this record}``; the related type is the field's
  type in the schema (a link not in the schema, e.g. ``Regiehouder.client``, names it
  with ``type:``).

``where: {field: {eq: value}}`` filters (with ``and``/``or``, the other comparison
operators, nested filters on links and ``some``/``all``/``none``/``any`` on lists) are
applied to the records; what matches nothing is ``[]`` (or ``null`` for one record).
Dates compare as ISO text. A filter key that is neither an attribute nor a link of the
type (``agbCodeInstelling``, ``raadpleegDatum``: checks of the real register) is ignored.
"""

from __future__ import annotations

import datetime as _dt
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web
from graphql import GraphQLList, GraphQLResolveInfo, GraphQLSchema, get_named_type, graphql
from graphql.type import get_nullable_type

from gateway.config.yamlsource import Source, read_source
from gateway.graphql.schema import load_schema

Record = dict[str, Any]


def _ordered(compare: Callable[[Any, Any], bool]) -> Callable[[Any, Any], bool]:
    return lambda v, o: v is not None and o is not None and compare(v, o)


def _text(test: Callable[[str, str], bool]) -> Callable[[Any, Any], bool]:
    return lambda v, o: isinstance(v, str) and isinstance(o, str) and test(v, o)


_OPERATIONS: dict[str, Callable[[Any, Any], bool]] = {
    "eq": operator.eq,
    "in": lambda v, o: v in (o or ()),
    "gt": _ordered(operator.gt),
    "gte": _ordered(operator.ge),
    "lt": _ordered(operator.lt),
    "lte": _ordered(operator.le),
    "contains": _text(lambda v, o: o in v),
    "startsWith": _text(str.startswith),
    "endsWith": _text(str.endswith),
}
"""The filter operators; each also comes negated with an ``n`` in front (``neq``, ``ngt``)."""


class RegisterDataError(ValueError):
    """A register fixture file cannot be read; the message names the file and place."""


@dataclass(frozen=True, slots=True)
class Link:
    """How ``Type.field`` finds its related records."""

    type: str
    on: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class RegisterData:
    """The records of one example register and how they link."""

    records: Mapping[str, list[Record]]
    links: Mapping[tuple[str, str], Link]


def _read(path: Path) -> tuple[Source, dict[str, Any]]:
    """The fixture file *path*: its source (for positions) and its mapping."""
    source, issues = read_source(path)
    if issues:
        raise RegisterDataError("; ".join(map(str, issues)))
    if not isinstance(source.data, dict) or not {"route", "records"} <= source.data.keys():
        raise RegisterDataError(f"{path}: expected a mapping with route, records and links")
    return source, source.data


def register_routes(folder: Path) -> dict[str, Path]:
    """Route path -> fixture file, for every ``*.yaml`` in *folder*."""
    return {str(_read(path)[1]["route"]): path for path in sorted(folder.glob("*.yaml"))}


def load_register_data(path: Path, schema: GraphQLSchema) -> RegisterData:
    """Read the fixture file *path* for a register with *schema*."""
    source, data = _read(path)
    records = {name: [_plain(r) for r in rows] for name, rows in data["records"].items()}
    links: dict[tuple[str, str], Link] = {}
    for key, spec in (data.get("links") or {}).items():
        type_name, _, field = key.partition(".")
        spec = dict(spec)
        target = spec.pop("type", None) or _field_type(schema, type_name, field)
        if target is None:
            raise RegisterDataError(
                f"{source.location(('links', key))}: {key} is not a field of the schema; "
                "name the related type with type:"
            )
        links[(type_name, field)] = Link(target, spec)
    return RegisterData(records, links)


def _plain(value: Any) -> Any:
    """YAML dates as the ISO text GraphQL sends and answers."""
    if isinstance(value, _dt.date):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _field_type(schema: GraphQLSchema, type_name: str, field: str) -> str | None:
    owner = schema.type_map.get(type_name)
    fields = getattr(owner, "fields", {})
    return get_named_type(fields[field].type).name if field in fields else None


class Register:
    """Resolves a register's fields over its :class:`RegisterData`."""

    def __init__(self, data: RegisterData, schema: GraphQLSchema) -> None:
        self.data = data
        self.schema = schema

    def related(self, type_name: str, record: Record, field: str) -> list[Record] | None:
        """The records ``type_name.field`` leads to from *record*; None: not a link."""
        link = self.data.links.get((type_name, field))
        if link is None:
            return None
        return [
            r
            for r in self.data.records.get(link.type, ())
            if all(r.get(theirs) == record.get(mine) for theirs, mine in link.on.items())
        ]

    def matches(self, type_name: str, record: Record, where: Mapping[str, Any]) -> bool:
        """Whether *record* of *type_name* passes the filter *where*."""
        return all(self._condition(type_name, record, key, cond) for key, cond in where.items())

    def _condition(self, type_name: str, record: Record, key: str, cond: Any) -> bool:
        if cond is None:  # where: {field: null} sets no condition
            return True
        if key == "and":
            return all(self.matches(type_name, record, c) for c in cond)
        if key == "or":
            return any(self.matches(type_name, record, c) for c in cond)
        related = self.related(type_name, record, key)
        if related is not None:
            target = self.data.links[(type_name, key)].type
            return _list_condition(related, cond, lambda r, c: self.matches(target, r, c))
        if not isinstance(cond, dict) or _field_type(self.schema, type_name, key) is None:
            return True
        return _compare(record.get(key), cond)

    def resolve(self, parent: Any, info: GraphQLResolveInfo[Any], **args: Any) -> Any:
        """The field resolver: attributes as stored, links and roots as filtered records."""
        type_name, field = info.parent_type.name, info.field_name
        target = get_named_type(info.return_type).name
        found: list[Record] | None
        if info.parent_type is info.schema.query_type:
            found = self.data.records.get(target, [])
        else:
            found = self.related(type_name, parent, field)
            if found is None:
                return parent.get(field)
        where = args.get("where")
        if where:
            found = [r for r in found or () if self.matches(target, r, where)]
        if isinstance(get_nullable_type(info.return_type), GraphQLList):
            return found
        return found[0] if found else None


def _list_condition(
    related: list[Record], cond: Mapping[str, Any], matches: Callable[[Record, Any], bool]
) -> bool:
    """``some``/``all``/``none``/``any`` on a list of related records; a plain filter on a
    link passes when one related record passes it."""
    if {"some", "all", "none", "any"} & cond.keys():
        checks: dict[str, Callable[[Any], bool]] = {
            "some": lambda c: any(matches(r, c) for r in related),
            "all": lambda c: all(matches(r, c) for r in related),
            "none": lambda c: not any(matches(r, c) for r in related),
            "any": lambda c: bool(related) == c,
        }
        return all(checks[op](c) for op, c in cond.items() if op in checks)
    return any(matches(r, cond) for r in related)


def _compare(value: Any, cond: Mapping[str, Any]) -> bool:
    """One value against ``{op: operand, ...}`` (every operator must hold)."""
    return all(_operation(value, op, operand) for op, operand in cond.items())


def _operation(value: Any, op: str, operand: Any) -> bool:
    if op == "and":
        return all(_compare(value, c) for c in operand)
    if op == "or":
        return any(_compare(value, c) for c in operand)
    if op in _OPERATIONS:
        return _OPERATIONS[op](value, operand)
    return not _OPERATIONS[op[1:]](value, operand)


async def _graphql(request: web.Request) -> web.Response:
    schema, register = request.app[SCHEMA], request.app[REGISTER]
    try:
        body = orjson.loads(await request.read())
    except orjson.JSONDecodeError:
        body = None
    if not isinstance(body, dict) or not isinstance(body.get("query"), str):
        return _json(400, {"errors": [{"message": "expected a JSON object with a query"}]})
    variables = body.get("variables")
    operation = body.get("operationName")
    result = await graphql(
        schema,
        body["query"],
        variable_values=variables if isinstance(variables, dict) else None,
        operation_name=operation if isinstance(operation, str) else None,
        field_resolver=register.resolve,
    )
    return _json(200, result.formatted)


def _json(status: int, body: Any) -> web.Response:
    return web.Response(status=status, body=orjson.dumps(body), content_type="application/json")


SCHEMA: web.AppKey[GraphQLSchema] = web.AppKey("schema", GraphQLSchema)
REGISTER: web.AppKey[Register] = web.AppKey("register", Register)


def create_register_app(schema_path: Path, data_path: Path) -> web.Application:
    """An example register answering ``POST /graphql`` (any path) with the records of
    *data_path*, executed against the SDL at *schema_path*."""
    schema = load_schema(schema_path)
    app = web.Application()
    app[SCHEMA] = schema
    app[REGISTER] = Register(load_register_data(data_path, schema), schema)
    app.router.add_post("/{tail:.*}", _graphql)
    return app
