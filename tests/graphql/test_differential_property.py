"""For every document the gateway would forward, what it decided on is what an executor runs.

Hypothesis writes GraphQL documents from the pieces parser differentials are made of:
aliases, named and inline fragments (with and without type conditions, at the root and
below), ``@skip``/``@include`` (constant, from variables, repeated), unknown directives,
duplicate operation, fragment and variable names, several operations, and variables given
or not. Each document goes through the gateway's analyser; when the analyser lets it pass,
graphql-core's executor runs it (unvalidated, as a trusting upstream would) against a
schema that records every field it resolves. The root field and arguments executed must be
the ones decided on, and the fields selected below it the ones the policy saw.

With ``schema: none`` the gateway cannot know the upstream's types, so it may see more
fields below the root than execute (a nested type condition it cannot evaluate) and the
upstream may refuse variables the gateway could not type-check; it must never run a root
field or argument the gateway did not decide on.
"""

from __future__ import annotations

from typing import Any

import pytest
from graphql import GraphQLSchema
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.config.model import GraphQLLimits
from gateway.graphql import Analyser
from gateway.refusals import Refusal
from tests.executing_upstream import ALLOWED_INPUT, ALLOWED_LITERAL, REFUSED_LITERAL, run
from tests.executing_upstream import schema as network_schema
from tests.fixtures.graphql import request

GOOD, BAD, INPUT = ALLOWED_LITERAL, REFUSED_LITERAL, ALLOWED_INPUT

# Directives: the first ones keep a document valid, the rest are the differentials' stuff.
VALID_DIRECTIVES = [
    "",
    "",
    "",
    "",
    "@include(if: true)",
    "@include(if: false)",
    "@skip(if: true)",
    "@skip(if: false)",
    "@include(if: $b)",
    "@skip(if: $b)",
    "@include(if: $b) @skip(if: $b)",
]
HOSTILE_DIRECTIVES = [
    "@include(if: true) @include(if: false)",
    "@skip(if: false) @skip(if: true)",
    "@defer",
    "@include",
]
ALIASES = ["", "", "", "x: ", "y: ", "zendNotificatie: ", "notificatieID: "]
LEAVES = [
    ("notificatieID", ""),
    ("afzenderID", ""),
    ("eventType", ""),
    ("__typename", ""),
    ("subjectList", "{ subject recordID }"),
    ("subjectList", "{ subject }"),
]
SUB_FRAGMENTS = ["F", "G"]
ROOT_FRAGMENTS = ["R", "S"]


class Writer:
    """Draws one document. Without chaos it keeps names consistent (spread fragments are
    defined once, used variables declared), so many documents get past validation; with
    chaos anything goes (duplicates, undefined or cyclic fragments, wrong type conditions)."""

    def __init__(self, draw: st.DrawFn, chaos: bool) -> None:
        self.draw = draw
        self.chaos = chaos
        self.spread: dict[str, None] = {}

    def pick(self, options: list[str]) -> str:
        return self.draw(st.sampled_from(options))

    def directives(self) -> str:
        return self.pick(VALID_DIRECTIVES + (HOSTILE_DIRECTIVES if self.chaos else []))

    def condition(self, own: str) -> str:
        if self.chaos:
            return self.pick(["", "on Mutation", "on Query", "on Notificatie"])
        return self.pick(["", f"on {own}"])

    def fragment_spread(self, names: list[str]) -> str:
        name = self.pick(names)
        self.spread[name] = None
        return f"...{name} {self.directives()}"

    def subselection(self, depth: int = 0, spreads: bool = True) -> str:
        """A selection set of type ``Notificatie``."""
        kinds = ["leaf"] * 4 + (["inline", "spread"] if depth < 2 else [])
        if not spreads and not self.chaos:
            kinds = [k for k in kinds if k != "spread"]
        items = []
        for _ in range(self.draw(st.integers(1, 3))):
            kind = self.pick(kinds)
            if kind == "leaf":
                name, below = self.draw(st.sampled_from(LEAVES))
                items.append(f"{self.pick(ALIASES)}{name} {self.directives()} {below}")
            elif kind == "inline":
                items.append(
                    f"... {self.condition('Notificatie')} {self.directives()} "
                    f"{self.subselection(depth + 1, spreads)}"
                )
            else:
                items.append(self.fragment_spread(SUB_FRAGMENTS))
        return "{ " + " ".join(items) + " }"

    def root_field(self, operation: str, spreads: bool) -> str:
        if operation == "query":
            field = self.pick(
                ['notificatie(notificatieID: "1")', "notificaties", "notificaties(first: 2)"]
            )
        else:
            field = f"zendNotificatie(notificatieInput: {self.pick([GOOD, BAD, '$n'])})"
        return (
            f"{self.pick(ALIASES)}{field} {self.directives()} {self.subselection(spreads=spreads)}"
        )

    def root_selection(self, operation: str, depth: int = 0, spreads: bool = True) -> str:
        own = operation.capitalize()
        kinds = ["field"] * 3 + (["inline", "spread"] if depth < 1 else [])
        if not spreads and not self.chaos:
            kinds = ["field"]
        items = []
        for _ in range(self.draw(st.integers(1, 2 if self.chaos else 1))):
            kind = self.pick(kinds)
            if kind == "field":
                items.append(self.root_field(operation, spreads))
            elif kind == "inline":
                items.append(
                    f"... {self.condition(own)} {self.directives()} "
                    f"{self.root_selection(operation, depth + 1, spreads)}"
                )
            else:
                items.append(self.fragment_spread(ROOT_FRAGMENTS))
        return "{ " + " ".join(items) + " }"

    def operation(self) -> str:
        kind = self.pick(["mutation", "mutation", "query"])
        self.kind = kind
        name = self.pick(["", "A", "B"])
        self.name = name
        body = self.root_selection(kind)
        if self.chaos:
            declared = self.draw(
                st.lists(
                    st.sampled_from(
                        [
                            "$b: Boolean",
                            "$b: Boolean!",
                            "$n: NotificatieInput!",
                            "$n: NotificatieInput",
                            "$u: String",
                        ]
                    ),
                    max_size=3,
                )
            )
        else:
            declared = ["$b: Boolean!", "$n: NotificatieInput!", "$u: String"]
        variables = f"({', '.join(declared)})" if declared else ""
        return f"{kind} {name}{variables} {body}"

    def fragments(self) -> list[str]:
        out: list[str] = []
        if self.chaos:
            for _ in range(self.draw(st.integers(0, 3))):
                name = self.pick(SUB_FRAGMENTS + ROOT_FRAGMENTS)
                condition = self.pick(["Notificatie", "Mutation", "Query"])
                body = (
                    self.subselection(1)
                    if condition == "Notificatie"
                    else self.root_selection(condition.lower(), 1)
                )
                out.append(f"fragment {name} on {condition} {body}")
            return out
        done: set[str] = set()
        while len(done) < len(self.spread):
            name = next(n for n in self.spread if n not in done)
            done.add(name)
            if name in SUB_FRAGMENTS:
                body = self.subselection(1, spreads=False)
                out.append(f"fragment {name} on Notificatie {body}")
            else:
                body = self.root_selection(self.kind, 1, spreads=False)
                out.append(f"fragment {name} on {self.kind.capitalize()} {body}")
        return out


@st.composite
def graphql_request(draw: st.DrawFn) -> tuple[str, dict[str, Any], str | None]:
    writer = Writer(draw, chaos=draw(st.integers(0, 2)) == 0)
    definitions = [writer.operation()]
    if writer.chaos and draw(st.booleans()):
        definitions.append(writer.operation())
    definitions += writer.fragments()
    variables: dict[str, Any] = {}
    # Without chaos the declared (non-null) variables are given; with chaos, sometimes.
    if not writer.chaos or draw(st.booleans()):
        variables["b"] = draw(st.booleans())
    if not writer.chaos or draw(st.booleans()):
        variables["n"] = INPUT
    operation_name = draw(
        st.sampled_from([None, None, "A", "B"] if writer.chaos else [None, writer.name or None])
    )
    return " ".join(definitions), variables, operation_name


LIMITS = GraphQLLimits()
SETTINGS = settings(
    max_examples=400,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@pytest.fixture(scope="module")
def recording_schema() -> GraphQLSchema:
    return network_schema()


@pytest.mark.parametrize("validating", [True, False], ids=["schema", "schema_none"])
@SETTINGS
@given(case=graphql_request())
def test_what_the_gateway_forwards_is_what_the_executor_runs(
    recording_schema: GraphQLSchema, validating: bool, case: tuple[str, dict[str, Any], str | None]
) -> None:
    query, variables, operation_name = case
    analyser = Analyser(LIMITS, cache_size=0, schema=recording_schema if validating else None)
    try:
        facts = analyser.analyse(request(query, variables, operation_name))
    except Refusal:
        return  # refused: nothing reaches the upstream
    executed = run(query, variables, operation_name)
    decided = (facts.root_field, facts.arguments)
    seen = {p for p in facts.selected_paths if not p.endswith("__typename")}
    if validating:
        assert executed.roots == [decided], (query, variables, executed.errors)
        assert executed.paths == seen, query
    else:
        # Nothing else runs: either the decided root field with the arguments decided on
        # (plus defaults only the upstream's schema knows), or nothing (the upstream's own
        # type check refused a variable the gateway could not type).
        assert len(executed.roots) <= 1, (query, variables)
        if executed.roots:
            ((name, arguments),) = executed.roots
            assert name == facts.root_field, query
            assert subsumes(arguments, facts.arguments), (query, variables)
        else:
            assert executed.errors, query
        assert executed.paths <= seen, query


def subsumes(executed: Any, decided: Any) -> bool:
    """*executed* is *decided* with, at most, input fields added by schema defaults."""
    if isinstance(decided, dict):
        return isinstance(executed, dict) and all(
            key in executed and subsumes(executed[key], value) for key, value in decided.items()
        )
    if isinstance(decided, list):
        return (
            isinstance(executed, list)
            and len(executed) == len(decided)
            and all(subsumes(e, d) for e, d in zip(executed, decided, strict=True))
        )
    return bool(executed == decided)


def test_the_generator_produces_documents_the_gateway_forwards(
    recording_schema: GraphQLSchema,
) -> None:
    # Guard against a vacuous property: a fair share of generated documents must pass.
    forwarded = 0
    analyser = Analyser(LIMITS, cache_size=0, schema=recording_schema)

    @settings(
        max_examples=200,
        deadline=None,
        derandomize=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(case=graphql_request())
    def count(case: tuple[str, dict[str, Any], str | None]) -> None:
        nonlocal forwarded
        try:
            analyser.analyse(request(*case))
        except Refusal:
            return
        forwarded += 1

    count()
    assert forwarded >= 20
