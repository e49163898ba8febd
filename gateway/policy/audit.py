"""A policy's ``audit:`` block: which facts the audit trail records, compiled to one function.

The block names fact paths (the same vocabulary as conditions), so which input fields of
the iWlz schema are the sender, the recipient, the event type and the records is data in
the policy file, never Python::

    audit:
      event_type: args.notificatieInput.eventType
      afzender: [args.notificatieInput.afzenderIDType, args.notificatieInput.afzenderID]
      ontvanger: [args.notificatieInput.ontvangerIDType, args.notificatieInput.ontvangerID]
      subjects: {fact: args.notificatieInput.subjectList, each: item.subject}
      records: {fact: args.notificatieInput.subjectList, each: item.recordID}

At load every path becomes a getter (:mod:`gateway.policy.factpaths`); per request the
compiled :data:`AuditExtractor` only calls them. Only text values are recorded: a missing
or wrongly typed value leaves its field None (or out of the tuple); nothing here raises.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from gateway.config.yamlsource import JsonPath
from gateway.facts import DecisionInput
from gateway.policy.conditions import CompileError, ConditionCompiler
from gateway.policy.decision import AuditFacts
from gateway.policy.errors import LoadIssue
from gateway.policy.factpaths import Getter

AuditExtractor = Callable[[DecisionInput], AuditFacts]
"""Builds the :class:`AuditFacts` of one request."""

AUDIT_FIELDS = ("event_type", "afzender", "ontvanger", "subjects", "records")


def _missing(_f: DecisionInput, _i: Any) -> None:
    return None


def _texts(f: DecisionInput, items: Any, get_item: Getter) -> tuple[str, ...]:
    """The text values *get_item* finds in the elements of *items* (a list)."""
    if type(items) is not list and not isinstance(items, tuple):
        return ()
    # A plain loop: cheaper than a generator for the usual one or two subjects.
    out = []
    for x in items:
        v = get_item(f, x)
        if type(v) is str:
            out.append(v)
    return tuple(out)


def compile_audit(compiler: ConditionCompiler, spec: Any, path: JsonPath,
                  issues: list[LoadIssue]) -> AuditExtractor | None:
    """Compile the ``audit:`` block *spec* found at *path*.

    Every problem (an unknown fact, ``item.`` outside ``each:``, a wrong shape) is appended
    to *issues*; the result is None then.
    """
    if not isinstance(spec, dict):
        issues.append(compiler.error(path, "audit: takes a mapping",
                                     "keys: " + ", ".join(AUDIT_FIELDS)).issue)
        return None
    before = len(issues)
    getters: dict[str, Getter] = {}
    paths: dict[str, str] = {}

    def fact(slot: str, value: Any, at: JsonPath, in_item: bool) -> None:
        getters[slot] = compiler.fact_getter(value, at, in_item)
        paths[slot] = value

    for name, value in spec.items():
        at = (*path, name)
        try:
            if name == "event_type":
                fact(name, value, at, False)
            elif name in ("afzender", "ontvanger"):
                if not isinstance(value, list) or len(value) != 2:
                    raise compiler.error(at, f"{name}: takes two facts: [identifier type, "
                                         "identifier]",
                                         f"e.g. {name}: [args.input.{name}IDType, "
                                         f"args.input.{name}ID]")
                fact(name + "_type", value[0], (*at, 0), False)
                fact(name + "_id", value[1], (*at, 1), False)
            elif name in ("subjects", "records"):
                if not isinstance(value, dict) or set(value) != {"fact", "each"}:
                    raise compiler.error(at, f"{name}: takes fact: (a list) and each: (a fact "
                                         "of one item)",
                                         f"e.g. {name}: {{fact: args.input.subjectList, "
                                         "each: item.subject}")
                fact(name + "_list", value["fact"], (*at, "fact"), False)
                fact(name + "_item", value["each"], (*at, "each"), True)
            else:
                raise compiler.error(at, f"unknown audit field {name!r}",
                                     "audit fields: " + ", ".join(AUDIT_FIELDS), key=True)
        except CompileError as exc:
            issues.append(exc.issue)
    if len(issues) != before:
        return None
    general = _general(getters)
    return _one_input(paths, general) or general


def _general(getters: dict[str, Getter]) -> AuditExtractor:
    """The extractor for any facts: every value through its compiled getter."""
    # Absent fields read a getter that finds nothing: one code path, no branches per field.
    def pick(slot: str) -> Getter:
        return getters.get(slot, _missing)

    event_type = pick("event_type")
    afzender_type = pick("afzender_type")
    afzender_id = pick("afzender_id")
    ontvanger_type = pick("ontvanger_type")
    ontvanger_id = pick("ontvanger_id")
    subject_list = pick("subjects_list")
    subject_item = pick("subjects_item")
    record_list = pick("records_list")
    record_item = pick("records_item")

    # One flat function per policy: this runs for every request the policy decides, so no
    # helper per field and the type checks inline (only text is recorded).
    def extract(f: DecisionInput) -> AuditFacts:
        kind = event_type(f, None)
        a_type = afzender_type(f, None)
        a_id = afzender_id(f, None)
        o_type = ontvanger_type(f, None)
        o_id = ontvanger_id(f, None)
        return AuditFacts(
            kind if type(kind) is str else None,
            a_type + ":" + a_id if type(a_type) is str and type(a_id) is str else None,
            o_type + ":" + o_id if type(o_type) is str and type(o_id) is str else None,
            _texts(f, subject_list(f, None), subject_item),
            _texts(f, record_list(f, None), record_item),
        )

    return extract


_ABSENT = object()
"""A dict key no input has: what an absent audit field looks up."""


def _keyed(items: Any, key: Any) -> tuple[str, ...]:
    if type(items) is not list and not isinstance(items, tuple):
        return ()
    out = []
    for x in items:
        if type(x) is dict or isinstance(x, Mapping):
            v = x.get(key)
            if type(v) is str:
                out.append(v)
    return tuple(out)


def _keyed2(items: Any, key1: Any, key2: Any) -> tuple[tuple[str, ...], tuple[str, ...]]:
    if type(items) is not list and not isinstance(items, tuple):
        return (), ()
    out1 = []
    out2 = []
    for x in items:
        if type(x) is dict or isinstance(x, Mapping):
            v = x.get(key1)
            if type(v) is str:
                out1.append(v)
            v = x.get(key2)
            if type(v) is str:
                out2.append(v)
    return tuple(out1), tuple(out2)


def _one_input(paths: dict[str, str], general: AuditExtractor) -> AuditExtractor | None:
    """The fast extractor when every fact is a field of one input object (``args.<input>.<field>``,
    items ``item.<field>``), as in the iWlz policies; None otherwise.

    Same answers as *general* (a test checks it), but the input object is looked up once
    and each value is one dict lookup instead of a getter call.
    """
    heads: set[str] = set()
    keys: dict[str, Any] = {}
    for slot, fact_path in paths.items():
        steps = fact_path.split(".")
        if slot.endswith("_item"):
            if len(steps) != 2 or steps[0] != "item":
                return None
        elif len(steps) != 3 or steps[0] != "args":
            return None
        else:
            heads.add(steps[1])
        keys[slot] = steps[-1]
    if len(heads) != 1:
        return None
    (head,) = heads
    k_kind, k_a_type, k_a_id, k_o_type, k_o_id, k_s_list, k_s_item, k_r_list, k_r_item = (
        keys.get(slot, _ABSENT) for slot in (
            "event_type", "afzender_type", "afzender_id", "ontvanger_type", "ontvanger_id",
            "subjects_list", "subjects_item", "records_list", "records_item"))

    def extract(f: DecisionInput) -> AuditFacts:
        values = f.operation.arguments.get(head)
        if type(values) is not dict:
            # Not a plain dict (or missing): the general path handles every other shape.
            return general(f)
        kind = values.get(k_kind)
        a_type = values.get(k_a_type)
        a_id = values.get(k_a_id)
        o_type = values.get(k_o_type)
        o_id = values.get(k_o_id)
        if k_s_list == k_r_list:
            # subjects and records from the same list (subjectList): one pass.
            subjects, records = _keyed2(values.get(k_s_list), k_s_item, k_r_item)
        else:
            subjects = _keyed(values.get(k_s_list), k_s_item)
            records = _keyed(values.get(k_r_list), k_r_item)
        return AuditFacts(
            kind if type(kind) is str else None,
            a_type + ":" + a_id if type(a_type) is str and type(a_id) is str else None,
            o_type + ":" + o_id if type(o_type) is str and type(o_id) is str else None,
            subjects,
            records,
        )

    return extract
