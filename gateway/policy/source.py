"""Reading policy YAML with positions, and checking it against the JSON Schema.

Every value read from a policy file keeps its ``line:col`` (from the YAML node marks), so
that every mistake, structural (schema) or semantic (compiler), is reported where it is.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, cast

import jsonschema
import yaml
from jsonschema.exceptions import ValidationError, best_match
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from gateway.policy.errors import LoadIssue

SCHEMA_FILE = Path(__file__).with_name("schema.json")
"""The canonical JSON Schema; ``policies/schema.json`` is a copy for editors."""

JsonPath = tuple[str | int, ...]


@dataclass(slots=True)
class Source:
    """One YAML file as plain data plus the position of every value and key."""

    file: Path
    text: str
    data: Any = None
    marks: dict[JsonPath, tuple[int, int]] = field(default_factory=dict)
    key_marks: dict[JsonPath, tuple[int, int]] = field(default_factory=dict)

    @property
    def name(self) -> str:
        """The file name as shown in messages."""
        return str(self.file)

    def pos(self, path: JsonPath, *, key: bool = False) -> tuple[int, int]:
        """``(line, col)`` of the value (or key) at *path*; the nearest parent if unknown."""
        table = self.key_marks if key else self.marks
        probe = path
        while probe:
            if probe in table:
                return table[probe]
            if key and probe in self.marks:
                return self.marks[probe]
            probe = probe[:-1]
        return self.marks.get((), (1, 1))

    def issue(
        self, path: JsonPath, message: str, hint: str | None = None, *, key: bool = False
    ) -> LoadIssue:
        """A LoadIssue positioned at *path* in this file."""
        line, col = self.pos(path, key=key)
        return LoadIssue(self.name, line, col, message, hint)

    def location(self, path: JsonPath) -> str:
        """``file:line`` of the value at *path* (what a Decision reports)."""
        return f"{self.name}:{self.pos(path)[0]}"


class _Composer:
    def __init__(self, source: Source) -> None:
        self.source = source
        self.issues: list[LoadIssue] = []
        self._scalar = yaml.SafeLoader("")

    def build(self, node: Node, path: JsonPath) -> Any:
        mark = node.start_mark
        self.source.marks[path] = (mark.line + 1, mark.column + 1)
        if isinstance(node, MappingNode):
            result: dict[str, Any] = {}
            for key_node, value_node in node.value:
                key = self._scalar.construct_object(key_node, deep=True)
                kmark = key_node.start_mark
                if not isinstance(key, str):
                    # Identifiers as keys (``5151:``) are text in this language.
                    key = str(key)
                if key in result:
                    self.issues.append(
                        LoadIssue(
                            self.source.name,
                            kmark.line + 1,
                            kmark.column + 1,
                            f"duplicate key {key!r}",
                            "each key may appear once in a mapping",
                        )
                    )
                    continue
                self.source.key_marks[(*path, key)] = (kmark.line + 1, kmark.column + 1)
                result[key] = self.build(value_node, (*path, key))
            return result
        if isinstance(node, SequenceNode):
            return [self.build(item, (*path, i)) for i, item in enumerate(node.value)]
        assert isinstance(node, ScalarNode)
        return self._scalar.construct_object(node, deep=True)


def read_source(file: Path) -> tuple[Source, list[LoadIssue]]:
    """Read and compose *file*; problems (unreadable, bad YAML, empty) are returned as issues."""
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        return Source(file, ""), [LoadIssue(str(file), 0, 0, f"cannot read file: {exc.strerror}")]
    source = Source(file, text)
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (0, 0)
        problem = exc.problem or exc.context or "invalid YAML"
        return source, [LoadIssue(str(file), line, col, f"invalid YAML: {problem}",
                                  "check indentation and quoting")]
    except yaml.YAMLError as exc:
        return source, [LoadIssue(str(file), 0, 0, f"invalid YAML: {exc}")]
    if node is None:
        return source, [LoadIssue(str(file), 1, 1, "file is empty",
                                  "expected a policy, catalogue or overlay mapping")]
    composer = _Composer(source)
    source.data = composer.build(node, ())
    return source, composer.issues


@cache
def _schema() -> dict[str, Any]:
    with SCHEMA_FILE.open(encoding="utf-8") as fh:
        schema: dict[str, Any] = json.load(fh)
    return schema


@cache
def _validator(definition: str) -> jsonschema.Draft202012Validator:
    schema = dict(_schema())
    schema["$ref"] = f"#/$defs/{definition}"
    schema.pop("oneOf", None)
    return jsonschema.Draft202012Validator(schema)


def _leaf_errors(error: ValidationError) -> Iterator[ValidationError]:
    # oneOf/anyOf report "not valid under any of the given schemas"; the most relevant
    # sub-error says what is actually wrong.
    if error.context:
        best = best_match(error.context)
        yield from _leaf_errors(best)
    else:
        yield error


def did_you_mean(word: str, options: Iterable[str]) -> str:
    """``"did you mean 'x'? "`` for the option closest to a mistyped *word*, else ``""``
    (the one suggestion helper of the policy files)."""
    near = difflib.get_close_matches(word, list(options), n=1)
    return f"did you mean {near[0]!r}? " if near else ""


def schema_issues(source: Source, definition: str) -> list[LoadIssue]:
    """Check *source* against the ``$defs/<definition>`` part of the policy schema."""
    issues: list[LoadIssue] = []
    seen: set[tuple[JsonPath, str]] = set()
    for top in _validator(definition).iter_errors(source.data):
        for error in _leaf_errors(top):
            path: JsonPath = tuple(error.absolute_path)
            for issue in _describe(source, path, error):
                marker = (path, issue.message)
                if marker not in seen:
                    seen.add(marker)
                    issues.append(issue)
    issues.sort(key=lambda i: (i.line, i.col))
    return issues


def _describe(source: Source, path: JsonPath, error: ValidationError) -> list[LoadIssue]:
    where = ".".join(str(p) for p in path) or "the file"
    kind = error.validator
    schema: dict[str, Any] = error.schema if isinstance(error.schema, dict) else {}
    if kind == "additionalProperties" and isinstance(error.instance, dict):
        allowed = sorted(schema.get("properties", {}))
        known = set(allowed)
        return [
            source.issue(
                (*path, key),
                f"unknown key {key!r} in {where}",
                did_you_mean(key, allowed) + "expected one of: " + ", ".join(allowed),
                key=True,
            )
            for key in error.instance
            if key not in known
        ]
    if kind == "required":
        missing = str(error.message).split("'")[1] if "'" in error.message else "?"
        return [source.issue(path, f"missing required key {missing!r} in {where}",
                             f"add '{missing}:'")]
    if kind == "enum":
        options = [str(o) for o in cast(list[Any], error.validator_value)]
        value = error.instance
        return [source.issue(path, f"unknown value {value!r} for {where}",
                             did_you_mean(str(value), options) + "expected one of: "
                             + ", ".join(options))]
    if kind == "type":
        expected = error.validator_value
        names = expected if isinstance(expected, list) else [expected]
        return [source.issue(path, f"{where}: expected {' or '.join(map(_article, names))}, "
                             f"got {_article(_json_type(error.instance))}")]
    if kind == "pattern":
        hint = schema.get("description") or f"must match {error.validator_value}"
        return [source.issue(path, f"{where}: {error.instance!r} is not valid", hint)]
    if kind in {"minItems", "maxItems"} and schema.get("minItems") == schema.get("maxItems"):
        # A fixed-length list, e.g. an audit afzender: [id type fact, id fact].
        got = len(error.instance) if isinstance(error.instance, list) else "?"
        return [source.issue(path, f"{where} takes exactly {schema['minItems']} items, got "
                             f"{got}", schema.get("description"))]
    if kind in {"minItems", "minProperties"}:
        return [source.issue(path, f"{where} must not be empty")]
    if kind == "maxProperties":
        return [source.issue(path, f"{where}: {error.message}",
                             "use one operator per condition; combine with all:")]
    return [source.issue(path, f"{where}: {error.message}")]


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _article(name: str) -> str:
    words = {"object": "a mapping", "array": "a list", "string": "a string",
             "boolean": "true or false", "integer": "an integer", "number": "a number",
             "null": "nothing"}
    return words.get(name, name)
