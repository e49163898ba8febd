"""Fact paths (``token.identifier``, ``args.notificatieInput.afzenderID``, ...) compiled to getters.

A getter is a plain function ``(DecisionInput, item) -> value`` built once at load: the
namespace and attribute are resolved then, so a request only walks its own argument dicts.
``item`` is the current list element inside ``every``/``some`` (None elsewhere). A getter
never raises: a missing or wrongly typed step yields ``None``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from operator import attrgetter
from typing import Any
from weakref import WeakKeyDictionary

from gateway.facts import DecisionInput, OperationFacts, Var

Getter = Callable[[DecisionInput, Any], Any]

TOKEN_FACTS = {
    "instantie_type": "the token's instantie_type claim (Zorgkantoor, Zorgaanbieder, ...)",
    "identifier_type": "the caller's identifier type (UZOVI, AGB, KVK, ...)",
    "identifier": "the caller's identifier value (5151, 12345678, ...)",
    "client_id": "the OAuth2 client id",
    "subject": "the token's sub",
    "actor": "act.sub: on whose behalf the caller acts",
    "issuer": "the token's iss",
    "scopes": "the granted scopes (a set)",
}
OPERATION_FACTS = {
    "type": "query, mutation or subscription",
    "name": "the operation name (may be absent)",
    "field": "the root field's real name",
    "display_name": "the operation name, else the root field",
    "alias": "the root field's alias (may be absent)",
    "selected": "the selected field paths below the root field (a list)",
}
ROUTE_FACTS = {
    "path": "the route path",
    "audience": "the route's audience URL",
    "deelnemer_id_type": "the route's deelnemer identifier type (UZOVI, AGB, KVK)",
    "deelnemer_id": "the route's deelnemer identifier",
    "deelnemer_kind": "the route's deelnemer kind (zorgkantoor, zorgaanbieder, onderneming)",
    "name": "the route's name",
    "strict_input": "true when the route checks input strictly",
}
REQUEST_FACTS = {
    "method": "a REST request's method (GET, POST, ...)",
    "path": "a REST request's path as received (no query string)",
    "template": "the path template it matched (/voorzitter/uitkomsten/{id})",
    "params": "request.params.<name>: a named parameter of the path template",
    "query": "request.query.<name>: a query parameter",
    "headers": "request.headers.<name>: a request header (lower-case name)",
    "body": "request.body.<member path>: a member of the JSON body",
}
NAMESPACES = (
    "token",
    "token.claims",
    "args",
    "args_at",
    "operation",
    "route",
    "item",
    "extra",
    "request",
)


class UnknownFact(ValueError):
    """A fact path that names nothing; ``hint`` lists what exists."""

    def __init__(self, message: str, hint: str) -> None:
        super().__init__(message)
        self.hint = hint


def _dig(value: Any, parts: tuple[str, ...]) -> Any:
    for part in parts:
        if isinstance(value, (dict, Mapping)):
            value = value.get(part)
        else:
            return None
    return value


def _known(namespace: str, facts: Mapping[str, str]) -> str:
    return "known facts: " + ", ".join(f"{namespace}.{name}" for name in facts)


def compile_fact(path: str, *, in_item: bool) -> Getter:
    """The getter for *path*; raises UnknownFact (with a hint) when it names nothing."""
    head, _, rest = path.partition(".")
    if head == "args_at":
        return _args_at_getter(path, rest)
    parts = tuple(rest.split(".")) if rest else ()
    if any(not p for p in parts):
        raise UnknownFact(f"empty step in fact path {path!r}", "write steps as a.b.c")
    if head == "token":
        if parts[:1] == ("claims",):
            claim = parts[1:]
            if not claim:
                raise UnknownFact(
                    "token.claims needs a claim name", "e.g. token.claims.instantie_naam"
                )
            return lambda f, _i: _dig(f.token.claims, claim)
        if len(parts) != 1 or parts[0] not in TOKEN_FACTS:
            raise UnknownFact(
                f"unknown fact {path!r}", _known("token", TOKEN_FACTS) + ", token.claims.<claim>"
            )
        return _attr_getter("token", parts[0])
    if head == "operation":
        if len(parts) != 1 or parts[0] not in OPERATION_FACTS:
            raise UnknownFact(f"unknown fact {path!r}", _known("operation", OPERATION_FACTS))
        return _operation_getter(parts[0])
    if head == "route":
        if len(parts) != 1 or parts[0] not in ROUTE_FACTS:
            raise UnknownFact(f"unknown fact {path!r}", _known("route", ROUTE_FACTS))
        return _attr_getter("route", parts[0])
    if head == "args":
        if not parts:
            return lambda f, _i: f.operation.arguments
        return _args_getter(parts)
    if head == "extra":
        if not parts:
            raise UnknownFact("extra needs a name", "e.g. extra.method")
        return lambda f, _i: _dig(f.extra, parts)
    if head == "request":
        return _request_getter(path, parts)
    if head == "item":
        if not in_item:
            raise UnknownFact(
                f"{path!r} is only known inside every: or some:",
                "item is the current element of the list being checked",
            )
        if not parts:
            return lambda _f, i: i
        if len(parts) == 1:
            # item.subject, item.recordID: one dict lookup per list element, no walk.
            (key,) = parts

            def item1(_f: DecisionInput, i: Any) -> Any:
                if type(i) is dict or isinstance(i, Mapping):
                    return i.get(key)
                return None

            return item1
        return lambda _f, i: _dig(i, parts)
    raise UnknownFact(
        f"unknown fact {path!r}",
        "a fact starts with token., args., args_at., operation., route., item., extra. or request.",
    )


def _request_getter(path: str, parts: tuple[str, ...]) -> Getter:
    """``request.*``: the REST request's facts (missing on a GraphQL request)."""
    if not parts or parts[0] not in REQUEST_FACTS:
        raise UnknownFact(f"unknown fact {path!r}", _known("request", REQUEST_FACTS))
    name, rest = parts[0], parts[1:]
    if name in ("method", "path", "template"):
        if rest:
            raise UnknownFact(f"unknown fact {path!r}", f"request.{name} has no members")
        return lambda f, _i: getattr(f.operation.rest, name, None)
    if name != "body" and len(rest) != 1:
        raise UnknownFact(f"bad fact path {path!r}", f"name one {name} entry: request.{name}.x")
    if name == "headers":
        rest = (rest[0].lower(),)
    part = attrgetter(name)
    if len(rest) == 1:
        # request.params.id, request.query.overleg: one dict lookup, no walk.
        (key,) = rest

        def get1(f: DecisionInput, _i: Any) -> Any:
            rest_facts = f.operation.rest
            if rest_facts is None:
                return None
            value = part(rest_facts)
            return value.get(key) if isinstance(value, Mapping) else None

        return get1

    def get(f: DecisionInput, _i: Any) -> Any:
        rest_facts = f.operation.rest
        return None if rest_facts is None else _dig(part(rest_facts), rest)

    return get


def _args_at_getter(path: str, rest: str) -> Getter:
    """``args_at."bemiddeling.client.contactpersoon"``: the argument sets of every
    selection of that nested field (a list; missing when none is selected)."""
    field_path = rest[1:-1] if len(rest) > 2 and rest[0] == rest[-1] == '"' else ""
    if not field_path or '"' in field_path or any(not p for p in field_path.split(".")):
        raise UnknownFact(
            f"bad fact path {path!r}",
            'name a field path below the root field in quotes: args_at."client.contactpersoon"',
        )
    return lambda f, _i: f.operation.arguments_at.get(field_path)


ATTRIBUTES: WeakKeyDictionary[Getter, str] = WeakKeyDictionary()
"""Getters that read one attribute of the facts: the dotted attribute path
(``token.identifier``), for :func:`operator.attrgetter` (one C call instead of a Python
one where a getter runs per decision: :mod:`gateway.policy.fused`, the engine's key)."""


def _attr_getter(owner: str, name: str) -> Getter:
    getter = _attr_lambda(owner, name)
    ATTRIBUTES[getter] = f"{owner}.{name}"
    return getter


def _attr_lambda(owner: str, name: str) -> Getter:
    if owner == "token":
        if name == "scopes":
            return lambda f, _i: f.token.scopes
        return {
            "instantie_type": lambda f, _i: f.token.instantie_type,
            "identifier_type": lambda f, _i: f.token.identifier_type,
            "identifier": lambda f, _i: f.token.identifier,
            "client_id": lambda f, _i: f.token.client_id,
            "subject": lambda f, _i: f.token.subject,
            "actor": lambda f, _i: f.token.actor,
            "issuer": lambda f, _i: f.token.issuer,
        }[name]
    return {
        "path": lambda f, _i: f.route.path,
        "audience": lambda f, _i: f.route.audience,
        "deelnemer_id_type": lambda f, _i: f.route.deelnemer_id_type,
        "deelnemer_id": lambda f, _i: f.route.deelnemer_id,
        "deelnemer_kind": lambda f, _i: f.route.deelnemer_kind,
        "name": lambda f, _i: f.route.name,
        "strict_input": lambda f, _i: f.route.strict_input,
    }[name]


def _operation_getter(name: str) -> Getter:
    getter = _operation_lambda(name)
    attribute = {
        "type": "operation_type",
        "name": "operation_name",
        "field": "root_field",
        "alias": "root_alias",
        "selected": "selected_paths",
    }.get(name)
    if attribute is not None:
        ATTRIBUTES[getter] = "operation." + attribute
    return getter


def _operation_lambda(name: str) -> Getter:
    return {
        "type": lambda f, _i: f.operation.operation_type,
        "name": lambda f, _i: f.operation.operation_name,
        "field": lambda f, _i: f.operation.root_field,
        "display_name": lambda f, _i: f.operation.operation_name or f.operation.root_field,
        "alias": lambda f, _i: f.operation.root_alias,
        "selected": lambda f, _i: f.operation.selected_paths,
    }[name]


def _args_getter(parts: tuple[str, ...]) -> Getter:
    # Specialised for the usual one- and two-step paths (``notificatieInput.afzenderID``):
    # this runs a dozen times per decision, so no loop and no generic walk.
    if len(parts) == 1:
        (a,) = parts

        def get1(f: DecisionInput, _i: Any) -> Any:
            return f.operation.arguments.get(a)

        return get1
    if len(parts) == 2:
        a, b = parts

        def get2(f: DecisionInput, _i: Any) -> Any:
            v = f.operation.arguments.get(a)
            if type(v) is dict or isinstance(v, Mapping):
                return v.get(b)
            return None

        return get2
    if len(parts) == 3:
        # where.instelling.eq: the raadplegingen's filters.
        a, b, c = parts

        def get3(f: DecisionInput, _i: Any) -> Any:
            v = f.operation.arguments.get(a)
            if type(v) is dict or isinstance(v, Mapping):
                v = v.get(b)
                if type(v) is dict or isinstance(v, Mapping):
                    return v.get(c)
            return None

        return get3
    return lambda f, _i: _dig(f.operation.arguments, parts)


# --------------------------------------------------------------------------- symbolic


class Sym:
    """A fact's value as a query plan fixes it (:mod:`gateway.policy.partial`).

    ``read is None``: the value is ``value`` for every request of the plan (no variable in
    it). Otherwise ``read(facts, item)`` reads it per request: a variable's value (straight
    from ``operation.variables``), or the fact's own getter; ``value`` is then the plan's
    symbolic value (a where filter with :class:`~gateway.facts.Var` leaves) or
    :data:`UNKNOWN` (a token claim, a route fact: nothing the plan knows)."""

    __slots__ = ("key", "read", "value")

    def __init__(self, value: Any, read: Getter | None = None, key: Any = None) -> None:
        self.value = value
        self.read = read
        self.key: Any = ("value", value) if read is None else key
        """What ``read`` reads, as a hashable description (equal keys, equal reads):
        ``("var", name, rest)``, ``("get", id(getter))`` (``"item"``: reads the item),
        ``("value", v)``; None: not comparable."""


UNKNOWN: Any = object()
"""The symbolic value of a fact the plan does not fix."""

SymGetter = Callable[[OperationFacts, Any], Sym]
"""``(symbolic operation, symbolic item) -> Sym``: a fact path resolved against a plan."""


def has_var(value: Any) -> bool:
    """Whether a symbolic value holds a variable anywhere."""
    if type(value) is Var:
        return True
    if isinstance(value, Mapping):
        return any(has_var(v) for v in value.values())
    if isinstance(value, list | tuple):
        return any(has_var(v) for v in value)
    return False


def _var_reader(name: str, rest: tuple[str, ...]) -> Getter:
    """The value at *rest* below variable *name* of the request (as :func:`_dig`)."""
    if not rest:
        return lambda f, _i: f.operation.variables[name]
    return lambda f, _i: _dig(f.operation.variables[name], rest)


def _walk(value: Any, parts: tuple[str, ...], get: Getter, kind: str = "get") -> Sym:
    """:func:`_dig` over a symbolic value: a variable met on the way is read per request
    from there on; a value with variables inside is read by the fact's own getter."""
    for n, part in enumerate(parts):
        if type(value) is Var:
            rest = parts[n:]
            return Sym(UNKNOWN, _var_reader(value.name, rest), ("var", value.name, rest))
        if isinstance(value, (dict, Mapping)):
            value = value.get(part)
        else:
            return Sym(None)
    if type(value) is Var:
        return Sym(UNKNOWN, _var_reader(value.name, ()), ("var", value.name, ()))
    if has_var(value):
        return Sym(value, get, (kind, id(get)))
    return Sym(value)


def compile_symbolic(path: str, get: Getter, *, in_item: bool) -> SymGetter:
    """*path* (compiled to *get* by :func:`compile_fact`) against a plan's symbolic facts:
    ``args``, ``args_at``, ``item`` and ``operation`` are the plan's; the rest (token,
    route, extra, request) is read per request by *get*."""
    head, _, rest = path.partition(".")
    parts = tuple(rest.split(".")) if rest else ()
    if head == "args":
        return lambda op, _i: _walk(op.arguments, parts, get)
    if head == "args_at":
        field_path = rest[1:-1]
        return lambda op, _i: _walk(op.arguments_at.get(field_path), (), get)
    if head == "item" and in_item:
        return lambda _op, i: _walk(i, parts, get, "item")
    if head == "operation" and parts[0] in OPERATION_FACTS:
        values: dict[str, Callable[[OperationFacts], Any]] = {
            "type": lambda op: op.operation_type,
            "name": lambda op: op.operation_name,
            "field": lambda op: op.root_field,
            "display_name": lambda op: op.operation_name or op.root_field,
            "alias": lambda op: op.root_alias,
            "selected": lambda op: op.selected_paths,
        }
        value = values[parts[0]]
        return lambda op, _i: Sym(value(op))
    key = ("get", id(get))
    return lambda _op, _i: Sym(UNKNOWN, get, key)
