"""The compiled coercers decide exactly what graphql-core's coercion decides.

Hypothesis builds input types (the specified scalars, a custom scalar, enums, input
objects with required fields, defaults, out names and ``@oneOf``, lists, non-null) and
values for them, valid and not, plus argument literals with variables inside. For each,
graphql-core's ``coerce_input_value`` / ``get_argument_values`` is the reference: the
compiled coercer must give the same value (same types, not just equal), and refuse
(``Invalid``) exactly what graphql-core refuses. The bundled schemas' input types and the
published query templates run through the same comparison.
"""

from __future__ import annotations

import itertools
import json
import re
from pathlib import Path
from typing import Any

import pytest
from graphql import (
    GraphQLArgument,
    GraphQLBoolean,
    GraphQLEnumType,
    GraphQLError,
    GraphQLField,
    GraphQLFloat,
    GraphQLID,
    GraphQLInputField,
    GraphQLInputObjectType,
    GraphQLInputType,
    GraphQLInt,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLScalarType,
    GraphQLSchema,
    GraphQLString,
    OperationDefinitionNode,
    Undefined,
    coerce_input_value,
    get_named_type,
    is_input_type,
    parse,
    validate,
)
from graphql.execution.values import get_argument_values, get_variable_values
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from gateway.graphql import load_schema
from gateway.graphql.coerce import Invalid, compile_arguments, compile_input

ROOT = Path(__file__).resolve().parents[2]
SCHEMAS = sorted((ROOT / "config" / "schemas").glob("*.graphql"))
TEMPLATES = sorted((ROOT / "policies" / "iwlz" / "raadplegingen" / "templates").glob("*.graphql"))

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _upper(value: Any) -> Any:
    if not isinstance(value, str):
        raise TypeError("Code cannot represent a non string value")
    return value.upper()


CODE = GraphQLScalarType("Code", coerce_input_value=_upper)
"""A custom scalar that changes what it accepts (parse_value)."""
COLOR = GraphQLEnumType("Color", {"RED": "red", "GREEN": 2, "BLUE": None})
_names = itertools.count()

LEAVES: list[GraphQLInputType] = [
    GraphQLString,
    GraphQLInt,
    GraphQLFloat,
    GraphQLBoolean,
    GraphQLID,
    CODE,
    COLOR,
]


@st.composite
def input_objects(draw: st.DrawFn, inner: st.SearchStrategy[GraphQLInputType]) -> Any:
    one_of = draw(st.booleans()) and draw(st.booleans())
    count = draw(st.integers(1, 4))
    fields: dict[str, GraphQLInputField] = {}
    for index in range(count):
        type_ = draw(inner)
        if one_of:
            type_ = type_.of_type if isinstance(type_, GraphQLNonNull) else type_
        default: Any = Undefined
        if not one_of and get_named_type(type_) in (GraphQLString, GraphQLInt):
            default = draw(st.sampled_from([Undefined, None, 7, "seven"]))
        if default is not Undefined:
            valid = coerce_input_value(default, type_)
            default = Undefined if valid is Undefined else default
        out_name = draw(st.sampled_from([None, None, f"out{index}"]))
        fields[f"f{index}"] = GraphQLInputField(type_, default_value=default, out_name=out_name)
    return GraphQLInputObjectType(f"In{next(_names)}", fields, is_one_of=one_of)


def wrappers(inner: st.SearchStrategy[GraphQLInputType]) -> st.SearchStrategy[Any]:
    return st.one_of(
        inner.map(GraphQLList),
        inner.map(lambda t: t if isinstance(t, GraphQLNonNull) else GraphQLNonNull(t)),
        input_objects(inner),
    )


input_types = st.recursive(st.sampled_from(LEAVES), wrappers, max_leaves=8)

JUNK = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**40), 2**40),
    st.floats(allow_nan=True),
    st.text(max_size=4),
    st.just("RED"),
    st.just([]),
    st.just({}),
)


def values(type_: GraphQLInputType, depth: int = 0) -> st.SearchStrategy[Any]:
    """Mostly well-formed values for *type_*, sometimes not."""
    if depth > 6:
        return JUNK
    if isinstance(type_, GraphQLNonNull):
        return st.one_of(values(type_.of_type, depth + 1), st.none())
    if isinstance(type_, GraphQLList):
        item = values(type_.of_type, depth + 1)
        return st.one_of(st.lists(item, max_size=3), item, st.tuples(item), st.none())
    if isinstance(type_, GraphQLInputObjectType):
        fields = {name: values(f.type, depth + 1) for name, f in type_.fields.items()}
        known = st.fixed_dictionaries({}, optional=fields)
        return st.one_of(
            known,
            known,
            st.tuples(known, st.sampled_from(["f0", "zz"]), JUNK).map(
                lambda t: {**t[0], t[1]: t[2]}
            ),
            JUNK,
        )
    if isinstance(type_, GraphQLEnumType):
        return st.one_of(st.sampled_from([*type_.values, "PURPLE"]), JUNK)
    specific = {
        "Int": st.one_of(st.integers(-(2**33), 2**33), st.just(1.0), st.just(1.5)),
        "Float": st.one_of(st.floats(), st.integers(), st.just("1.5")),
        "Boolean": st.one_of(st.booleans(), st.just(0)),
        "ID": st.one_of(st.text(max_size=3), st.integers(), st.just(1.5)),
    }.get(type_.name, st.text(max_size=3))
    return st.one_of(specific, specific, JUNK)


def strictly_equal(a: Any, b: Any) -> bool:
    """Equal and of the same types all the way down (1 == True == 1.0 is not enough)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(strictly_equal(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(map(strictly_equal, a, b))
    if isinstance(a, float) and a != a:
        return bool(b != b)
    return bool(a == b)


def compiled_value(value: Any, type_: GraphQLInputType) -> Any:
    try:
        return compile_input(type_)(value)
    except Invalid:
        return Undefined


def assert_same_value(value: Any, type_: GraphQLInputType) -> None:
    expected = coerce_input_value(value, type_)
    got = compiled_value(value, type_)
    if expected is Undefined:
        assert got is Undefined, (value, str(type_), got)
    else:
        assert strictly_equal(got, expected), (value, str(type_), got, expected)


@st.composite
def typed_values(draw: st.DrawFn) -> tuple[GraphQLInputType, Any]:
    type_ = draw(input_types)
    return type_, draw(values(type_))


@SETTINGS
@given(case=typed_values())
def test_a_compiled_value_coercer_decides_what_graphql_core_decides(
    case: tuple[GraphQLInputType, Any],
) -> None:
    event("refused" if coerce_input_value(case[1], case[0]) is Undefined else "coerced")
    assert_same_value(case[1], case[0])


# --------------------------------------------------------------------------- literals


_NAME = re.compile(r"[_A-Za-z][_0-9A-Za-z]*")


def literal(value: Any, type_: GraphQLInputType) -> str:
    """A GraphQL literal for *value* (enum names bare when the position is an enum)."""
    named = get_named_type(type_)
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value) if value == value and abs(value) != float("inf") else "1.5"
    if isinstance(value, str):
        if isinstance(named, GraphQLEnumType) and _NAME.fullmatch(value):
            return value if value not in ("true", "false", "null") else json.dumps(value)
        return json.dumps(value)
    inner = type_.of_type if isinstance(type_, GraphQLNonNull) else type_
    if isinstance(value, (list, tuple)):
        item = inner.of_type if isinstance(inner, GraphQLList) else inner
        return "[" + " ".join(literal(v, item) for v in value) + "]"
    fields = inner.fields if isinstance(inner, GraphQLInputObjectType) else {}
    parts = [
        f"{k}: {literal(v, fields[k].type if k in fields else GraphQLString)}"
        for k, v in value.items()
    ]
    return "{" + " ".join(parts) + "}"


@st.composite
def argument_literal(
    draw: st.DrawFn,
    type_: GraphQLInputType,
    variables: dict[str, tuple[GraphQLInputType, Any]],
    depth: int = 0,
) -> str:
    """A literal for *type_* whose parts may be variables (declared with their position's
    type, given a value or not)."""
    if draw(st.integers(0, 3)) == 0:
        name = f"v{len(variables)}"
        # Declared with the position's type or its nullable form: the upstream executes
        # without validation, so a null may reach a non-null position.
        declared = type_
        if isinstance(type_, GraphQLNonNull) and draw(st.booleans()):
            declared = type_.of_type
        variables[name] = (declared, draw(st.one_of(values(declared), st.just(Undefined))))
        return "$" + name
    inner = type_.of_type if isinstance(type_, GraphQLNonNull) else type_
    if depth < 4 and isinstance(inner, GraphQLList) and draw(st.booleans()):
        items = [
            draw(argument_literal(inner.of_type, variables, depth + 1))
            for _ in range(draw(st.integers(0, 3)))
        ]
        return "[" + " ".join(items) + "]"
    if depth < 4 and isinstance(inner, GraphQLInputObjectType) and draw(st.booleans()):
        chosen = draw(st.lists(st.sampled_from(sorted(inner.fields)), unique=True))
        parts = [
            f"{k}: {draw(argument_literal(inner.fields[k].type, variables, depth + 1))}"
            for k in chosen
        ]
        return "{" + " ".join(parts) + "}"
    return literal(draw(values(type_)), type_)


def arguments_compared(schema: GraphQLSchema, query: str, inputs: dict[str, Any]) -> str:
    """Compare the compiled arguments with graphql-core's for the root field of *query*."""
    document = parse(query)
    operation = document.definitions[0]
    assert isinstance(operation, OperationDefinitionNode)
    variables = get_variable_values(schema, operation.variable_definitions or (), inputs)
    if isinstance(variables, list):
        return "variables refused"
    node = operation.selection_set.selections[0]
    root = schema.query_type
    assert root is not None
    field_def = root.fields[node.name.value]  # type: ignore[attr-defined]
    compiled = compile_arguments(field_def, node)  # type: ignore[arg-type]
    try:
        expected: Any = get_argument_values(field_def, node, variables)  # type: ignore[arg-type]
    except GraphQLError:
        expected = Undefined
    if compiled is None:
        return "not compiled"
    try:
        got: Any = compiled(variables.coerced)
    except Invalid:
        got = Undefined
    if expected is Undefined:
        assert got is Undefined, (query, inputs, got)
        return "refused"
    assert strictly_equal(got, expected), (query, inputs, got, expected)
    return "same"


def one_field_schema(type_: GraphQLInputType) -> GraphQLSchema:
    field = GraphQLField(
        GraphQLString,
        {"a": GraphQLArgument(type_), "b": GraphQLArgument(GraphQLInt, default_value=3)},
    )
    return GraphQLSchema(GraphQLObjectType("Query", {"f": field}))


@SETTINGS
@given(data=st.data())
def test_compiled_arguments_decide_what_graphql_core_decides(data: st.DataObject) -> None:
    type_ = data.draw(input_types)
    schema = one_field_schema(type_)
    variables: dict[str, tuple[GraphQLInputType, Any]] = {}
    text = data.draw(argument_literal(type_, variables))
    declared = " ".join(f"${n}: {t}" for n, (t, _) in variables.items())
    query = f"query{f'({declared})' if declared else ''} {{ f(a: {text}) }}"
    inputs = {n: v for n, (_, v) in variables.items() if v is not Undefined}
    event(arguments_compared(schema, query, inputs))


# --------------------------------------------------------------------------- bundled


def _schema_input_types() -> list[tuple[str, GraphQLInputType]]:
    out: list[tuple[str, GraphQLInputType]] = []
    for path in SCHEMAS:
        schema = load_schema(path)
        for name, type_ in sorted(schema.type_map.items()):
            if is_input_type(type_) and not name.startswith("__"):
                out.append((f"{path.stem}:{name}", type_))
    return out


@pytest.mark.parametrize(("label", "type_"), _schema_input_types())
def test_the_bundled_schemas_input_types_coerce_as_graphql_core_does(
    label: str, type_: GraphQLInputType
) -> None:
    @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
    @given(
        value=st.one_of(values(type_), values(GraphQLList(type_))),
        wrap=st.sampled_from(["", "!", "[]"]),
    )
    def check(value: Any, wrap: str) -> None:
        wrapped: Any = {"": type_, "!": GraphQLNonNull(type_), "[]": GraphQLList(type_)}
        assert_same_value(value, wrapped[wrap])

    check()


def _template_schema(query: str) -> GraphQLSchema:
    document = parse(query)
    for path in SCHEMAS:
        schema = load_schema(path)
        if not validate(schema, document):
            return schema
    raise AssertionError("no bundled schema validates this template")


@pytest.mark.parametrize("template", TEMPLATES, ids=lambda p: p.stem)
def test_the_published_templates_arguments_coerce_as_graphql_core_does(template: Path) -> None:
    query = template.read_text(encoding="utf-8")
    inputs = json.loads(template.with_suffix(".variables.json").read_text(encoding="utf-8"))
    schema = _template_schema(query)
    assert arguments_compared(schema, query, inputs) == "same"


COLOR_IN = GraphQLInputObjectType(
    "ColorIn",
    {"c": GraphQLInputField(COLOR), "s": GraphQLInputField(GraphQLString)},
    is_one_of=True,
)


@pytest.mark.parametrize(
    ("type_", "query", "inputs", "outcome"),
    [
        (GraphQLList(GraphQLString), "query($v: String) { f(a: [$v, null]) }", {}, "same"),
        (
            GraphQLList(GraphQLNonNull(GraphQLString)),
            "query($v: String) { f(a: [$v]) }",
            {"v": None},
            "refused",
        ),
        (GraphQLNonNull(GraphQLString), "query($v: String) { f(a: $v) }", {"v": None}, "refused"),
        (GraphQLList(GraphQLInt), "query($v: Int) { f(a: $v) }", {"v": 4}, "same"),
        (GraphQLList(COLOR), "{ f(a: GREEN) }", {}, "same"),
        (COLOR_IN, "{ f(a: {c: RED}) }", {}, "not compiled"),
    ],
)
def test_edge_cases_of_literals_with_variables(
    type_: GraphQLInputType, query: str, inputs: dict[str, Any], outcome: str
) -> None:
    """Missing or null variables inside lists and non-null positions; @oneOf literals go
    to graphql-core."""
    assert arguments_compared(one_field_schema(type_), query, inputs) == outcome
