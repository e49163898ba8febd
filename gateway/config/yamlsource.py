"""Reading YAML with positions: plain data plus the ``line:col`` of every value and key.

The one YAML reader of the gateway (configuration and policy files). The YAML is composed
into nodes (``yaml.compose``) and turned into plain data, remembering each node's mark by
its path, so that whoever checks the data (pydantic, the policy JSON Schema, the policy
compiler) can report every mistake where it is. Standard library and PyYAML only.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from gateway.config.errors import Located

JsonPath = tuple[str | int, ...]

_ENV_REF = re.compile(r"\$\{([^}]*)\}")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_SCALAR_TYPES = (str, int, float, bool, type(None))
_STR_TAG = "tag:yaml.org,2002:str"


@dataclass(slots=True)
class Source:
    """One YAML file as plain data plus the position of every value and key."""

    file: Path
    text: str
    data: Any = None
    marks: dict[JsonPath, tuple[int, int]] = field(default_factory=dict)
    key_marks: dict[JsonPath, tuple[int, int]] = field(default_factory=dict)
    broken: set[JsonPath] = field(default_factory=set)
    """Values that could not be read (e.g. an unset ``${ENV}``): already reported."""

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
    ) -> Located:
        """A problem positioned at *path* in this file."""
        line, col = self.pos(path, key=key)
        return Located(self.name, line, col, message, hint)

    def location(self, path: JsonPath) -> str:
        """``file:line`` of the value at *path* (what a Decision reports)."""
        return f"{self.name}:{self.pos(path)[0]}"


class _Composer:
    def __init__(self, source: Source, *, env: bool) -> None:
        self.source = source
        self.env = env
        self.issues: list[Located] = []
        self._scalar = yaml.SafeLoader("")

    def build(self, node: Node, path: JsonPath) -> Any:
        mark = node.start_mark
        self.source.marks[path] = (mark.line + 1, mark.column + 1)
        if isinstance(node, MappingNode):
            result: dict[str, Any] = {}
            for key_node, value_node in node.value:
                key = self.scalar(key_node)
                if not isinstance(key, str):
                    # Identifiers as keys (``5151:``) are text.
                    key = str(key)
                if key in result:
                    self.issues.append(
                        self.located(
                            key_node,
                            f"duplicate key {key!r}",
                            "each key may appear once in a mapping",
                        )
                    )
                    continue
                kmark = key_node.start_mark
                self.source.key_marks[(*path, key)] = (kmark.line + 1, kmark.column + 1)
                result[key] = self.build(value_node, (*path, key))
            return result
        if isinstance(node, SequenceNode):
            return [self.build(item, (*path, i)) for i, item in enumerate(node.value)]
        assert isinstance(node, ScalarNode)
        if self.env and "${" in node.value:
            return self.substitute(node, path)
        return self.scalar(node)

    def scalar(self, node: Node) -> Any:
        """The value of a scalar (or a complex key) node. A string is its text: taken
        directly, since most scalars are strings and PyYAML's dispatch by tag costs more
        than the rest of reading them (``construct_yaml_str`` returns ``node.value``)."""
        if node.tag == _STR_TAG and isinstance(node, ScalarNode):
            return node.value
        return self._scalar.construct_object(node, deep=True)

    def close(self) -> None:
        """Break the scalar loader's reference cycle (its parser state is a bound method
        of itself), so the loader and every node it constructed are freed by reference
        counting: start-up runs with the cyclic collector off and freezes the heap without
        a collection (:func:`gateway.serving.lifecycle.settle_heap`)."""
        self._scalar.dispose()

    def located(self, node: Node, message: str, hint: str | None = None) -> Located:
        mark = node.start_mark
        return Located(self.source.name, mark.line + 1, mark.column + 1, message, hint)

    def substitute(self, node: ScalarNode, path: JsonPath) -> Any:
        """``${NAME}`` -> the environment variable; a plain scalar keeps YAML's typing
        afterwards (``port: ${PORT}`` is an integer). Unset is an error, never ``""``."""
        missing: list[Located] = []

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if not _ENV_NAME.fullmatch(name):
                missing.append(
                    self.located(
                        node,
                        f"invalid environment reference ${{{name}}}",
                        "expected ${NAME} with letters, digits and underscores",
                    )
                )
                return ""
            value = os.environ.get(name)
            if value is None:
                missing.append(
                    self.located(
                        node,
                        f"environment variable {name} is not set",
                        f"set {name} or remove the reference",
                    )
                )
                return ""
            return value

        text = _ENV_REF.sub(replace, node.value)
        if missing:
            self.issues.extend(missing)
            self.source.broken.add(path)
            return None
        if not node.style:  # plain: None from PyYAML, "" from libyaml
            try:
                typed = yaml.safe_load(text)
            except yaml.YAMLError:
                return text
            return typed if isinstance(typed, _SCALAR_TYPES) else text
        return text


_SYNTAX: tuple[tuple[str, bool, str, str], ...] = (
    # (PyYAML's context or problem starts with, report at the context mark?, message, hint)
    (
        "while scanning a quoted scalar",
        True,
        "unclosed quote",
        "close the string with the same quote on this line",
    ),
    (
        "while scanning a simple key",
        True,
        "missing ':' after a key",
        "write 'key: value' (a list entry starts with '- ')",
    ),
    ("while parsing a flow", True, "unclosed [ or {", "close it with ] or } on this line"),
    (
        "found character '\\t'",
        False,
        "tab character",
        "indent with spaces: YAML does not allow tabs",
    ),
    ("while parsing a block", False, "bad indentation", "line this up with the entries above it"),
    (
        "mapping values are not allowed here",
        False,
        "unexpected ':'",
        "check this line's indentation, or a missing ':' on the line above",
    ),
)


def _syntax_error(file: str, exc: yaml.MarkedYAMLError) -> Located:
    """One problem for a YAML syntax error, at the line where the mistake is.

    PyYAML gives two marks: ``problem_mark`` (where it gave up) and ``context_mark``
    (where the construct it was reading began). For an unclosed quote or bracket, or a key
    without ``:``, it gives up lines later (often at the end of the file): the mistake is
    at the context mark. For a bad indent or a tab it gives up at the offending line.
    """
    problem = exc.problem or "invalid YAML"
    said = (exc.context or "", problem)
    known = next((k for k in _SYNTAX if any(t.startswith(k[0]) for t in said)), None)
    if known is None:
        mark, message, hint = (
            exc.problem_mark or exc.context_mark,
            problem,
            "check indentation and quoting",
        )
    else:
        _, at_context, message, hint = known
        mark = exc.context_mark if at_context and exc.context_mark else exc.problem_mark
    line, col = (mark.line + 1, mark.column + 1) if mark else (0, 0)
    if message == "unexpected ':'" and mark is not None and mark.buffer:
        # "key\n    child: x": the ':' is fine, the key above it lacks one.
        above = [
            (n, t)
            for n, t in enumerate(mark.buffer[: mark.index].splitlines()[:-1], 1)
            if t.strip()
        ]
        key = above[-1][1] if above else ":"
        if ":" not in key and not key.lstrip().startswith(("-", "#")):
            line, col = above[-1][0], len(key) - len(key.lstrip()) + 1
            message, hint = "missing ':' after a key", "write 'key:' before the lines below it"
    return Located(file, line, col, f"invalid YAML: {message}", hint)


_FAST_LOADER: Any = getattr(yaml, "CSafeLoader", None)
"""libyaml's parser when PyYAML was built with it: composing the demo's configuration and
policies with the pure-Python one took about half of the start-up (bench/bench_coldstart.py)."""


def _compose(text: str) -> Node | None:
    """*text* composed into nodes, by libyaml when available. A syntax error is composed
    again by PyYAML's own parser, whose messages and marks :func:`_syntax_error` knows."""
    if _FAST_LOADER is not None:
        try:
            return yaml.compose(text, Loader=_FAST_LOADER)  # type: ignore[no-any-return]
        except yaml.YAMLError:
            pass
    return yaml.compose(text, Loader=yaml.SafeLoader)


def read_source(
    file: Path, *, env: bool = False, empty_hint: str = "expected a mapping"
) -> tuple[Source, list[Located]]:
    """Read and compose *file*; problems (unreadable, bad YAML, empty, duplicate keys, and
    with *env* an unset ``${NAME}``) are returned, not raised."""
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        return Source(file, ""), [Located(str(file), 0, 0, "file not found", "check the path")]
    except OSError as exc:
        return Source(file, ""), [Located(str(file), 0, 0, f"cannot read file: {exc.strerror}")]
    source = Source(file, text)
    try:
        node = _compose(text)
    except yaml.MarkedYAMLError as exc:
        return source, [_syntax_error(str(file), exc)]
    except yaml.YAMLError as exc:
        return source, [Located(str(file), 0, 0, f"invalid YAML: {exc}")]
    if node is None:
        return source, [Located(str(file), 1, 1, "file is empty", empty_hint)]
    composer = _Composer(source, env=env)
    try:
        source.data = composer.build(node, ())
    finally:
        composer.close()
    return source, composer.issues
