"""A static operation's facts written as one Python function per plan.

On a parse-cache hit the facts of a plan with a static selection and compiled argument
coercers (``OperationPlan._exact``) are its variables coerced, its arguments built and
one :class:`~gateway.facts.OperationFacts`. Done by the compiled closures of
:mod:`gateway.graphql.coerce`, that is a Python call per variable, input field, list
item and argument step (~110k instructions a request for the seed notification,
``bench/bench_parse.py --calls``). :func:`write` writes the same work as the body of one
function: each variable's coercion in place for the usual shapes (a ``str`` for
``String``/``ID``, an enum name, a list, an input object with known members, a custom
scalar's parse function), the arguments as dict displays over the coerced values, and the
facts object filled without running the dataclass' ``__init__`` again.

Only the valid case is decided here, as the compiled closures do: a value of any other
shape goes to the closure ``compile_input`` made for that type, and whatever is invalid
(or raises) makes the function answer None, so the general path runs and refuses with its
own message (``tests/graphql/test_exact_facts.py`` compares both paths).

As in :mod:`gateway.policy.fused`, nothing of the request or the query is written into the
source: variable names, member names, paths, defaults and closures are constants of the
function's namespace (``_k0``, ``_k1``, ...); the source holds only their names, Python
syntax and the helpers below.
"""

from __future__ import annotations

import copy
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
    ObjectValueNode,
    Undefined,
    ValueNode,
    VariableNode,
    is_required_argument,
    is_required_input_field,
)
from graphql.type.scalars import coerce_id, coerce_string

from gateway.codegen import SourceWriter
from gateway.facts import OperationFacts
from gateway.graphql.coerce import Invalid, _default, _literal, _passes_dicts, compile_input

__all__ = ["Exact", "write"]

Exact = Callable[[Mapping[str, Any], Any], OperationFacts | None]
"""One request's variables and the plan in, its facts out; None where the general path
must decide. The plan is an argument, not a constant: a plan holding its function holding
the plan would be a cycle, freed by the collector only, not when the cache drops it."""

MAX_DEPTH = 6
"""Type levels written in place; below that (and for recursive input types) the compiled
closure of the type is called."""


class _Open:
    """:class:`OperationFacts`' slot layout without its frozen ``__setattr__``: filled slot
    by slot, then given the class ``OperationFacts`` (the dataclass ``__init__`` would set
    the same slots through ``object.__setattr__``, one call each)."""

    __slots__ = OperationFacts.__slots__


HELPERS: dict[str, Any] = {
    "_U": Undefined,
    "_new": object.__new__,
    "_Open": _Open,
    "_Facts": OperationFacts,
    "_deepcopy": copy.deepcopy,
    "_default": _default,
    "type": type,
    "str": str,
    "list": list,
    "dict": dict,
}
"""The module's own helpers the written source uses by name."""


class _Decline(Exception):
    """A shape the writer does not write: the plan keeps its compiled closures."""


Variable = tuple[Any, bool, Any, Any]
"""A plan's variable: its signature, whether it has a default, its compiled coercer, and
its coerced default (Undefined without one)."""

General = dict[str, Any]
"""The facts' fields that are the same for every request of a plan (``general_facts``)."""

Argumented = tuple[tuple[str, FieldNode, GraphQLField], ...]
"""The argumented selections of a static plan: root field first (path ``""``), then each
one below it by path."""


def write(
    variables: tuple[Variable, ...], argumented: Argumented, general: General
) -> Exact | None:
    """The plan's facts function, or None when the writer declines a shape of it."""
    try:
        return _Writer().build(variables, argumented, general)[0]
    except _Decline:
        return None


def source_of(
    variables: tuple[Variable, ...], argumented: Argumented, general: General
) -> str | None:
    """The source :func:`write` compiles (tests check that no query text is in it)."""
    try:
        return _Writer().build(variables, argumented, general)[1]
    except _Decline:
        return None


def _never_null(type_: GraphQLInputType) -> bool:
    """Whether a non-null value of *type_* always coerces to something other than None
    (a custom scalar's parse function or an enum value may give None)."""
    if isinstance(type_, GraphQLList):
        return True
    if isinstance(type_, GraphQLInputObjectType):
        return _passes_dicts(type_)
    return isinstance(type_, GraphQLScalarType) and type_.coerce_input_value in (
        coerce_string,
        coerce_id,
    )


class _Writer(SourceWriter):
    """Builds the facts function's body, its constants and temporaries."""

    def __init__(self) -> None:
        super().__init__()
        self.locals: dict[str, tuple[str, bool, bool]] = {}
        """Variable name -> (local holding its coerced value, whether it may be absent,
        whether it may be null)."""

    def build(
        self, variables: tuple[Variable, ...], argumented: Argumented, general: General
    ) -> tuple[Exact, str]:
        ind = "        "
        self.line(ind, "c = {}")
        for variable in variables:
            self._variable(variable, ind)
        root = "{}"
        at: dict[str, list[str]] = {}
        for path, node, field_def in argumented:
            out = self.temp()
            self._arguments(field_def, node, out, ind)
            if path:
                at.setdefault(path, []).append(out)
            else:
                root = out
        at_display = ", ".join(
            f"{self.const(path)}: [{', '.join(outs)}]" for path, outs in at.items()
        )
        self.line(ind, "f = _new(_Open)")
        for name in OperationFacts.__slots__:
            if name == "arguments":
                value = root
            elif name == "arguments_at":
                value = "{" + at_display + "}"
            elif name == "variables":
                value = "c"
            elif name == "plan":
                value = "plan"
            else:
                value = self.const(general[name])
            self.line(ind, f"f.{name} = {value}")
        self.line(ind, "f.__class__ = _Facts")
        self.line(ind, "return f")
        names = [*self.consts, *HELPERS]
        params = "".join(f", {n}={n}" for n in names)
        src = "\n".join(
            [
                f"def exact(inputs, plan{params}):",
                "    try:",
                *self.body,
                "    except Exception:",  # invalid, or any surprise: the general path says
                "        return None",
                "",
            ]
        )
        namespace: dict[str, Any] = {**self.consts, **HELPERS}
        exec(compile(src, "<written facts>", "exec"), namespace)
        run: Exact = namespace["exact"]
        return run, src

    # -- variables ----------------------------------------------------------------------

    def _variable(self, variable: Variable, ind: str) -> None:
        """``OperationPlan._coerce_fast`` for one variable, into ``c`` and a local."""
        signature, has_default, coercer, default = variable
        local = self.temp()
        name = self.const(signature.name)
        non_null = isinstance(signature.type, GraphQLNonNull)
        self.locals[signature.name] = (
            local,
            not has_default and not non_null,
            not (non_null and _never_null(signature.type.of_type)),
        )
        x = self.temp()
        self.line(ind, f"{x} = inputs.get({name}, _U)")
        self.line(ind, f"if {x} is _U:")
        if has_default:
            if isinstance(default, (dict, list)):  # never two requests the same one
                self.line(ind, f"    {local} = _deepcopy({self.const(default)})")
            else:
                self.line(ind, f"    {local} = {self.const(default)}")
            self.line(ind, f"    c[{name}] = {local}")
        elif non_null:
            self.line(ind, "    return None")
        else:
            self.line(ind, f"    {local} = _U")
        self.line(ind, "else:")
        self._coerce(signature.type, coercer, x, local, ind + "    ", 0)
        self.line(ind, f"    c[{name}] = {local}")

    def _coerce(
        self, type_: GraphQLInputType, coercer: Any, src: str, dst: str, ind: str, depth: int
    ) -> None:
        """``dst = coercer(src)``, in place for the usual shapes (``compile_input``'s
        coercer, *coercer*, decides all others: null, other types, refusals)."""
        inner = type_.of_type if isinstance(type_, GraphQLNonNull) else type_
        k = self.const(coercer)
        if depth >= MAX_DEPTH:
            self.line(ind, f"{dst} = {k}({src})")
        elif isinstance(inner, GraphQLList):
            item_type = inner.of_type
            item, y = self.temp(), self.temp()
            self.line(ind, f"if type({src}) is list:")
            self.line(ind, f"    {dst} = []")
            self.line(ind, f"    for {item} in {src}:")
            self._coerce(item_type, compile_input(item_type), item, y, ind + "        ", depth + 1)
            self.line(ind, f"        {dst}.append({y})")
            self.line(ind, "else:")
            self.line(ind, f"    {dst} = {k}({src})")
        elif isinstance(inner, GraphQLInputObjectType):
            if inner.is_one_of or not _passes_dicts(inner):
                self.line(ind, f"{dst} = {k}({src})")
                return
            names = self.const(frozenset(inner.fields))
            self.line(ind, f"if type({src}) is dict and {src}.keys() <= {names}:")
            self.line(ind, f"    {dst} = {{}}")
            for name, field in inner.fields.items():
                item, y = self.temp(), self.temp()
                out = self.const(field.out_name or name)
                self.line(ind, f"    {item} = {src}.get({self.const(name)}, _U)")
                self.line(ind, f"    if {item} is _U:")
                if is_required_input_field(field):
                    self.line(ind, "        return None")
                else:
                    self._default(field, dst, out, ind + "        ")
                self.line(ind, "    else:")
                self._coerce(
                    field.type, compile_input(field.type), item, y, ind + "        ", depth + 1
                )
                self.line(ind, f"        {dst}[{out}] = {y}")
            self.line(ind, "else:")
            self.line(ind, f"    {dst} = {k}({src})")
        elif (
            isinstance(inner, GraphQLEnumType)
            and type(inner).coerce_input_value is GraphQLEnumType.coerce_input_value
        ):
            values = self.const({name: value.value for name, value in inner.values.items()})
            self.line(ind, f"if type({src}) is str and {src} in {values}:")
            self.line(ind, f"    {dst} = {values}[{src}]")
            self.line(ind, "else:")
            self.line(ind, f"    {dst} = {k}({src})")
        elif isinstance(inner, (GraphQLScalarType, GraphQLEnumType)):
            parse = inner.coerce_input_value
            if parse is coerce_string or parse is coerce_id:
                self.line(ind, f"{dst} = {src} if type({src}) is str else {k}({src})")
                return
            self.line(ind, f"if {src} is None or {src} is _U:")
            self.line(ind, f"    {dst} = {k}({src})")
            self.line(ind, "else:")
            self.line(ind, f"    {dst} = {self.const(parse)}({src})")
            self.line(ind, f"    if {dst} is _U:")
            self.line(ind, "        return None")
        else:
            self.line(ind, f"{dst} = {k}({src})")

    def _default(self, field: Any, dst: str, out: str, ind: str) -> None:
        """The field's default into ``dst[out]`` (graphql-core memoises it per field: one
        that has none now has none on any request, so nothing is written)."""
        try:
            if _default(field) is Undefined:
                self.line(ind, "pass")
                return
        except Invalid:
            pass  # refused per request, as the compiled step does
        d = self.temp()
        self.line(ind, f"{d} = _default({self.const(field)})")
        self.line(ind, f"if {d} is not _U:")
        self.line(ind, f"    {dst}[{out}] = {d}")

    # -- arguments ----------------------------------------------------------------------

    def _arguments(self, field_def: GraphQLField, node: FieldNode, out: str, ind: str) -> None:
        """``compile_arguments(field_def, node)`` in place, into the local *out*."""
        nodes = {argument.name.value: argument.value for argument in node.arguments or ()}
        self.line(ind, f"{out} = {{}}")
        self._steps(field_def.args, nodes, is_required_argument, out, ind)

    def _steps(
        self,
        defs: Mapping[str, Any],
        nodes: Mapping[str, ValueNode],
        required: Callable[[Any], bool],
        out: str,
        ind: str,
    ) -> None:
        """``coerce._steps`` in place: each argument or input field into ``out``."""
        for name, definition in defs.items():
            key = self.const(definition.out_name or name)
            value_node = nodes.get(name)
            needed = required(definition)
            if value_node is None:
                if needed:
                    raise _Decline
                self._default(definition, out, key, ind)
            elif isinstance(value_node, VariableNode):
                self._variable_step(definition, value_node.name.value, needed, out, key, ind)
            else:
                self._literal(value_node, definition.type, out, key, ind)

    def _variable_step(
        self, definition: Any, variable: str, needed: bool, out: str, key: str, ind: str
    ) -> None:
        """``coerce._variable_field``: the variable's coerced value (or the default)."""
        if variable not in self.locals:
            raise _Decline  # not a declared variable (validation refuses such a plan)
        local, may_be_absent, may_be_null = self.locals[variable]
        if may_be_absent:
            self.line(ind, f"if {local} is _U:")
            if needed:
                self.line(ind, "    return None")
            else:
                self._default(definition, out, key, ind + "    ")
            self.line(ind, "else:")
            ind += "    "
        if may_be_null and isinstance(definition.type, GraphQLNonNull):
            self.line(ind, f"if {local} is None:")
            self.line(ind, "    return None")
        self.line(ind, f"{out}[{key}] = {local}")

    def _literal(
        self, node: ValueNode, type_: GraphQLInputType, out: str, key: str, ind: str
    ) -> None:
        """``coerce._literal``: an input object literal in place, any other literal by its
        compiled closure over ``c``."""
        inner = type_.of_type if isinstance(type_, GraphQLNonNull) else type_
        if (
            isinstance(node, ObjectValueNode)
            and isinstance(inner, GraphQLInputObjectType)
            and not inner.is_one_of
            and _passes_dicts(inner)
        ):
            nodes = {field.name.value: field.value for field in node.fields}
            if any(name not in inner.fields for name in nodes):
                raise _Decline
            obj = self.temp()
            self.line(ind, f"{obj} = {{}}")
            self._steps(inner.fields, nodes, is_required_input_field, obj, ind)
            self.line(ind, f"{out}[{key}] = {obj}")
            return
        compiled = _literal(node, type_)
        if compiled is None:
            raise _Decline
        self.line(ind, f"{out}[{key}] = {self.const(compiled)}(c)")
