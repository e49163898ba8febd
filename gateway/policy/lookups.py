"""A policy's ``lookups:``: the policy information point (PIP) declared as data.

A rule may need facts the request does not carry (the caller's own bemiddelingspecificaties
in the Bemiddelingsregister). The policy declares, per lookup: ``when`` it is needed (a
condition on the request), the ``source`` it asks (a route of the gateway configuration),
the ``request`` it sends (a GraphQL query with variables taken from facts) and what it
``yields`` (named values picked from the answer). The gateway runs the lookup before the
policy decides (``gateway/pep/pip.py``) and the yields reach the checks as
``extra.<lookup name>.<yield name>``; this module holds only what needs no I/O: compiling
the declaration, the variables of one request, and reading the answer.

A yield is a dotted path into the answer (``data.bemiddeling.bemiddelingspecificatie``);
every list on the way is walked, so a yield is always a list of what the path reaches
(``null`` reaches nothing). A step missing from an object means the answer does not have
the shape the query asked for: :class:`AnswerShapeError` (the gateway refuses, fail closed).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from graphql import GraphQLError, OperationDefinitionNode, parse
from graphql.language import NonNullTypeNode

from gateway.config.yamlsource import JsonPath, Source
from gateway.facts import DecisionInput
from gateway.policy.conditions import CompileError, Cond, ConditionCompiler
from gateway.policy.errors import LoadIssue
from gateway.policy.factpaths import Getter

PEILDATUM = "peildatum"
"""Every lookup's facts also carry the date the request is decided on (``YYYY-MM-DD``,
Europe/Amsterdam): rules such as UCBR-0012's "until 31 May of the following year" compare
with it, and a ``*.test.yaml`` case gives it like any other looked-up fact."""


class AnswerShapeError(ValueError):
    """The source's answer is not what the lookup's query asked for."""


@dataclass(frozen=True, slots=True)
class LookupSpec:
    """One compiled ``lookups:`` entry."""

    name: str
    """The facts appear as ``extra.<name>``."""
    policy_id: str
    location: str
    route: str
    """The source: the path of a configured route, whose upstream is asked."""
    query: str
    variables: tuple[tuple[str, str, Getter], ...]
    """``(variable, fact path, getter)``: each variable's value is a fact of the request."""
    yields: tuple[tuple[str, tuple[str, ...]], ...]
    when: Cond | None = None

    def wanted(self, facts: DecisionInput) -> bool:
        """Whether this request needs the lookup: its ``when`` holds and every variable
        has a value (without one the query cannot be asked, and the checks that need
        ``extra.<name>`` refuse)."""
        if self.when is not None and not self.when.test(facts, None):
            return False
        return all(get(facts, None) is not None for _n, _p, get in self.variables)

    def variables_for(self, facts: DecisionInput) -> dict[str, Any]:
        """The query's variables for this request."""
        return {name: get(facts, None) for name, _path, get in self.variables}

    def extract(self, answer: Any) -> dict[str, list[Any]]:
        """The yields picked from a GraphQL *answer* (``{"data": ...}``); raises
        :class:`AnswerShapeError` on errors or a shape the query did not ask for."""
        if not isinstance(answer, dict):
            raise AnswerShapeError("the answer is not a JSON object")
        if answer.get("errors"):
            raise AnswerShapeError("the answer has GraphQL errors")
        if not isinstance(answer.get("data"), dict):
            raise AnswerShapeError("the answer has no data object")
        return {name: _walk(answer, path) for name, path in self.yields}


def _walk(value: Any, path: tuple[str, ...]) -> list[Any]:
    found: list[Any] = []
    _collect(value, path, found)
    return found


def _collect(value: Any, path: tuple[str, ...], found: list[Any]) -> None:
    if value is None:
        return
    if isinstance(value, list):
        for item in value:
            _collect(item, path, found)
        return
    if not path:
        found.append(value)
        return
    if not isinstance(value, dict) or path[0] not in value:
        raise AnswerShapeError(f"the answer has no {path[0]!r} where the query asked for it")
    _collect(value[path[0]], path[1:], found)


def compile_lookups(
    source: Source, compiler: ConditionCompiler, policy_id: str, issues: list[LoadIssue]
) -> tuple[LookupSpec, ...]:
    """The policy's ``lookups:`` (schema-checked already); problems go to *issues*."""
    specs: list[LookupSpec] = []
    for n, entry in enumerate(source.data.get("lookups") or ()):
        at: JsonPath = ("lookups", n)
        try:
            specs.append(_compile(source, compiler, policy_id, entry, at))
        except CompileError as exc:
            issues.append(exc.issue)
    return tuple(specs)


def _compile(
    source: Source, compiler: ConditionCompiler, policy_id: str, entry: Any, at: JsonPath
) -> LookupSpec:
    request = entry["request"]
    query = request["query"]
    declared = _declared_variables(source, query, (*at, "request", "query"))
    variables = []
    for name, fact in (request.get("variables") or {}).items():
        where = (*at, "request", "variables", name)
        if name not in declared:
            raise CompileError(
                source.issue(
                    where,
                    f"variable {name!r} is not declared by the query",
                    "declared: " + (", ".join(f"${v}" for v in declared) or "none"),
                    key=True,
                )
            )
        variables.append((name, fact, compiler.fact_getter(fact, where, False)))
    given = {name for name, _f, _g in variables}
    missing = [v for v, required in declared.items() if required and v not in given]
    if missing:
        raise CompileError(
            source.issue(
                (*at, "request", "variables"),
                "the query's required variable(s) "
                + ", ".join(f"${v}" for v in missing)
                + " get no value",
                "add name: <fact path> under variables:",
            )
        )
    yields = []
    for name, path in entry["yields"].items():
        steps = tuple(str(path).split("."))
        if steps[0] != "data" or any(not s for s in steps):
            raise CompileError(
                source.issue(
                    (*at, "yields", name),
                    f"yield {name!r}: {path!r} is not a path into the answer's data",
                    "e.g. data.bemiddeling.bemiddelingspecificatie",
                )
            )
        yields.append((str(name), steps))
    if PEILDATUM in entry["yields"]:
        raise CompileError(
            source.issue(
                (*at, "yields", PEILDATUM),
                f"{PEILDATUM!r} is given by the gateway (the date of the request)",
                "choose another name",
                key=True,
            )
        )
    when = compiler.compile(entry["when"], (*at, "when")) if "when" in entry else None
    return LookupSpec(
        name=str(entry["name"]),
        policy_id=policy_id,
        location=source.location(at),
        route=str(entry["source"]["route"]),
        query=query,
        variables=tuple(variables),
        yields=tuple(yields),
        when=when,
    )


def _declared_variables(source: Source, query: str, at: JsonPath) -> dict[str, bool]:
    """``{variable: required}`` of the one query operation in *query*."""
    try:
        document = parse(query)
    except GraphQLError as exc:
        raise CompileError(source.issue(at, f"the query does not parse: {exc.message}")) from None
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if len(operations) != 1 or operations[0].operation.value != "query":
        raise CompileError(
            source.issue(at, "the request must be exactly one GraphQL query operation")
        )
    return {
        d.variable.name.value: isinstance(d.type, NonNullTypeNode) and d.default_value is None
        for d in operations[0].variable_definitions or ()
    }
