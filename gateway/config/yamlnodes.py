"""Reading YAML with positions: every value knows its file, line and column.

The loader composes the YAML into nodes (``yaml.compose``) instead of plain Python data,
so that every mistake can be reported where it is. ``${NAME}`` in a scalar is replaced
by the environment variable ``NAME`` (a missing variable is an error, never an empty
string).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NoReturn

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from gateway.config.errors import ConfigError

_ENV_REF = re.compile(r"\$\{([^}]*)\}")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_SCALAR_TYPES = (str, int, float, bool, type(None))


def compose_file(path: Path) -> Value:
    """Compose *path* into a positioned :class:`Value`; a missing/broken file is a ConfigError."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError("file not found", file=path, hint="check the path") from None
    except OSError as exc:
        raise ConfigError(f"cannot read file: {exc.strerror}", file=path) from None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        raise ConfigError(
            f"invalid YAML: {exc.problem or exc.context}",
            file=path,
            line=mark.line + 1 if mark else 0,
            col=mark.column + 1 if mark else 0,
        ) from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"invalid YAML: {exc}", file=path) from None
    if node is None:
        raise ConfigError("file is empty", file=path, line=1, col=1, hint="expected a mapping")
    return Value(node, path)


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return type(value).__name__


class Value:
    """One YAML node with its file; typed accessors raise ConfigError at the node."""

    __slots__ = ("file", "node")

    def __init__(self, node: Node, file: Path) -> None:
        self.node = node
        self.file = file

    # -- errors -----------------------------------------------------------------------
    def error(self, message: str, hint: str | None = None) -> ConfigError:
        """A ConfigError positioned at this node."""
        mark = self.node.start_mark
        return ConfigError(
            message, file=self.file, line=mark.line + 1, col=mark.column + 1, hint=hint
        )

    def _expected(self, what: str) -> NoReturn:
        raise self.error(f"expected {what}, got {self.describe()}")

    def describe(self) -> str:
        """What this node is, for 'expected X, got Y' messages."""
        if isinstance(self.node, MappingNode):
            return "a mapping"
        if isinstance(self.node, SequenceNode):
            return "a list"
        return _type_name(self.scalar())

    # -- scalars ----------------------------------------------------------------------
    def scalar(self) -> Any:
        """The scalar's Python value after ``${ENV}`` substitution."""
        if not isinstance(self.node, ScalarNode):
            self._expected("a scalar value")
        raw = self.node.value
        if "${" in raw:
            text = self._substitute(raw)
            if self.node.style is None:
                # A plain scalar keeps YAML's typing after substitution (``port: ${PORT}``).
                try:
                    typed = yaml.safe_load(text)
                except yaml.YAMLError:
                    return text
                return typed if isinstance(typed, _SCALAR_TYPES) else text
            return text
        constructor = yaml.SafeLoader("")
        return constructor.construct_object(self.node, deep=True)

    def _substitute(self, raw: str) -> str:
        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if not _ENV_NAME.fullmatch(name):
                raise self.error(
                    f"invalid environment reference ${{{name}}}",
                    "expected ${NAME} with letters, digits and underscores",
                )
            value = os.environ.get(name)
            if value is None:
                raise self.error(
                    f"environment variable {name} is not set",
                    f"set {name} or remove the reference",
                )
            return value

        return _ENV_REF.sub(replace, raw)

    def is_null(self) -> bool:
        """True for an explicit YAML null (``~``, ``null`` or nothing)."""
        return isinstance(self.node, ScalarNode) and self.node.tag == "tag:yaml.org,2002:null"

    def string(self, *, nonempty: bool = True) -> str:
        """A string (numbers are not silently turned into strings, except plain ids)."""
        value = self.scalar()
        if isinstance(value, bool) or value is None or isinstance(value, float):
            self._expected("a string")
        if isinstance(value, int):
            # Identifiers such as ``id: 5151`` are naturally written as numbers; keep the text.
            assert isinstance(self.node, ScalarNode)
            return str(self.node.value)
        if not isinstance(value, str):
            self._expected("a string")
        if nonempty and not value.strip():
            raise self.error("expected a non-empty string")
        return value

    def integer(self, *, minimum: int | None = None, maximum: int | None = None) -> int:
        """An integer within optional bounds."""
        value = self.scalar()
        if isinstance(value, bool) or not isinstance(value, int):
            self._expected("an integer")
        self._check_range(value, minimum, maximum)
        return value

    def number(self, *, minimum: float | None = None, maximum: float | None = None) -> float:
        """A number (integer or float) within optional bounds."""
        value = self.scalar()
        if isinstance(value, bool) or not isinstance(value, int | float):
            self._expected("a number")
        self._check_range(value, minimum, maximum)
        return float(value)

    def _check_range(self, value: float, minimum: float | None, maximum: float | None) -> None:
        if minimum is not None and value < minimum:
            raise self.error(f"{value} is too small", f"expected at least {minimum}")
        if maximum is not None and value > maximum:
            raise self.error(f"{value} is too large", f"expected at most {maximum}")

    def boolean(self) -> bool:
        """true or false."""
        value = self.scalar()
        if not isinstance(value, bool):
            self._expected("true or false")
        return value

    def choice(self, options: tuple[str, ...]) -> str:
        """One of *options*."""
        value = self.string()
        if value not in options:
            raise self.error(f"unknown value {value!r}", "expected one of " + ", ".join(options))
        return value

    def path(self, base: Path) -> Path:
        """A file system path, resolved relative to *base* (the directory of the file)."""
        return (base / Path(self.string())).resolve()

    # -- collections ------------------------------------------------------------------
    def items(self) -> list[Value]:
        """The elements of a list."""
        if not isinstance(self.node, SequenceNode):
            self._expected("a list")
        return [Value(item, self.file) for item in self.node.value]

    def strings(self) -> list[str]:
        """A list of strings; a single string is accepted as a list of one."""
        if isinstance(self.node, ScalarNode) and not self.is_null():
            return [self.string()]
        return [item.string() for item in self.items()]

    def section(self, allowed: tuple[str, ...], what: str, *, extensions: bool = False) -> Section:
        """A mapping whose keys must all be in *allowed* (unknown keys are errors).

        With *extensions*, keys starting with ``x-`` are allowed and ignored (a place for
        YAML anchors, as in docker compose files)."""
        if not isinstance(self.node, MappingNode):
            self._expected(f"a mapping ({what})")
        entries: dict[str, tuple[Value, Value]] = {}
        for key_node, value_node in self.node.value:
            key = Value(key_node, self.file)
            name = key.scalar()
            if not isinstance(name, str):
                raise key.error(f"expected a string key in {what}, got {key.describe()}")
            if extensions and name.startswith("x-"):
                continue
            if name not in allowed:
                raise key.error(
                    f"unknown key {name!r} in {what}", "expected one of " + ", ".join(allowed)
                )
            if name in entries:
                raise key.error(f"duplicate key {name!r} in {what}")
            entries[name] = (key, Value(value_node, self.file))
        return Section(self, entries, what)

    def mapping(self, what: str) -> dict[str, Value]:
        """A mapping with free string keys (e.g. ``scopes:``, ``required_scopes:``)."""
        if not isinstance(self.node, MappingNode):
            self._expected(f"a mapping ({what})")
        result: dict[str, Value] = {}
        for key_node, value_node in self.node.value:
            key = Value(key_node, self.file)
            name = key.string()
            if name in result:
                raise key.error(f"duplicate key {name!r} in {what}")
            result[name] = Value(value_node, self.file)
        return result

    def data(self) -> Any:
        """Plain Python data of this node (for opaque blobs such as a JWKS), env-resolved."""
        if isinstance(self.node, MappingNode):
            return {k: v.data() for k, v in self.mapping("a mapping").items()}
        if isinstance(self.node, SequenceNode):
            return [item.data() for item in self.items()]
        return self.scalar()


class Section:
    """A checked mapping: look up known keys, with defaults."""

    __slots__ = ("_entries", "value", "what")

    def __init__(self, value: Value, entries: dict[str, tuple[Value, Value]], what: str) -> None:
        self.value = value
        self._entries = entries
        self.what = what

    def __contains__(self, key: str) -> bool:
        return key in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def get(self, key: str) -> Value | None:
        """The value under *key*, or None when absent or null."""
        entry = self._entries.get(key)
        if entry is None or entry[1].is_null():
            return None
        return entry[1]

    def key(self, key: str) -> Value | None:
        """The key node itself (to point at a key in a message)."""
        entry = self._entries.get(key)
        return entry[0] if entry else None

    def require(self, key: str, hint: str | None = None) -> Value:
        """The value under *key*; missing is an error at the mapping."""
        value = self.get(key)
        if value is None:
            raise self.value.error(f"missing required key {key!r} in {self.what}", hint)
        return value

    def string(self, key: str, default: str | None = None) -> str | None:
        """Optional string."""
        value = self.get(key)
        return default if value is None else value.string()

    def integer(
        self, key: str, default: int, *, minimum: int | None = None, maximum: int | None = None
    ) -> int:
        """Optional integer with default."""
        value = self.get(key)
        return default if value is None else value.integer(minimum=minimum, maximum=maximum)

    def number(
        self,
        key: str,
        default: float,
        *,
        minimum: float | None = None,
        maximum: float | None = None,
    ) -> float:
        """Optional number with default."""
        value = self.get(key)
        return default if value is None else value.number(minimum=minimum, maximum=maximum)

    def boolean(self, key: str, default: bool) -> bool:
        """Optional boolean with default."""
        value = self.get(key)
        return default if value is None else value.boolean()

    def choice(self, key: str, options: tuple[str, ...], default: str) -> str:
        """Optional choice with default."""
        value = self.get(key)
        return default if value is None else value.choice(options)

    def strings(self, key: str) -> list[str]:
        """Optional list of strings (empty when absent)."""
        value = self.get(key)
        return [] if value is None else value.strings()
