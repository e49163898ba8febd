"""Checking policy YAML against the JSON Schema, every mistake at its ``line:col``.

Files are read by the one YAML reader with positions (:mod:`gateway.config.yamlsource`), so
that every mistake, structural (schema) or semantic (compiler), is reported where it is.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from gateway.config.errors import Located as LoadIssue
from gateway.config.errors import did_you_mean
from gateway.config.yamlsource import JsonPath, Source
from gateway.config.yamlsource import read_source as _read_yaml

if TYPE_CHECKING:
    import jsonschema
    from jsonschema.exceptions import ValidationError

SCHEMA_FILE = Path(__file__).with_name("schema.json")
"""The canonical JSON Schema; ``policies/schema.json`` is a copy for editors."""

DEFINITIONS = ("policy", "catalogue", "overlay", "tests")
"""The schema's definitions a file is checked against (:func:`schema_issues`)."""


def read_source(file: Path) -> tuple[Source, list[LoadIssue]]:
    """Read and compose a policy, catalogue or overlay *file*; problems are returned."""
    return _read_yaml(file, empty_hint="expected a policy, catalogue or overlay mapping")


@cache
def _schema() -> dict[str, Any]:
    with SCHEMA_FILE.open(encoding="utf-8") as fh:
        schema: dict[str, Any] = json.load(fh)
    return schema


def _definition_schema(definition: str) -> dict[str, Any]:
    schema = dict(_schema())
    schema["$ref"] = f"#/$defs/{definition}"
    schema.pop("oneOf", None)
    return schema


@cache
def _validator(definition: str) -> jsonschema.Draft202012Validator:
    import jsonschema  # only when a file has a mistake: see _fast_valid

    return jsonschema.Draft202012Validator(_definition_schema(definition))


def _fast_valid(data: Any, definition: str) -> bool:
    """True when *data* is valid by the schema written as Python code
    (:mod:`gateway.policy.schema_check`: ~2 ms for the iWlz policies, where the jsonschema
    package takes ~70 ms of every start and another ~30 ms to import).

    Only a yes is trusted: a no, or data the code cannot take, goes to the jsonschema check,
    whose messages and rules decide. Its patterns are Python's ``re`` with ``\\Z`` for
    ``$``: never more lenient than jsonschema's ``re.search``.
    """
    from fastjsonschema import JsonSchemaException

    from gateway.policy.schema_check import CHECKS

    check = CHECKS.get(definition)
    if check is None:
        return False
    try:
        check(data)
    except (JsonSchemaException, TypeError, ValueError, ArithmeticError):
        return False
    return True


def _leaf_errors(error: ValidationError) -> Iterator[ValidationError]:
    # oneOf/anyOf report "not valid under any of the given schemas"; the most relevant
    # sub-error says what is actually wrong.
    if error.context:
        from jsonschema.exceptions import best_match

        best = best_match(error.context)
        yield from _leaf_errors(best)
    else:
        yield error


def schema_issues(source: Source, definition: str) -> list[LoadIssue]:
    """Check *source* against the ``$defs/<definition>`` part of the policy schema."""
    if _fast_valid(source.data, definition):
        return []
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
        return [
            source.issue(path, f"missing required key {missing!r} in {where}", f"add '{missing}:'")
        ]
    if kind == "enum":
        options = [str(o) for o in cast(list[Any], error.validator_value)]
        value = error.instance
        return [
            source.issue(
                path,
                f"unknown value {value!r} for {where}",
                did_you_mean(str(value), options) + "expected one of: " + ", ".join(options),
            )
        ]
    if kind == "type":
        expected = error.validator_value
        names = expected if isinstance(expected, list) else [expected]
        return [
            source.issue(
                path,
                f"{where}: expected {' or '.join(map(_article, names))}, "
                f"got {_article(_json_type(error.instance))}",
            )
        ]
    if kind == "pattern":
        hint = schema.get("description") or f"must match {error.validator_value}"
        return [source.issue(path, f"{where}: {error.instance!r} is not valid", hint)]
    if kind in {"minItems", "maxItems"} and schema.get("minItems") == schema.get("maxItems"):
        # A fixed-length list, e.g. an audit afzender: [id type fact, id fact].
        got = len(error.instance) if isinstance(error.instance, list) else "?"
        return [
            source.issue(
                path,
                f"{where} takes exactly {schema['minItems']} items, got {got}",
                schema.get("description"),
            )
        ]
    if kind in {"minItems", "minProperties"}:
        return [source.issue(path, f"{where} must not be empty")]
    if kind == "maxProperties":
        return [
            source.issue(
                path,
                f"{where}: {error.message}",
                "use one operator per condition; combine with all:",
            )
        ]
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
    words = {
        "object": "a mapping",
        "array": "a list",
        "string": "a string",
        "boolean": "true or false",
        "integer": "an integer",
        "number": "a number",
        "null": "nothing",
    }
    return words.get(name, name)
