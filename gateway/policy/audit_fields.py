"""A policy's ``audit:`` block: the facts the audit trail records, under names the policy
chooses, compiled to one function.

The block maps names to fact paths (the same vocabulary as conditions), so what the
decision log and the audit trail call the sender, the recipient or the records, and which
input fields they come from, is data in the policy file, never Python::

    audit:
      event_type: args.notificatieInput.eventType
      afzender: [args.notificatieInput.afzenderIDType, args.notificatieInput.afzenderID]
      ontvanger: [args.notificatieInput.ontvangerIDType, args.notificatieInput.ontvangerID]
      subjects: {fact: args.notificatieInput.subjectList, each: item.subject}
      records: {fact: args.notificatieInput.subjectList, each: item.recordID}

A name is written as a fact (its text), a pair ``[TYPE, ID]`` (``TYPE:ID``) or ``{fact: LIST,
each: ITEM}`` (a list of texts). At load every path becomes a getter
(:mod:`gateway.policy.factpaths`); per request the compiled function only calls them. Only
text is recorded: a missing or wrongly typed value is None (or left out of the list);
nothing here raises.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from gateway.config.yamlsource import JsonPath
from gateway.facts import DecisionInput
from gateway.observability.events import DECISION_LOG_KEYS
from gateway.policy.conditions import CompileError, ConditionCompiler
from gateway.policy.decision import AuditValue, AuditValues
from gateway.policy.errors import LoadIssue
from gateway.policy.factpaths import ROUTE_FACTS, TOKEN_FACTS, Getter

NAME = re.compile(r"[a-z][a-z0-9_]*")
"""An audit name: a key of the decision log line, so lower case, digits and ``_``."""

Value = Callable[[DecisionInput], AuditValue]
"""Computes one audit value of a request."""


@dataclass(frozen=True, slots=True)
class AuditBlock:
    """One policy's compiled ``audit:`` block."""

    values: Mapping[str, Value]
    """Name -> how the request's value is found, in the block's order."""
    blank: AuditValues
    """Name -> its value when nothing is found: ``None`` for a text, ``()`` for a list."""
    paths: Mapping[str, Any]
    """Name -> its fact paths as written (a path, a pair of paths, or ``{fact, each}``)."""

    @property
    def reads_request(self) -> bool:
        """Whether a value may read more than the token and the route (``token.``,
        ``route.``): the request's input, its items, looked-up facts. Values from those two
        alone come from a small set (callers times routes)."""
        return not all(
            isinstance(p, str) and p.startswith(("token.", "route.")) for p in self._all_paths()
        )

    def _all_paths(self) -> list[Any]:
        """Every fact path the values read, in order (pairs and ``{fact, each}`` opened)."""
        return [
            p
            for v in self.paths.values()
            for p in (v if isinstance(v, list) else v.values() if isinstance(v, dict) else [v])
        ]

    def attributes(self) -> tuple[str, ...] | None:
        """The token and route attributes the values read (``token.identifier``, for
        :func:`operator.attrgetter`) when each path is one such attribute; else None."""
        paths = self._all_paths()
        known = {"token": TOKEN_FACTS, "route": ROUTE_FACTS}
        for p in paths:
            owner, _, name = p.partition(".") if isinstance(p, str) else ("", "", "")
            if name not in known.get(owner, ()) or "." in name:
                return None
        return tuple(dict.fromkeys(paths))

    def one_input(self) -> OneInput | None:
        """The block as fields of one input object (None: it reads elsewhere too), for
        :mod:`gateway.policy.fused` to write the values in place."""
        return one_input(self.paths)

    def extractor(self, names: AuditValues) -> Callable[[DecisionInput], AuditValues]:
        """The function giving a request's values under every name of *names* (the policy
        set's names, in its order), the names this block lacks without a value."""
        # The names this block lacks keep their blank: copied, then the block's filled in
        # (in place, so the set's order stays).
        blanks = dict(names)
        plan = tuple((name, value) for name, value in self.values.items() if name in names)

        def general(f: DecisionInput) -> AuditValues:
            out = blanks.copy()
            for name, value in plan:
                out[name] = value(f)
            return out

        return _one_input(self.paths, {**names, **self.blank}, general) or general


def _text(get: Getter) -> Value:
    def value(f: DecisionInput) -> AuditValue:
        v = get(f, None)
        return v if type(v) is str else None

    return value


def _pair(get_type: Getter, get_id: Getter) -> Value:
    def value(f: DecisionInput) -> AuditValue:
        kind, ident = get_type(f, None), get_id(f, None)
        return kind + ":" + ident if type(kind) is str and type(ident) is str else None

    return value


def _each(get_list: Getter, get_item: Getter) -> Value:
    def value(f: DecisionInput) -> AuditValue:
        items = get_list(f, None)
        if type(items) is not list and not isinstance(items, tuple):
            return ()
        # A plain loop: cheaper than a generator for the usual one or two subjects.
        out = []
        for x in items:
            v = get_item(f, x)
            if type(v) is str:
                out.append(v)
        return tuple(out)

    return value


def _compile_value(
    compiler: ConditionCompiler, value: Any, at: JsonPath
) -> tuple[Value, AuditValue]:
    """How one name's value is found, and its blank (the schema checked the shape)."""
    if isinstance(value, list):
        return _pair(
            compiler.fact_getter(value[0], (*at, 0), False),
            compiler.fact_getter(value[1], (*at, 1), False),
        ), None
    if isinstance(value, dict):
        return _each(
            compiler.fact_getter(value.get("fact"), (*at, "fact"), False),
            compiler.fact_getter(value.get("each"), (*at, "each"), True),
        ), ()
    return _text(compiler.fact_getter(value, at, False)), None


def compile_audit(
    compiler: ConditionCompiler, spec: Any, path: JsonPath, issues: list[LoadIssue]
) -> AuditBlock | None:
    """Compile the ``audit:`` block *spec* found at *path*.

    Every problem (a name that is no identifier or that the decision log writes itself, an
    unknown fact, ``item.`` outside ``each:``) is appended to *issues*; the result is None
    then.
    """
    if not isinstance(spec, dict):
        issues.append(
            compiler.error(
                path, "audit: takes a mapping of names to facts", "e.g. afzender: token.identifier"
            ).issue
        )
        return None
    before = len(issues)
    values: dict[str, Value] = {}
    blank: dict[str, AuditValue] = {}
    paths: dict[str, Any] = {}
    for name, value in spec.items():
        at = (*path, name)
        try:
            if not isinstance(name, str) or not NAME.fullmatch(name):
                raise compiler.error(
                    at,
                    f"audit name {name!r} is not valid",
                    "lower case letters, digits and _, e.g. afzender",
                    key=True,
                )
            if name in DECISION_LOG_KEYS:
                raise compiler.error(
                    at,
                    f"audit name {name!r} is a key the decision log writes itself",
                    "choose another name",
                    key=True,
                )
            values[name], blank[name] = _compile_value(compiler, value, at)
            paths[name] = value
        except CompileError as exc:
            issues.append(exc.issue)
    if len(issues) != before:
        return None
    return AuditBlock(values, blank, paths)


def _field(path: Any, head: str) -> str | None:
    """``args.<head>.<field>`` -> the field (None for any other fact path)."""
    steps = path.split(".") if isinstance(path, str) else ()
    return steps[2] if len(steps) == 3 and steps[:2] == ["args", head] else None


@dataclass(frozen=True, slots=True)
class OneInput:
    """An ``audit:`` block whose every fact is a field of one input object
    (``args.<head>.<field>``, items ``item.<field>``): ``texts`` ``(name, field)``, ``pairs``
    ``(name, type field, id field)``, ``lists`` ``(name, list field, item field)``."""

    head: str
    texts: tuple[tuple[str, str], ...]
    pairs: tuple[tuple[str, str, str], ...]
    lists: tuple[tuple[str, str, str], ...]

    def by_list(self) -> dict[str, list[tuple[str, str]]]:
        """``list field -> [(name, item field)]``: the lists read from one field
        (``subjects`` and ``records`` both from ``subjectList``) are one pass over it."""
        found: dict[str, list[tuple[str, str]]] = {}
        for name, list_key, item_key in self.lists:
            found.setdefault(list_key, []).append((name, item_key))
        return found


def one_input(paths: Mapping[str, Any]) -> OneInput | None:
    """The block's facts as fields of one input object, when they are (None otherwise)."""
    firsts = [
        v[0] if isinstance(v, list) else v.get("fact") if isinstance(v, dict) else v
        for v in paths.values()
    ]
    heads = {p.split(".")[1] for p in firsts if isinstance(p, str) and p.count(".") == 2}
    if len(heads) != 1:
        return None
    (head,) = heads
    texts: list[tuple[str, Any]] = []
    pairs: list[tuple[str, Any, Any]] = []
    lists: list[tuple[str, Any, Any]] = []
    for name, v in paths.items():
        if isinstance(v, list):
            pairs.append((name, _field(v[0], head), _field(v[1], head)))
        elif isinstance(v, dict):
            item = str(v["each"]).split(".")
            lists.append(
                (
                    name,
                    _field(v["fact"], head),
                    item[1] if len(item) == 2 and item[0] == "item" else None,
                )
            )
        else:
            texts.append((name, _field(v, head)))
    if None in {k for entry in (*texts, *pairs, *lists) for k in entry}:
        return None
    return OneInput(head, tuple(texts), tuple(pairs), tuple(lists))


def _one_input(
    paths: Mapping[str, Any],
    blank: AuditValues,
    general: Callable[[DecisionInput], AuditValues],
) -> Callable[[DecisionInput], AuditValues] | None:
    """The fast extractor when every fact is a field of one input object (``args.<input>.<field>``,
    items ``item.<field>``), as in the iWlz notificatie and melding policies; None otherwise.

    Same answers as *general* (the tests decide both ways), but the input object is looked
    up once and each value is one dict lookup instead of a getter call: the audit values
    are built for every decided request.
    """
    spec = one_input(paths)
    if spec is None:
        return None
    return _generated(spec, dict(blank), general)


def _generated(
    spec: OneInput,
    prefilled: dict[str, AuditValue],
    general: Callable[[DecisionInput], AuditValues],
) -> Callable[[DecisionInput], AuditValues]:
    """The one-input extractor as straight-line code: each value one ``get`` and its type
    test, and the lists read from one field (``subjects`` and ``records`` both from
    ``subjectList``) collected in one pass over its items. Names and fields enter the source
    as ``repr`` literals (any text is safe there). A list's value: the text values under the
    item field of the mappings in it, ``()`` when it is no list."""
    head = spec.head
    lines = [
        "def extract(f):",
        f"    values = f.operation.arguments.get({head!r})",
        "    if type(values) is not dict:",
        "        return general(f)  # missing or not a plain dict: every other shape",
        "    out = prefilled.copy()  # every name of the set, in order, without a value",
        "    get = values.get",
    ]
    for name, key in spec.texts:
        lines += [f"    v = get({key!r})", f"    if type(v) is str: out[{name!r}] = v"]
    for name, type_key, id_key in spec.pairs:
        lines += [
            f"    t, i = get({type_key!r}), get({id_key!r})",
            f"    if type(t) is str and type(i) is str: out[{name!r}] = f'{{t}}:{{i}}'",
        ]
    for list_key, wanted in spec.by_list().items():
        found = [f"a{n}" for n in range(len(wanted))]
        lines += [
            f"    items = get({list_key!r})",
            "    if type(items) is list or isinstance(items, tuple):",
            *(f"        {a} = []" for a in found),
            "        for x in items:",
            "            if type(x) is dict or isinstance(x, Mapping):",
        ]
        for a, (_, item_key) in zip(found, wanted, strict=True):
            lines += [
                f"                v = x.get({item_key!r})",
                f"                if type(v) is str: {a}.append(v)",
            ]
        lines += [
            f"        out[{name!r}] = tuple({a})"
            for a, (name, _) in zip(found, wanted, strict=True)
        ]
        lines += ["    else:", *(f"        out[{name!r}] = ()" for name, _ in wanted)]
    lines.append("    return out")
    namespace: dict[str, Any] = {"general": general, "prefilled": prefilled, "Mapping": Mapping}
    exec(compile("\n".join(lines), f"<audit extractor {head}>", "exec"), namespace)
    extract: Callable[[DecisionInput], AuditValues] = namespace["extract"]
    return extract
