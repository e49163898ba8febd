"""Compiling a parsed GraphQL document into per-operation plans (everything that does
not depend on variables), and running a plan against one request's variables.

A plan holds the chosen operation, its variable definitions, its root field(s) with
fragments expanded and constant ``@skip``/``@include`` already applied, a template
of the root field's arguments, and the dotted paths of the selection. Per request
only the variables are coerced, substituted into the template and used for the
variable-dependent ``@skip``/``@include``.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from graphql import (
    BooleanValueNode,
    DocumentNode,
    EnumValueNode,
    FieldNode,
    FloatValueNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLField,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLSchema,
    InlineFragmentNode,
    IntValueNode,
    ListTypeNode,
    ListValueNode,
    NamedTypeNode,
    NonNullTypeNode,
    NullValueNode,
    ObjectValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    StringValueNode,
    TypeNode,
    Undefined,
    ValueNode,
    VariableDefinitionNode,
    VariableNode,
    get_named_type,
    is_abstract_type,
    is_non_null_type,
    print_ast,
    value_from_ast_untyped,
)
from graphql.execution.collect_fields import (
    FieldDetails,
    FragmentDetails,
    collect_fields,
    collect_subfields,
)
from graphql.execution.get_variable_signature import (
    GraphQLVariableSignature,
    get_variable_signature,
)
from graphql.execution.values import (
    VariableValues,
    VariableValueSource,
    get_argument_values,
    get_variable_values,
)

from gateway.config.model import GraphQLLimits
from gateway.facts import OperationFacts, Var
from gateway.graphql.coerce import Arguments, Coercer, Invalid, compile_arguments, compile_input
from gateway.graphql.limits import over_limit
from gateway.graphql.validation import root_type_name
from gateway.graphql.written import Exact, write
from gateway.refusals import MultipleRootFields, Refusal, ValidationFailed

__all__ = ["OperationPlan", "check_values", "compile_operation"]

_MISSING: Any = object()
"""A variable that was neither provided nor defaulted: absent, not null."""


# --------------------------------------------------------------------------- values


@dataclass(frozen=True, slots=True)
class _VarDef:
    name: str
    type_text: str
    non_null: bool
    is_list: bool
    default: Any


def _type_text(node: TypeNode) -> str:
    if isinstance(node, NonNullTypeNode):
        return _type_text(node.type) + "!"
    if isinstance(node, ListTypeNode):
        return f"[{_type_text(node.type)}]"
    assert isinstance(node, NamedTypeNode)
    return node.name.value


def _var_def(node: VariableDefinitionNode) -> _VarDef:
    type_node = node.type
    non_null = isinstance(type_node, NonNullTypeNode)
    inner = type_node.type if isinstance(type_node, NonNullTypeNode) else type_node
    default = _MISSING
    if node.default_value is not None:
        default = value_from_ast_untyped(node.default_value)
    return _VarDef(
        name=node.variable.name.value,
        type_text=_type_text(type_node),
        non_null=non_null,
        is_list=isinstance(inner, ListTypeNode),
        default=default,
    )


# A template turns the coerced variables into the argument value the resource server
# will see. Built once per plan; closures keep the per-request work to dict/list builds.
_Template = Callable[[Mapping[str, Any]], Any]


def _const(value: Any) -> _Template:
    return lambda _variables: value


def _template(node: ValueNode) -> tuple[_Template, bool]:
    """Compile a literal into a template; the flag says whether it uses variables."""
    if isinstance(node, VariableNode):
        name = node.name.value
        return (lambda variables: variables.get(name, _MISSING)), True
    if isinstance(node, ObjectValueNode):
        fields = [(f.name.value, *_template(f.value)) for f in node.fields]
        if not any(dynamic for _, _, dynamic in fields):
            # Rebuilt per request anyway so no two requests share a mutable dict.
            pairs = [(key, fn) for key, fn, _ in fields]
            return (lambda variables: {key: fn(variables) for key, fn in pairs}), False

        def build_object(variables: Mapping[str, Any]) -> dict[str, Any]:
            result: dict[str, Any] = {}
            for key, fn, _ in fields:
                value = fn(variables)
                # An input field given a variable that is absent is itself absent.
                if value is not _MISSING:
                    result[key] = value
            return result

        return build_object, True
    if isinstance(node, ListValueNode):
        items = [_template(v) for v in node.values]
        fns = [fn for fn, _ in items]

        def build_list(variables: Mapping[str, Any]) -> list[Any]:
            # In a list an absent variable is null (GraphQL spec, "Input Coercion").
            return [None if (v := fn(variables)) is _MISSING else v for fn in fns]

        return build_list, any(dynamic for _, dynamic in items)
    if isinstance(
        node,
        (
            StringValueNode,
            BooleanValueNode,
            EnumValueNode,
            IntValueNode,
            FloatValueNode,
            NullValueNode,
        ),
    ):
        return _const(value_from_ast_untyped(node)), False
    raise ValidationFailed(f"Unsupported value {print_ast(node)}")  # pragma: no cover


def _value_roots(document: DocumentNode) -> list[ValueNode]:
    """Every top-level value literal of the document (arguments and variable defaults)."""
    values: list[ValueNode] = []
    stack: list[Any] = list(document.definitions)
    while stack:
        node = stack.pop()
        for directive in getattr(node, "directives", None) or ():
            values.extend(a.value for a in directive.arguments or ())
        if isinstance(node, FieldNode):
            values.extend(a.value for a in node.arguments or ())
        elif isinstance(node, OperationDefinitionNode):
            for var in node.variable_definitions or ():
                if var.default_value is not None:
                    values.append(var.default_value)
        selection_set = getattr(node, "selection_set", None)
        if selection_set is not None:
            stack.extend(selection_set.selections)
    return values


def check_values(document: DocumentNode, limits: GraphQLLimits) -> None:
    """Refuse list literals longer than ``max_list_items`` and values nested deeper than
    ``max_depth``, anywhere in the document (iterative: nesting cannot recurse here)."""
    stack: list[tuple[ValueNode, int]] = [(v, 0) for v in _value_roots(document)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, ListValueNode):
            if len(node.values) > limits.max_list_items:
                raise over_limit(
                    f"A list literal has {len(node.values)} items",
                    "max_list_items",
                    limits.max_list_items,
                )
            children: Any = node.values
        elif isinstance(node, ObjectValueNode):
            children = [f.value for f in node.fields]
        else:
            continue
        depth += 1
        if depth > limits.max_depth:
            raise over_limit(
                f"A value literal is nested more than {limits.max_depth} levels",
                "max_depth",
                limits.max_depth,
            )
        stack.extend((child, depth) for child in children)


# ------------------------------------------------------------------------ selections


@dataclass(frozen=True, slots=True)
class _Condition:
    """A variable-dependent ``@skip``/``@include``: included iff value == ``include_if``."""

    variable: str
    include_if: bool
    directive: str


@dataclass(frozen=True, slots=True)
class _Field:
    name: str
    alias: str | None
    conditions: tuple[_Condition, ...]
    children: tuple[_Field, ...]
    node: FieldNode
    arguments: _Template

    @property
    def response_key(self) -> str:
        return self.alias or self.name


class _Expander:
    """Expands fragments and constant directives of one operation, enforcing limits."""

    def __init__(
        self,
        fragments: Mapping[str, FragmentDefinitionNode],
        limits: GraphQLLimits,
        fail: Callable[[str], Refusal],
        root_type: str,
    ) -> None:
        self.fragments = fragments
        self.root_type = root_type
        self.limits = limits
        self.fail = fail
        self.aliases = 0
        self.fields = 0
        self.variables_used: set[str] = set()

    def _conditions(
        self,
        node: FieldNode | InlineFragmentNode | FragmentSpreadNode,
    ) -> tuple[_Condition, ...] | None:
        """The node's variable conditions, or None when it is excluded for good."""
        conditions: list[_Condition] = []
        for directive in node.directives or ():
            name = directive.name.value
            if name not in ("skip", "include"):
                continue
            arg = next((a for a in directive.arguments or () if a.name.value == "if"), None)
            if arg is None:
                raise self.fail(
                    f'Directive "@{name}" argument "if" of type "Boolean!" '
                    "is required, but it was not provided."
                )
            include_if = name == "include"
            if isinstance(arg.value, VariableNode):
                self.variables_used.add(arg.value.name.value)
                conditions.append(_Condition(arg.value.name.value, include_if, name))
            elif isinstance(arg.value, BooleanValueNode):
                if arg.value.value != include_if:
                    return None
            else:
                raise self.fail(
                    f'Directive "@{name}" argument "if" must be a Boolean, '
                    f"found {print_ast(arg.value)}."
                )
        return tuple(conditions)

    def _check_root_condition(self, condition: NamedTypeNode | None) -> None:
        """A fragment at the root applies only if it names the operation's root type.

        An executor skips ``... on Query { zendNotificatie }`` in a mutation; a reader that
        ignores type conditions would decide on it. Neither reading is guessed: refused.
        """
        if condition is not None and condition.name.value != self.root_type:
            raise self.fail(
                f'Fragment on "{condition.name.value}" at the root of the '
                f'operation: only "{self.root_type}" applies here.'
            )

    def _note_variables(self, node: FieldNode) -> None:
        stack: list[Any] = [a.value for a in node.arguments or ()]
        while stack:
            value = stack.pop()
            if isinstance(value, VariableNode):
                self.variables_used.add(value.name.value)
            elif isinstance(value, ListValueNode):
                stack.extend(value.values)
            elif isinstance(value, ObjectValueNode):
                stack.extend(f.value for f in value.fields)

    def expand(
        self,
        selection_set: SelectionSetNode | None,
        depth: int,
        inherited: tuple[_Condition, ...],
        fragment_path: tuple[str, ...],
    ) -> list[_Field]:
        """The fields of a selection set, fragments flattened into it."""
        if selection_set is None:
            return []
        result: list[_Field] = []
        for selection in selection_set.selections:
            own = self._conditions(selection)  # type: ignore[arg-type]
            if own is None:
                continue
            conditions = inherited + own
            if isinstance(selection, FieldNode):
                if depth > self.limits.max_depth:
                    raise over_limit(
                        f"The query is nested more than {self.limits.max_depth} levels deep",
                        "max_depth",
                        self.limits.max_depth,
                    )
                self.fields += 1
                if self.fields > self.limits.max_tokens:
                    raise over_limit(
                        f"The query expands to more than {self.limits.max_tokens} fields",
                        "max_tokens",
                        self.limits.max_tokens,
                    )
                if selection.alias is not None:
                    self.aliases += 1
                    if self.aliases > self.limits.max_aliases:
                        raise over_limit(
                            f"The query uses more than {self.limits.max_aliases} aliases",
                            "max_aliases",
                            self.limits.max_aliases,
                        )
                self._note_variables(selection)
                children = self.expand(selection.selection_set, depth + 1, (), fragment_path)
                result.append(
                    _Field(
                        name=selection.name.value,
                        alias=selection.alias.value if selection.alias else None,
                        conditions=conditions,
                        children=tuple(children),
                        node=selection,
                        arguments=_arguments_template(selection),
                    )
                )
            elif isinstance(selection, InlineFragmentNode):
                if depth == 1:
                    self._check_root_condition(selection.type_condition)
                result.extend(
                    self.expand(selection.selection_set, depth, conditions, fragment_path)
                )
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                fragment = self.fragments.get(name)
                if fragment is None:
                    raise self.fail(f'Unknown fragment "{name}".')
                if name in fragment_path:
                    raise self.fail(f'Cannot spread fragment "{name}" within itself.')
                if depth == 1:
                    self._check_root_condition(fragment.type_condition)
                result.extend(
                    self.expand(fragment.selection_set, depth, conditions, (*fragment_path, name))
                )
        return result


def _included(
    conditions: tuple[_Condition, ...], variables: Mapping[str, Any], fail: Callable[[str], Refusal]
) -> bool:
    for condition in conditions:
        value = variables.get(condition.variable, _MISSING)
        if not isinstance(value, bool):
            raise fail(
                f'Variable "${condition.variable}" used in @{condition.directive}(if:) '
                "must be a Boolean (true or false)."
            )
        if value != condition.include_if:
            return False
    return True


def _paths(
    fields: tuple[_Field, ...] | list[_Field],
    prefix: str,
    out: dict[str, None],
    variables: Mapping[str, Any] | None,
    fail: Callable[[str], Refusal],
) -> None:
    for field in fields:
        if variables is not None and not _included(field.conditions, variables, fail):
            continue
        path = prefix + field.name
        out[path] = None
        _paths(field.children, path + ".", out, variables, fail)


def _argumented(fields: tuple[_Field, ...] | list[_Field], prefix: str, out: set[str]) -> None:
    """The paths (below the root) sent with arguments at least once, whatever the directives."""
    for field in fields:
        path = prefix + field.name
        if field.node.arguments:
            out.add(path)
        _argumented(field.children, path + ".", out)


def _argument_fields(
    fields: tuple[_Field, ...] | list[_Field],
    prefix: str,
    argumented: set[str],
    variables: Mapping[str, Any] | None,
    fail: Callable[[str], Refusal],
    out: list[tuple[str, _Template]],
) -> None:
    """Every selection of an argumented path, with or without arguments: an aliased second
    selection that drops the filter must not hide behind the first one."""
    for field in fields:
        if variables is not None and not _included(field.conditions, variables, fail):
            continue
        path = prefix + field.name
        if path in argumented:
            out.append((path, field.arguments))
        _argument_fields(field.children, path + ".", argumented, variables, fail, out)


def _arguments_at(
    fields: Sequence[tuple[str, _Template]], variables: Mapping[str, Any]
) -> dict[str, list[Mapping[str, Any]]]:
    result: dict[str, list[Mapping[str, Any]]] = {}
    for path, arguments in fields:
        result.setdefault(path, []).append(arguments(variables))
    return result


def _is_dynamic(fields: tuple[_Field, ...] | list[_Field]) -> bool:
    stack = list(fields)
    while stack:
        field = stack.pop()
        if field.conditions:
            return True
        stack.extend(field.children)
    return False


# ----------------------------------------------------------------------------- plan


class _SlowPath(Exception):
    """A variable the fast coercion path leaves to graphql-core (to get its error)."""


@dataclass(frozen=True, slots=True)
class _RootGroup:
    """All root field nodes that share one response key (GraphQL merges them)."""

    key: str
    fields: tuple[_Field, ...]
    arguments: _Template


class OperationPlan:
    """Everything about one operation of one document that does not depend on variables."""

    __slots__ = (
        "__weakref__",
        "_argumented",
        "_arguments",
        "_collector",
        "_defaults",
        "_exact",
        "_limits",
        "_roots",
        "_schema",
        "_signatures",
        "_static",
        "_static_collected",
        "_uses_to_write",
        "_var_defs",
        "_var_nodes",
        "display_name",
        "exact",
        "operation_name",
        "operation_type",
    )

    def __init__(
        self,
        *,
        operation: OperationDefinitionNode,
        roots: list[_Field],
        fragments: Mapping[str, FragmentDefinitionNode],
        display_name: str,
        schema: GraphQLSchema | None,
        limits: GraphQLLimits,
    ) -> None:
        self.operation_type: str = operation.operation.value
        self.operation_name: str | None = operation.name.value if operation.name else None
        self.display_name = display_name
        self._schema = schema
        self._limits = limits
        self._var_nodes = tuple(operation.variable_definitions or ())
        self._var_defs = tuple(_var_def(v) for v in self._var_nodes)
        root_type = schema.get_root_type(operation.operation) if schema is not None else None
        # Variable types resolved once; defaults coerced once (they are part of the text).
        # Each variable's coercion is compiled once from its type (gateway/graphql/coerce.py).
        self._signatures: tuple[tuple[GraphQLVariableSignature, bool, Coercer], ...] | None = None
        self._arguments: dict[tuple[int, int], Arguments | None] = {}
        self._defaults: dict[str, Any] = {}
        if schema is not None:
            signatures = [get_variable_signature(schema, v) for v in self._var_nodes]
            if all(isinstance(sig, GraphQLVariableSignature) for sig in signatures):
                with_default = [v for v in self._var_nodes if v.default_value is not None]
                defaults = get_variable_values(schema, with_default, {})
                if not isinstance(defaults, list):
                    self._defaults = defaults.coerced
                    self._signatures = tuple(
                        (sig, node.default_value is not None, compile_input(sig.type))
                        for sig, node in zip(signatures, self._var_nodes, strict=True)
                        if isinstance(sig, GraphQLVariableSignature)
                    )
        groups: dict[str, list[_Field]] = {}
        for field in roots:
            groups.setdefault(field.response_key, []).append(field)
        self._argumented: set[str] = set()
        for field in roots:
            _argumented(field.children, "", self._argumented)
        self._roots: dict[str, _RootGroup] = {}
        for key, fields in groups.items():
            first = fields[0]
            if len(fields) > 1:
                signature = (first.name, [print_ast(a) for a in first.node.arguments or ()])
                for other in fields[1:]:
                    if (
                        other.name,
                        [print_ast(a) for a in other.node.arguments or ()],
                    ) != signature:
                        # Same response key, different field or arguments: two root fields.
                        raise MultipleRootFields()
            self._roots[key] = _RootGroup(key, tuple(fields), _arguments_template(first.node))
        # With a schema, graphql-core's executor machinery selects the root field and the
        # fields below it (the expander above only enforced the limits).
        self._collector = (
            _Collector(schema, root_type, operation, fragments)
            if schema is not None and root_type is not None
            else None
        )
        # Without variable-dependent directives the selection is the same for every
        # request: decide root field and paths once.
        self._static: tuple[_RootGroup, tuple[str, ...], list[tuple[str, _Template]]] | None = None
        self._static_collected: _Collected | None = None
        if not _is_dynamic(roots):
            if self._collector is not None:
                # A variable in a directive the expander dropped with its constant-false
                # content still reads a variable here: then select per request.
                with contextlib.suppress(GraphQLError):
                    self._static_collected = self._collector.select(_NO_VARIABLES)
            if len(self._roots) > 1:
                raise MultipleRootFields()
            if not self._roots:
                raise MultipleRootFields("No root field selected in the operation.")
            (group,) = self._roots.values()
            self._static = (group, self._selected(group, None), self._argument_list(group, None))
        self._exact = self._exact_arguments()
        # The same work written as one function (gateway/graphql/written.py), when the
        # writer knows every shape of it; else the compiled closures above do it. Written
        # at the plan's second use, not here: compiling the source costs about as much as
        # the rest of a parse-cache miss, and a text seen once (a miss per request, as an
        # attacker can send) never pays it.
        self.exact: Exact | None = None
        self._uses_to_write = 2 if self._exact is not None else 0

    def general_facts(self) -> dict[str, Any]:
        """The facts' fields that no variable changes, for a static selection (with a
        schema): the same on every request of this plan."""
        assert self._static_collected is not None
        node, _field_def, paths, _nested = self._static_collected
        return {
            "operation_type": self.operation_type,
            "operation_name": self.operation_name,
            "root_field": node.name.value,
            "selected_paths": paths,
            "root_alias": node.alias.value if node.alias else None,
            "rest": None,
        }

    def write(self) -> Exact | None:
        """The written facts function, written now when it is not yet (the writer is
        asked once: None when it declined or the plan has no static selection)."""
        if self._uses_to_write:
            self._uses_to_write = 0
            self.exact = self._written()
        return self.exact

    def _written(self) -> Exact | None:
        """:meth:`_exact_facts` as one written function (None: the writer declined)."""
        assert self._signatures is not None and self._static_collected is not None
        node, field_def, _paths, nested = self._static_collected
        variables = tuple(
            (signature, has_default, coerce, self._defaults.get(signature.name, Undefined))
            for signature, has_default, coerce in self._signatures
        )
        argumented = ((("", node, field_def),) if field_def is not None else ()) + tuple(nested)
        return write(variables, argumented, self.general_facts())

    def _exact_arguments(self) -> _Exact | None:
        """The compiled argument coercers of a static selection (root field, then each
        argumented selection below it), when every one of them compiled: then a request's
        facts are these run on its coerced variables, nothing else (:meth:`_exact_facts`)."""
        if self._static_collected is None or self._signatures is None:
            return None
        node, field_def, _paths, nested = self._static_collected
        root: Arguments | None = None
        if field_def is not None:
            root = self._compiled(field_def, node)
            if root is None:
                return None
        below: list[tuple[str, Arguments]] = []
        for path, sub_node, sub_def in nested:
            compiled = self._compiled(sub_def, sub_node)
            if compiled is None:
                return None
            below.append((path, compiled))
        return root, tuple(below)

    def fail(self, message: str) -> ValidationFailed:
        return ValidationFailed(
            f"{self.display_name} {self.operation_type}: {message}", reason=message
        )

    def _selected(
        self,
        group: _RootGroup,
        variables: Mapping[str, Any] | None,
    ) -> tuple[str, ...]:
        out: dict[str, None] = {}
        for field in group.fields:
            if variables is None or _included(field.conditions, variables, self.fail):
                _paths(field.children, "", out, variables, self.fail)
        return tuple(out)

    def _argument_list(
        self, group: _RootGroup, variables: Mapping[str, Any] | None
    ) -> list[tuple[str, _Template]]:
        out: list[tuple[str, _Template]] = []
        if self._argumented:
            for field in group.fields:
                if variables is None or _included(field.conditions, variables, self.fail):
                    _argument_fields(
                        field.children, "", self._argumented, variables, self.fail, out
                    )
        return out

    def _coerce_untyped(self, inputs: Mapping[str, Any]) -> dict[str, Any]:
        """Variables without a schema: provided value, else default, else absent."""
        values: dict[str, Any] = {}
        for var in self._var_defs:
            value = inputs.get(var.name, _MISSING)
            if value is _MISSING:
                if var.default is not _MISSING:
                    values[var.name] = var.default
                elif var.non_null:
                    raise self.fail(
                        f'Variable "${var.name}" of required type '
                        f'"{var.type_text}" was not provided.'
                    )
                continue
            if value is None:
                if var.non_null:
                    raise self.fail(
                        f'Variable "${var.name}" of non-null type '
                        f'"{var.type_text}" must not be null.'
                    )
            elif var.is_list and not isinstance(value, list):
                # GraphQL input coercion: one value where a list is expected is a list of one.
                value = [value]
            values[var.name] = value
        return values

    def _coerce_fast(
        self, inputs: Mapping[str, Any], sources: dict[str, VariableValueSource] | None
    ) -> dict[str, Any] | None:
        """The coerced variables by the compiled coercers (filling *sources* unless None:
        most requests never read them), or None where graphql-core must coerce."""
        if self._signatures is None:
            return None
        coerced: dict[str, Any] = {}
        try:
            for signature, has_default, coerce in self._signatures:
                name = signature.name
                value = inputs.get(name, Undefined)
                if value is Undefined:
                    if sources is not None:
                        sources[name] = VariableValueSource(signature)
                    if has_default:
                        default = self._defaults[name]
                        # Never hand two requests the same mutable default.
                        coerced[name] = (
                            copy.deepcopy(default) if isinstance(default, (dict, list)) else default
                        )
                        continue
                    if not is_non_null_type(signature.type):
                        continue  # not provided, nullable: absent
                    return None
                if sources is not None:
                    sources[name] = VariableValueSource(signature, value)
                coerced[name] = coerce(value)
        except (Invalid, RecursionError):
            return None
        return coerced

    def _coerce_with_schema(self, inputs: Mapping[str, Any]) -> VariableValues:
        """Variables coerced by the schema, as graphql-core's ``get_variable_values``.

        The fast path reuses the variable types and defaults resolved at compile time;
        on any problem graphql-core's own function runs to produce its exact errors.
        """
        assert self._schema is not None
        sources: dict[str, VariableValueSource] = {}
        coerced = self._coerce_fast(inputs, sources)
        if coerced is not None:
            return VariableValues(sources, coerced)
        result = get_variable_values(
            self._schema,
            self._var_nodes,
            inputs if isinstance(inputs, dict) else dict(inputs),
            max_errors=5,
        )
        if isinstance(result, list):
            raise self.fail(result[0].message)
        return result

    def facts(self, inputs: Mapping[str, Any]) -> OperationFacts:
        """The facts of this operation for one request's variables."""
        if self._uses_to_write:
            self._uses_to_write -= 1
            if not self._uses_to_write:
                self.exact = self._written()
        if self.exact is not None:
            written = self.exact(inputs, self)
            if written is not None:
                return written
        elif self._exact is not None:
            exact = self._exact_facts(self._exact, inputs)
            if exact is not None:
                return exact
        if self._collector is not None:
            return self._collected_facts(inputs)
        variables = self._coerce_untyped(inputs)
        static = self._static
        if static is not None:
            group, paths, argument_fields = static
        else:
            chosen = [
                g
                for g in self._roots.values()
                if any(_included(f.conditions, variables, self.fail) for f in g.fields)
            ]
            if len(chosen) != 1:
                raise (
                    MultipleRootFields()
                    if chosen
                    else MultipleRootFields("No root field selected in the operation.")
                )
            group = chosen[0]
            paths = self._selected(group, variables)
            argument_fields = self._argument_list(group, variables)
        first = group.fields[0]
        return OperationFacts(
            operation_type=self.operation_type,
            operation_name=self.operation_name,
            root_field=first.name,
            arguments=group.arguments(variables),
            selected_paths=paths,
            root_alias=first.alias,
            arguments_at=_arguments_at(argument_fields, variables),
            variables=variables,
            plan=self if static is not None else None,
        )

    def symbolic(self, present: tuple[str, ...]) -> OperationFacts | None:
        """The facts of every request whose variables are exactly *present* (by name, in
        coercion order), with :class:`~gateway.facts.Var` where a variable's value goes:
        built by the same templates and compiled coercers as :meth:`facts`, so literals,
        defaults, absent input fields and nesting are the real ones. None when the plan's
        facts depend on more than the values (directives on variables, arguments that
        graphql-core coerces itself): the policy engine then evaluates in full."""
        marks = {name: Var(name) for name in present}
        if self._collector is not None:
            static = self._static_collected
            if static is None:
                return None
            node, field_def, paths, nested = static
            try:
                arguments: dict[str, Any] = {}
                if field_def is not None:
                    arguments = self._compiled_arguments(field_def, node, marks)
                arguments_at: dict[str, list[Mapping[str, Any]]] = {}
                for path, sub_node, sub_def in nested:
                    arguments_at.setdefault(path, []).append(
                        self._compiled_arguments(sub_def, sub_node, marks)
                    )
            except (Invalid, _SlowPath, RecursionError):
                return None
            root_field, alias = node.name.value, node.alias.value if node.alias else None
        else:
            if self._static is None:
                return None
            group, paths, argument_fields = self._static
            arguments = group.arguments(marks)
            arguments_at = _arguments_at(argument_fields, marks)
            root_field, alias = group.fields[0].name, group.fields[0].alias
        return OperationFacts(
            operation_type=self.operation_type,
            operation_name=self.operation_name,
            root_field=root_field,
            arguments=arguments,
            selected_paths=paths,
            root_alias=alias,
            arguments_at=arguments_at,
            variables=marks,
            plan=self,
        )

    def _compiled_arguments(
        self, field_def: GraphQLField, node: FieldNode, variables: Mapping[str, Any]
    ) -> dict[str, Any]:
        """The arguments by the compiled coercer alone (_SlowPath: none compiled)."""
        compiled = self._compiled(field_def, node)
        if compiled is None:
            raise _SlowPath
        return compiled(variables)

    def _compiled(self, field_def: GraphQLField, node: FieldNode) -> Arguments | None:
        key = (id(field_def), id(node))
        try:
            return self._arguments[key]
        except KeyError:
            compiled = self._arguments[key] = compile_arguments(field_def, node)
            return compiled

    def _argument_values(
        self, field_def: GraphQLField, node: FieldNode, variables: _Variables
    ) -> dict[str, Any] | None:
        """``get_argument_values`` through the coercer compiled for this node (once);
        None when graphql-core itself must run it (not compiled, or refused)."""
        compiled = self._compiled(field_def, node)
        if compiled is not None:
            with contextlib.suppress(Invalid, RecursionError):
                return compiled(variables.coerced)
        return None

    def _exact_facts(self, exact: _Exact, inputs: Mapping[str, Any]) -> OperationFacts | None:
        """:meth:`_collected_facts` of a static selection whose argument coercers all
        compiled, in its fewest steps: the variables by the compiled coercers, the arguments
        by the compiled ones (no :class:`_Variables`, no lookups per node). None when any of
        them finds a value invalid: the general path then runs and says why (the same facts,
        ``tests/graphql/test_exact_facts.py``)."""
        coerced = self._coerce_fast(inputs, None)
        if coerced is None:
            return None
        root, below = exact
        try:
            arguments = {} if root is None else root(coerced)
            arguments_at: dict[str, list[Mapping[str, Any]]] = {}
            for path, compiled in below:
                arguments_at.setdefault(path, []).append(compiled(coerced))
        except (Invalid, RecursionError):
            return None
        node, _field_def, paths, _nested = self._static_collected  # type: ignore[misc]
        return OperationFacts(
            operation_type=self.operation_type,
            operation_name=self.operation_name,
            root_field=node.name.value,
            arguments=arguments,
            selected_paths=paths,
            root_alias=node.alias.value if node.alias else None,
            arguments_at=arguments_at,
            variables=coerced,
            plan=self,
        )

    def _collected_facts(self, inputs: Mapping[str, Any]) -> OperationFacts:
        """The facts as graphql-core's executor would run them (routes with a schema)."""
        assert self._collector is not None
        # Built by the compiled templates alone (and a static selection): then the facts
        # are the plan's symbolic ones with the variables' values (plan= below).
        exact = self._static_collected is not None
        variables = _Variables(self, inputs)
        try:
            node, field_def, paths, nested = self._static_collected or self._collector.select(
                variables.values()
            )
            arguments: dict[str, Any] = {}
            if field_def:
                compiled = self._argument_values(field_def, node, variables)
                if compiled is None:
                    exact = False
                    compiled = get_argument_values(field_def, node, variables.values())
                arguments = compiled
            arguments_at: dict[str, list[Mapping[str, Any]]] = {}
            for path, sub_node, sub_def in nested:
                values = self._argument_values(sub_def, sub_node, variables)
                if values is None:
                    exact = False
                    values = get_argument_values(sub_def, sub_node, variables.values())
                arguments_at.setdefault(path, []).append(values)
        except GraphQLError as exc:
            raise self.fail(exc.message) from None
        return OperationFacts(
            operation_type=self.operation_type,
            operation_name=self.operation_name,
            root_field=node.name.value,
            arguments=arguments,
            selected_paths=paths,
            root_alias=node.alias.value if node.alias else None,
            arguments_at=arguments_at,
            variables=variables.coerced,
            plan=self if exact else None,
        )


class _Variables:
    """One request's coerced variables; graphql-core's :class:`VariableValues` (with a
    source per variable) is built only when one of its functions is to run: a selection
    with ``@skip``/``@include`` on a variable, or an argument the coercer leaves to it."""

    __slots__ = ("_inputs", "_plan", "_values", "coerced")

    def __init__(self, plan: OperationPlan, inputs: Mapping[str, Any]) -> None:
        self._plan = plan
        self._inputs = inputs
        self._values: VariableValues | None = None
        coerced = plan._coerce_fast(inputs, None)
        if coerced is None:  # invalid, or graphql-core's to coerce: its errors
            self._values = plan._coerce_with_schema(inputs)
            coerced = self._values.coerced
        self.coerced: dict[str, Any] = coerced

    def values(self) -> VariableValues:
        if self._values is None:
            self._values = self._plan._coerce_with_schema(self._inputs)
            self.coerced = self._values.coerced  # the arguments read what was selected on
        return self._values


_Nested = list[tuple[str, FieldNode, GraphQLField]]
"""Each selection below the root of a field that takes arguments: path, node, definition."""

_Collected = tuple[FieldNode, "GraphQLField | None", tuple[str, ...], _Nested]
"""The root field node, its definition (None for ``__typename``), the paths below it and
the selections whose arguments are facts."""

_Exact = tuple["Arguments | None", tuple[tuple[str, Arguments], ...]]
"""A static selection's compiled argument coercers: the root field's (None for
``__typename``), then each argumented selection's below it, by path."""

_NO_VARIABLES = VariableValues({}, {})
"""For selections without variable-dependent directives: no variable is ever read."""


class _Collector:
    """Selects the root field and the fields below it with graphql-core's ``collect_fields``
    and ``collect_subfields``: the functions its executor runs, so fragments, type
    conditions and ``@skip``/``@include`` count exactly as they will at the upstream."""

    __slots__ = ("fragments", "operation", "root_type", "schema")

    def __init__(
        self,
        schema: GraphQLSchema,
        root_type: GraphQLObjectType,
        operation: OperationDefinitionNode,
        fragments: Mapping[str, FragmentDefinitionNode],
    ) -> None:
        self.schema = schema
        self.root_type = root_type
        self.operation = operation
        self.fragments = {name: FragmentDetails(node) for name, node in fragments.items()}

    def select(self, variables: VariableValues) -> _Collected:
        """The one root field the executor runs for *variables*, else the refusal."""
        grouped = collect_fields(
            self.schema, self.fragments, variables, self.root_type, self.operation
        ).grouped_field_set
        if len(grouped) != 1:
            raise (
                MultipleRootFields()
                if grouped
                else MultipleRootFields("No root field selected in the operation.")
            )
        (details,) = grouped.values()
        node = details[0].node
        field_def = self.root_type.fields.get(node.name.value)
        out: dict[str, None] = {}
        nested: _Nested = []
        if field_def is not None:
            self._paths(field_def.type, details, variables, "", out, nested)
        return node, field_def, tuple(out), nested

    def _paths(
        self,
        type_: GraphQLOutputType,
        details: list[FieldDetails],
        variables: VariableValues,
        prefix: str,
        out: dict[str, None],
        nested: _Nested,
    ) -> None:
        named = get_named_type(type_)
        if isinstance(named, GraphQLObjectType):
            possible: Sequence[GraphQLObjectType] = (named,)
        elif is_abstract_type(named):
            # Any of its object types may come back: the fields of each are selected.
            possible = self.schema.get_possible_types(named)  # type: ignore[arg-type]
        else:
            return
        for object_type in possible:
            grouped = collect_subfields(
                self.schema, self.fragments, variables, self.operation, object_type, details
            ).grouped_field_set
            for sub in grouped.values():
                name = sub[0].node.name.value
                path = prefix + name
                out[path] = None
                sub_def = object_type.fields.get(name)
                if sub_def is not None:
                    if sub_def.args:
                        # Every node of the response key: the executor merges them.
                        nested.extend((path, d.node, sub_def) for d in sub)
                    self._paths(sub_def.type, sub, variables, path + ".", out, nested)


def _arguments_template(node: FieldNode) -> _Template:
    items = [(a.name.value, _template(a.value)[0]) for a in node.arguments or ()]

    def build(variables: Mapping[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for name, fn in items:
            value = fn(variables)
            if value is not _MISSING:
                result[name] = value
        return result

    return build


def compile_operation(
    operation: OperationDefinitionNode,
    fragments: Mapping[str, FragmentDefinitionNode],
    *,
    schema: GraphQLSchema | None,
    limits: GraphQLLimits,
) -> OperationPlan:
    """Expand and check one operation (limits, fragments, variables) into a plan."""
    operation_type = operation.operation.value
    first_field = next(
        (s for s in operation.selection_set.selections if isinstance(s, FieldNode)), None
    )
    display = (
        operation.name.value
        if operation.name
        else first_field.name.value
        if first_field is not None
        else ""
    )

    def fail(message: str) -> ValidationFailed:
        return ValidationFailed(f"{display} {operation_type}: {message}", reason=message)

    expander = _Expander(fragments, limits, fail, root_type_name(schema, operation.operation))
    roots = expander.expand(operation.selection_set, 1, (), ())
    if first_field is None and roots:
        display = roots[0].name
    declared = {v.variable.name.value for v in operation.variable_definitions or ()}
    undefined = sorted(expander.variables_used - declared)
    if undefined:
        name = f' by operation "{operation.name.value}"' if operation.name else ""
        raise fail(f'Variable "${undefined[0]}" is not defined{name}.')
    return OperationPlan(
        operation=operation,
        roots=roots,
        fragments=fragments,
        display_name=display,
        schema=schema,
        limits=limits,
    )
