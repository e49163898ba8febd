"""The policy schema as Python code (gateway/policy/schema_check.py) never says yes where
the jsonschema package says no.

Every policy file is checked first by the generated code and only its "valid" is trusted
(gateway/policy/source.py); a "no" goes to jsonschema, which decides and words the
mistakes. A yes the jsonschema package would refuse lets a file through: fail open. So:
the module is what the schema writes now, every shipped file gets the same answer from
both, every pattern is read no more leniently than Python's ``re.search`` reads it, and
documents mutated from the shipped ones never get a yes jsonschema refuses.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.policy import schema_check
from gateway.policy.loader import KINDS
from gateway.policy.schema_code import TARGET, generate
from gateway.policy.source import DEFINITIONS, SCHEMA_FILE, _fast_valid, _validator, read_source

REPO = Path(__file__).resolve().parents[2]
ODD = [chr(c) for c in range(0x21)] + ["\x7f", "\x85", "\xa0", "\u1680", "\u180e"]
ODD += ["\u2000", "\u200b", "\u2028", "\u2029", "\u202f", "\u205f", "\u3000", "\ufeff"]
SAMPLES = ["token.a", "/a/b", 'args_at."a.b"', "/deelnemers/x/y/graphql", "01-31", "A_B", "a-b"]


def _shipped() -> list[tuple[str, str, Any]]:
    """(file, its definition, its data) for every policy YAML in the repository."""
    found = []
    for file in sorted([*REPO.glob("policies/**/*.yaml"), *REPO.glob("tests/**/*.yaml")]):
        source, issues = read_source(file)
        data = source.data
        if issues or not isinstance(data, dict):
            continue
        kinds = [k for k in (*KINDS, "tests") if k in data]
        if len(kinds) == 1:
            found.append((str(file.relative_to(REPO)), kinds[0], data))
    return found


SHIPPED = _shipped()


def _slow_valid(data: Any, definition: str) -> bool:
    return not any(True for _ in _validator(definition).iter_errors(data))


def test_the_committed_module_is_what_the_schema_writes() -> None:
    assert TARGET.read_text(encoding="utf-8") == generate(), "run make policy-schema-code"


def test_there_is_a_check_per_definition() -> None:
    assert set(schema_check.CHECKS) == set(DEFINITIONS)
    assert {kind for _, kind, _ in SHIPPED} == set(DEFINITIONS)


@pytest.mark.parametrize(("file", "definition", "data"), SHIPPED, ids=[f for f, _, _ in SHIPPED])
def test_shipped_files_get_the_same_answer_from_both(file: str, definition: str, data: Any) -> None:
    for other in DEFINITIONS:
        assert _fast_valid(data, other) == _slow_valid(data, other), (file, other)
    assert _fast_valid(data, definition), file


def _patterns(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "pattern" and isinstance(value, str):
                yield value
            else:
                yield from _patterns(value)
    elif isinstance(node, list):
        for value in node:
            yield from _patterns(value)


PATTERNS = sorted(set(_patterns(json.loads(SCHEMA_FILE.read_text()))))


def test_every_pattern_of_the_schema_is_in_the_code() -> None:
    assert len(PATTERNS) >= 5
    assert set(schema_check.REGEX_PATTERNS) == set(PATTERNS)


@pytest.mark.parametrize("pattern", PATTERNS)
def test_the_code_accepts_no_text_python_refuses(pattern: str) -> None:
    written = schema_check.REGEX_PATTERNS[pattern]
    for sample in SAMPLES:
        for odd in ODD:
            for text in (sample, sample + odd, odd + sample, sample[:2] + odd + sample[2:]):
                if written.search(text):
                    assert re.search(pattern, text), (pattern, text)


def test_a_final_newline_is_refused_by_the_code_and_decided_by_jsonschema() -> None:
    """``$`` in ``re.search`` also matches before a final newline; the code writes ``\\Z``:
    its no goes to jsonschema, which keeps the schema's meaning as jsonschema reads it."""
    pattern = next(p for p in PATTERNS if p.endswith("$"))
    text = next(s for s in SAMPLES if re.search(pattern, s))
    assert re.search(pattern, text + "\n") and not schema_check.REGEX_PATTERNS[pattern].search(
        text + "\n"
    )


ODD_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 3),
    st.floats(allow_nan=False, allow_infinity=False, width=32),
    st.text(alphabet=st.sampled_from([*ODD, "a", "/", ".", "{", "}", "-", "_", "0"]), max_size=6),
    st.sampled_from([*SAMPLES, "allow", "deny", "refuse", "token.sub", "2026-01-01", "P1D"]),
    st.lists(st.sampled_from(SAMPLES), max_size=2),
    st.dictionaries(st.sampled_from(["x", "rule", "when", "all", "any", "not"]), st.none()),
)


def _paths(node: Any, at: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield at
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _paths(value, (*at, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _paths(value, (*at, index))


@st.composite
def mutated(draw: st.DrawFn) -> tuple[Any, str]:
    """A shipped document with one to three places replaced, removed or added to."""
    _, definition, data = draw(st.sampled_from(SHIPPED))
    data = copy.deepcopy(data)
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(list(_paths(data))))
        if not path:
            continue
        parent = data
        for step in path[:-1]:
            parent = parent[step]
        action = draw(st.sampled_from(["replace", "remove", "add"]))
        if action == "replace":
            parent[path[-1]] = draw(ODD_VALUES)
        elif action == "remove":
            del parent[path[-1]]
        elif isinstance(parent, dict):
            parent[draw(st.sampled_from(["extra", "x", "when", "rules", "id"]))] = draw(ODD_VALUES)
        else:
            parent.append(draw(ODD_VALUES))
    return data, definition


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_no_mutated_document_gets_a_yes_jsonschema_refuses(case: tuple[Any, str]) -> None:
    data, definition = case
    if _fast_valid(data, definition):
        assert _slow_valid(data, definition)
