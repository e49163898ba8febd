"""Loading GraphQL schemas (SDL files) for per-route validation, with the network's scalars.

The only custom scalar the iWlz network uses is ``DateTime``. Real senders send
``timestamp`` as a bare date (``2024-07-02``) as well as a date-time, so the scalar
accepts both ISO-8601 forms and keeps the value as the string that was sent: the
policy decides on exactly what reaches the resource server, and strict date-time
checking is a route option of the policy.
"""

from __future__ import annotations

import datetime as _dt
import threading
from pathlib import Path
from typing import Any

from graphql import (
    GraphQLError,
    GraphQLScalarType,
    GraphQLSchema,
    GraphQLSyntaxError,
    StringValueNode,
    ValueNode,
    assert_valid_schema,
    build_schema,
)

from gateway.config.errors import ConfigError
from gateway.config.model import RouteConfig

__all__ = [
    "BUNDLED_SCHEMA",
    "is_iso_date_or_datetime",
    "load_schema",
    "load_schema_text",
    "route_schema",
    "route_schema_path",
]

BUNDLED_SCHEMA = Path(__file__).with_name("netwerkpunt.graphql")
"""The network schema shipped with the gateway: package data, so it is in the wheel too
(``config/schemas/netwerkpunt.graphql`` in the source tree is a symlink to it; the container
image has a copy at ``/usr/share/nid-gateway/schemas/netwerkpunt.graphql``)."""

_cache: dict[tuple[Path, int, int], GraphQLSchema] = {}
_lock = threading.Lock()


def is_iso_date_or_datetime(value: str) -> bool:
    """True for an ISO-8601 date (``2024-07-02``) or date-time (``2024-07-02T00:00:00Z``)."""
    if len(value) < 10 or not value[:4].isdigit():
        return False
    try:
        if len(value) == 10:
            _dt.date.fromisoformat(value)
        else:
            # Python 3.11 reads the RFC 3339 forms, including "Z" and fractions.
            _dt.datetime.fromisoformat(value)
    except ValueError:
        return False
    return True


_valid_texts: set[str] = set()
"""``DateTime`` texts found valid, so a repeated one is not parsed again (the value kept is
the text itself, immutable); bounded by :data:`_VALID_TEXTS_KEPT`, emptied when full."""
_VALID_TEXTS_KEPT = 256


def _coerce_datetime_value(value: Any) -> str:
    if type(value) is str and value in _valid_texts:
        return value
    if isinstance(value, str) and is_iso_date_or_datetime(value):
        if type(value) is str:
            if len(_valid_texts) >= _VALID_TEXTS_KEPT:
                _valid_texts.clear()
            _valid_texts.add(value)
        return value
    raise GraphQLError(
        f"DateTime cannot represent {value!r}: expected an ISO-8601 date or date-time."
    )


def _coerce_datetime_literal(node: ValueNode, *_: Any) -> str:
    if isinstance(node, StringValueNode):
        return _coerce_datetime_value(node.value)
    raise GraphQLError("DateTime cannot represent a non-string literal.", node)


def _install_scalars(schema: GraphQLSchema) -> None:
    """Give the SDL's ``DateTime`` its coercion (SDL alone cannot express it)."""
    scalar = schema.type_map.get("DateTime")
    if isinstance(scalar, GraphQLScalarType):
        scalar.serialize = _coerce_datetime_value  # type: ignore[method-assign]
        scalar.coerce_output_value = _coerce_datetime_value
        scalar.parse_value = _coerce_datetime_value  # type: ignore[method-assign]
        scalar.coerce_input_value = _coerce_datetime_value
        scalar.parse_literal = _coerce_datetime_literal  # type: ignore[method-assign,assignment]
        scalar.coerce_input_literal = _coerce_datetime_literal


def load_schema_text(sdl: str, *, source: str | Path = "<schema>") -> GraphQLSchema:
    """Build and check a schema from SDL text; a mistake is a :class:`ConfigError`."""
    try:
        schema = build_schema(sdl)
        assert_valid_schema(schema)
    except GraphQLSyntaxError as exc:
        line, col = (exc.locations[0].line, exc.locations[0].column) if exc.locations else (0, 0)
        raise ConfigError(
            f"invalid GraphQL SDL: {exc.message}", file=source, line=line, col=col
        ) from None
    except (GraphQLError, TypeError) as exc:
        raise ConfigError(f"invalid GraphQL schema: {exc}", file=source) from None
    _install_scalars(schema)
    return schema


def load_schema(path: Path) -> GraphQLSchema:
    """Load the SDL file at ``path`` once; later calls return the same schema object.

    Cached per resolved path (and file size/mtime, so an edited file is reloaded on
    a configuration reload). Raises :class:`~gateway.config.errors.ConfigError` for a
    missing file or bad SDL, naming the file and position.
    """
    resolved = Path(path).resolve()
    try:
        stat = resolved.stat()
        key = (resolved, stat.st_mtime_ns, stat.st_size)
    except OSError as exc:
        raise ConfigError(f"cannot read GraphQL schema: {exc.strerror}", file=path) from None
    with _lock:
        cached = _cache.get(key)
        if cached is not None:
            return cached
    try:
        sdl = resolved.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read GraphQL schema: {exc}", file=path) from None
    schema = load_schema_text(sdl, source=path)
    with _lock:
        return _cache.setdefault(key, schema)


def route_schema_path(route: RouteConfig) -> Path | None:
    """The SDL *route* validates against: its own, else the bundled network schema; None
    only with an explicit ``schema: none``."""
    if not route.schema_validation:
        return None
    return route.schema or BUNDLED_SCHEMA


def route_schema(route: RouteConfig) -> GraphQLSchema | None:
    """The loaded schema of :func:`route_schema_path` (None: the route does not validate)."""
    path = route_schema_path(route)
    return load_schema(path) if path is not None else None
