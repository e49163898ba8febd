"""Input coercion compiled once per plan: variables and field arguments.

graphql-core's ``coerce_input_value``, ``coerce_input_literal`` and
``get_argument_values`` walk the input types again on every request (~30 µs for the
seed notification). A plan knows those types when it is built, so each variable
definition and each argument list is compiled here into closures that check and
convert exactly what graphql-core's functions do for the types they see.

A compiled coercer only decides the *valid* case. Whatever it finds invalid, or
whatever it does not compile (``None``), goes to graphql-core's own function, which
then produces the value or its exact error: the values the upstream executes and the
messages a client reads stay graphql-core's. ``tests/graphql/test_coerce_property.py``
checks the equivalence against graphql-core over generated schemas and values.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from graphql import (
    FieldNode,
    GraphQLEnumType,
    GraphQLField,
    GraphQLInputObjectType,
    GraphQLInputType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLScalarType,
    ListValueNode,
    NullValueNode,
    ObjectValueNode,
    Undefined,
    ValueNode,
    VariableNode,
    coerce_input_literal,
    is_required_argument,
    is_required_input_field,
)
from graphql.pyutils import is_iterable
from graphql.type.scalars import coerce_id, coerce_string
from graphql.utilities.coerce_input_value import coerce_default_value

__all__ = ["Arguments", "Coercer", "Invalid", "compile_arguments", "compile_input"]


class Invalid(Exception):
    """The compiled coercer found the value invalid: let graphql-core say why."""


Coercer = Callable[[Any], Any]
"""A runtime value in, the coerced value out, or :class:`Invalid`."""

Literal = Callable[[Mapping[str, Any]], Any]
"""The coerced variables in, the literal's coerced value out, or :class:`Invalid`."""

_IMMUTABLE = (str, int, float, bool, type(None))


def _default(field: Any) -> Any:
    """graphql-core's memoised default of an argument or input field (or Undefined)."""
    try:
        return coerce_default_value(field)
    except TypeError:
        raise Invalid from None


# --------------------------------------------------------------------------- values


def compile_input(type_: GraphQLInputType, nullable: bool = True) -> Coercer:
    """A coercer equal to ``coerce_input_value(value, type_)`` on every valid value.

    Non-null is a flag of the inner coercer (null refused) rather than one more call."""
    if isinstance(type_, GraphQLNonNull):
        return compile_input(type_.of_type, nullable=False)
    if isinstance(type_, GraphQLList):
        return _list(compile_input(type_.of_type), nullable)
    if isinstance(type_, GraphQLInputObjectType):
        return _input_object(type_, nullable)
    if (
        isinstance(type_, GraphQLEnumType)
        and type(type_).coerce_input_value is GraphQLEnumType.coerce_input_value
    ):
        return _enum(type_, nullable)
    assert isinstance(type_, (GraphQLScalarType, GraphQLEnumType))
    return _leaf(type_, nullable)


def _list(item: Coercer, nullable: bool) -> Coercer:
    def coerce(value: Any) -> Any:
        if value is None or value is Undefined:
            if nullable:
                return None
            raise Invalid
        if type(value) is list or is_iterable(value):
            return [item(v) for v in value]
        # One value where a list is expected is a list of one.
        return [item(value)]

    return coerce


def _input_object(type_: GraphQLInputObjectType, nullable: bool) -> Coercer:
    # Built lazily: input objects may refer to themselves.
    compiled: list[tuple[str, str, Any, bool, Coercer]] = []
    names: frozenset[str] = frozenset()
    out_type = None if _passes_dicts(type_) else type_.out_type
    one_of = type_.is_one_of

    def build() -> None:
        nonlocal names
        for name, field in type_.fields.items():
            compiled.append(
                (
                    name,
                    field.out_name or name,
                    field,
                    is_required_input_field(field),
                    compile_input(field.type),
                )
            )
        names = frozenset(type_.fields)

    def coerce(value: Any) -> Any:
        if value is None or value is Undefined:
            if nullable:
                return None
            raise Invalid
        if not isinstance(value, dict):
            raise Invalid
        if not compiled:
            build()
        defined = 0
        for key, item in value.items():
            if item is not Undefined:
                defined += 1
                if key not in names:
                    raise Invalid
        out: dict[str, Any] = {}
        for name, out_name, field, required, inner in compiled:
            item = value.get(name, Undefined)
            if item is Undefined:
                if required:
                    raise Invalid
                default = _default(field)
                if default is not Undefined:
                    out[out_name] = default
            else:
                out[out_name] = inner(item)
        if one_of and (defined != 1 or len(out) != 1 or next(iter(out.values())) is None):
            raise Invalid
        return out if out_type is None else out_type(out)

    return coerce


def _passes_dicts(type_: GraphQLInputObjectType) -> bool:
    """The type's ``out_type`` is graphql-core's default, which returns the dict as is
    (then the compiled coercers skip the call)."""
    return type_.out_type is GraphQLInputObjectType.out_type


def _enum(type_: GraphQLEnumType, nullable: bool) -> Coercer:
    values = {name: value.value for name, value in type_.values.items()}

    def coerce(value: Any) -> Any:
        if value is None or value is Undefined:
            if nullable:
                return None
            raise Invalid
        if isinstance(value, str):
            try:
                return values[value]
            except KeyError:
                raise Invalid from None
        raise Invalid

    return coerce


def _leaf(type_: GraphQLScalarType | GraphQLEnumType, nullable: bool) -> Coercer:
    parse = type_.coerce_input_value
    # String and ID accept a str as it is: skip the call for the common case.
    passthrough = parse is coerce_string or parse is coerce_id

    def coerce(value: Any) -> Any:
        if value is None or value is Undefined:
            if nullable:
                return None
            raise Invalid
        if passthrough and type(value) is str:
            return value
        try:
            result = parse(value)
        except Exception:  # graphql-core treats any error as invalid
            raise Invalid from None
        if result is Undefined:
            raise Invalid
        return result

    return coerce


# --------------------------------------------------------------------------- literals


def _literal(node: ValueNode, type_: GraphQLInputType) -> Literal | None:
    """``coerce_input_literal(node, type_, variables)`` compiled, or None if not compiled."""
    if isinstance(node, VariableNode):
        return _variable(node.name.value, type_)
    if isinstance(type_, GraphQLNonNull):
        if isinstance(node, NullValueNode):
            return None
        return _literal(node, type_.of_type)
    if isinstance(node, NullValueNode):
        return _constant(None)
    if isinstance(type_, GraphQLList):
        return _list_literal(node, type_)
    if isinstance(type_, GraphQLInputObjectType):
        return _object_literal(node, type_)
    if isinstance(node, (ListValueNode, ObjectValueNode)):
        return None  # a custom scalar's structured literal: graphql-core's to do
    value = coerce_input_literal(node, type_)
    if value is Undefined:
        return None
    if isinstance(value, _IMMUTABLE):
        return _constant(value)
    return lambda _variables: coerce_input_literal(node, type_)


def _constant(value: Any) -> Literal:
    return lambda _variables: value


def _variable(name: str, type_: GraphQLInputType) -> Literal:
    non_null = isinstance(type_, GraphQLNonNull)

    def read(variables: Mapping[str, Any]) -> Any:
        value = variables.get(name, Undefined)
        if value is Undefined or (non_null and value is None):
            raise Invalid
        return value

    return read


def _list_literal(node: ValueNode, type_: GraphQLList[Any]) -> Literal | None:
    item_type = type_.of_type
    if not isinstance(node, ListValueNode):
        single = _literal(node, item_type)
        if single is None:
            return None
        one = single
        return lambda variables: [one(variables)]
    items: list[Literal] = []
    for item in node.values:
        if isinstance(item, VariableNode) and not isinstance(item_type, GraphQLNonNull):
            # A missing variable within a list is null.
            items.append(_nullable_item(item.name.value))
            continue
        compiled = _literal(item, item_type)
        if compiled is None:
            return None
        items.append(compiled)
    return lambda variables: [fn(variables) for fn in items]


def _nullable_item(name: str) -> Literal:
    def read(variables: Mapping[str, Any]) -> Any:
        value = variables.get(name, Undefined)
        return None if value is Undefined else value

    return read


Step = Callable[[Mapping[str, Any], dict[str, Any]], None]
"""Puts one coerced field or argument into the output dict (or raises :class:`Invalid`)."""


def _steps(
    defs: Mapping[str, Any], nodes: Mapping[str, ValueNode], required: Callable[[Any], bool]
) -> list[Step] | None:
    """One step per input field or argument definition, given the literal's value nodes
    by name (None: something graphql-core must coerce). Shared by input object literals
    and field arguments, which graphql-core coerces by the same rules."""
    steps: list[Step] = []
    for name, definition in defs.items():
        out_name = definition.out_name or name
        value_node = nodes.get(name)
        needed = required(definition)
        if value_node is None:
            if needed:
                return None
            step = _default_step(out_name, definition)
            if step is not None:
                steps.append(step)
        elif isinstance(value_node, VariableNode):
            steps.append(_variable_field(out_name, definition, value_node.name.value, needed))
        else:
            compiled = _literal(value_node, definition.type)
            if compiled is None:
                return None
            steps.append(_field_step(out_name, compiled))
    return steps


def _object_literal(node: ValueNode, type_: GraphQLInputObjectType) -> Literal | None:
    if not isinstance(node, ObjectValueNode) or type_.is_one_of:
        return None  # invalid, or @oneOf: graphql-core's to do
    fields = type_.fields
    nodes = {field.name.value: field.value for field in node.fields}
    if any(name not in fields for name in nodes):
        return None
    steps = _steps(fields, nodes, is_required_input_field)
    if steps is None:
        return None
    out_type = None if _passes_dicts(type_) else type_.out_type

    def build(variables: Mapping[str, Any]) -> Any:
        out: dict[str, Any] = {}
        for step in steps:
            step(variables, out)
        return out if out_type is None else out_type(out)

    return build


def _default_step(out_name: str, field: Any) -> Step | None:
    """Puts the field's default in; None when it has none (graphql-core memoises the
    default per field, so what it is now it is on every request: nothing to do then)."""
    try:
        if _default(field) is Undefined:
            return None
    except Invalid:
        pass  # refused per request, as graphql-core would

    def step(_variables: Mapping[str, Any], out: dict[str, Any]) -> None:
        default = _default(field)
        if default is not Undefined:
            out[out_name] = default

    return step


def _variable_field(out_name: str, field: Any, name: str, required: bool) -> Step:
    non_null = isinstance(field.type, GraphQLNonNull)

    def step(variables: Mapping[str, Any], out: dict[str, Any]) -> None:
        value = variables.get(name, Undefined)
        if value is Undefined:
            if required:
                raise Invalid
            default = _default(field)
            if default is not Undefined:
                out[out_name] = default
            return
        if non_null and value is None:
            raise Invalid
        out[out_name] = value

    return step


def _field_step(out_name: str, compiled: Literal) -> Step:
    def step(variables: Mapping[str, Any], out: dict[str, Any]) -> None:
        out[out_name] = compiled(variables)

    return step


# --------------------------------------------------------------------------- arguments


Arguments = Callable[[Mapping[str, Any]], dict[str, Any]]
"""The coerced variables in, ``get_argument_values``'s dict out, or :class:`Invalid`."""


def compile_arguments(field_def: GraphQLField, node: FieldNode) -> Arguments | None:
    """``get_argument_values(field_def, node, variables)`` compiled, or None."""
    nodes = {argument.name.value: argument.value for argument in node.arguments or ()}
    steps = _steps(field_def.args, nodes, is_required_argument)
    if steps is None:
        return None

    def build(variables: Mapping[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for step in steps:
            step(variables, out)
        return out

    return build
