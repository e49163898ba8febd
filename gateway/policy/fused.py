"""The residual checks of one query plan written as one Python function.

What the per-plan partial evaluation leaves of a policy's checks
(``CompiledPolicy._residual``) is a list of ``(when, require, check)`` tests, each a small
tree of closures (``all:`` of a variable's format, an ``any:`` of two tests, a date
window's lower and upper bound). Calling them one by one costs a Python call per node.
:func:`fuse` writes the whole list as the body of one function, from what each test
computes (:data:`gateway.policy.conditions.SHAPES` and ``CHECK_FORMS``): the checks in
order, ``all:`` as consecutive statements, ``any:``/``not:`` as expressions, the value
checks of ``present:``, ``in:``, ``equals:``, ``pattern:`` and ``format:`` and a ``row:``'s
lookup in place, a date
window's bounds unrolled over the plan's own dates. It answers the index of the first
check that refuses, or -1: the same check (so the same rule and reason) as the loop over
the tests finds. A test it has no form for is called as it is.

Nothing of the policy's domain is written into the source: variable names, list values,
literals, getters and checks are constants of the function's namespace (bound as
defaults, named ``_k0``, ``_k1``, ...); the source holds only their names, Python
operators and the engine's own helpers (``tests/policy/test_fused.py`` parses it to check).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from functools import lru_cache
from typing import Any

from gateway.codegen import SourceWriter
from gateway.facts import DecisionInput, Var
from gateway.policy.audit_fields import OneInput
from gateway.policy.conditions import (
    CHECK_FORMS,
    ITEM_FIELD,
    SHAPES,
    _date_text,
    _date_time_text,
    _shifted_day,
)
from gateway.policy.decision import _DECISION_FIELDS, AuditValues, Decision, _Filling, with_audit
from gateway.policy.factpaths import ATTRIBUTES, has_var

Run = Callable[[DecisionInput], Any]
"""``facts -> index of the first refusing check``; when every check passed, the allowed
:class:`Decision` (audit values in) or -1 (the caller adds them)."""
COUNTED = (list, tuple)
"""What ``count:`` counts (conditions.py's check)."""
ITEM_KINDS = (list, tuple, frozenset, set)
"""What ``every:``/``some:`` loop over (conditions.py's ``kinds``)."""
_TEMP = re.compile(r"_t\d+")
"""A temporary's name (a variable's value read at the top is one)."""
KNOWN_SIZE = 4096
"""Dates and date-times remembered valid, and shifted days, at most (then started anew)."""
_dates: set[str] = set()
"""ISO dates found valid: a membership test in the source before :func:`_date_text`'s
call (the same dates recur in every request of a window)."""
_date_times: set[str] = set()
"""RFC 3339 date-times found valid, as ``_dates``."""


def _remembering(valid: Callable[[str], bool], known: set[str]) -> Callable[[str], bool]:
    """*valid*, adding each value it accepts to *known* (started anew at KNOWN_SIZE)."""

    def check(value: str) -> bool:
        if not valid(value):
            return False
        if len(known) >= KNOWN_SIZE:
            known.clear()
        known.add(value)
        return True

    return check


_date_ok = _remembering(_date_text, _dates)
""":func:`_date_text`, remembering a valid date in ``_dates``."""
_date_time_ok = _remembering(_date_time_text, _date_times)
""":func:`_date_time_text`, remembering a valid date-time in ``_date_times``."""


@lru_cache(maxsize=64)
def _shifts(years: int, month_day: str | None) -> tuple[dict[str, str], Callable[[str], str]]:
    """The days shifted by *years* to *month_day* so far (by valid date), and the function
    that computes and remembers one (:func:`_shifted_day`)."""
    known: dict[str, str] = {}

    def shift(value: str) -> str:
        day = _shifted_day(value, years, month_day)
        if len(known) >= KNOWN_SIZE:
            known.clear()
        known[value] = day
        return day

    return known, shift


HELPERS = {
    "_dates": _dates,
    "_date_ok": _date_ok,
    "_date_times": _date_times,
    "_date_time_ok": _date_time_ok,
    "_new": object.__new__,
    "_Filling": _Filling,
    "_with_audit": with_audit,
    "id": id,
    "isinstance": isinstance,
    "tuple": tuple,
    "dict": dict,
    "list": list,
    "Mapping": Mapping,
}
"""The engine's own helpers the written source uses by name."""


Allowed = tuple[Any, ...] | None
"""How the function answers when every check passed (:meth:`CompiledPolicy.finish`):
``("decision", d)`` the decision itself (no audit values); ``("audit", d, spec, names,
extract)`` *d* carrying the values of a one-input ``audit:`` block (*spec*, under the
set's *names* in order; *extract* when the input is no plain dict); ``("extract", d,
extract)`` *d* carrying *extract*'s values; None: -1 (the caller adds them)."""


def fuse(
    plan: Sequence[tuple[Any, Any, Any]],
    allowed: Allowed = None,
    arguments: Mapping[str, Any] | None = None,
) -> tuple[Run, str]:
    """*plan* (``(when, require, check)``: residual tests, ``when`` None for none) as one
    function, and its source (for tests and ``policy explain`` debugging). *arguments*:
    the query plan's symbolic arguments (:class:`~gateway.facts.Var` where a variable's
    value goes), which the audit values are read by where they fix them."""
    writer = _Writer()
    writer.arguments = arguments
    for n, (when, require, _check) in enumerate(plan):
        indent = "    "
        if when is not None:
            writer.line(indent, f"if {writer.expr(when)}:")
            indent += "    "
        writer.require(require, n, indent)
    writer.allowed(allowed)
    return writer.build()


class _Writer(SourceWriter):
    """Builds the residual function's body, its constants and temporaries."""

    def __init__(self) -> None:
        super().__init__()
        self._vars: dict[str, str] = {}
        """Variable name -> the temporary its value is read into once, at the top (every
        variable a residual reads was sent: the plan's residual is per set of names)."""
        self.item = "None"
        """What the getters called get as their item: a loop's item inside one."""
        self.arguments: Mapping[str, Any] | None = None
        """The query plan's symbolic arguments (see :func:`fuse`)."""
        self._fields: dict[str, str] | None = None
        """Inside a loop over a list's items: item field -> the temporary it is read into."""
        self._attributes: dict[str, str] = {}
        """Attribute path of the facts (``token.identifier``) -> the temporary it is read
        into once, at the top (slots of frozen dataclasses: a read never fails)."""

    def build(self) -> tuple[Run, str]:
        names = [*self.consts, *HELPERS]
        params = "".join(f", {n}={n}" for n in names)
        reads = [f"    {t} = v[{self.const(name)}]" for name, t in self._vars.items()]
        reads += [f"    {t} = f.{path}" for path, t in self._attributes.items()]
        names = [*self.consts, *HELPERS]
        params = "".join(f", {n}={n}" for n in names)
        src = "\n".join(
            [
                f"def residual(f{params}):",
                "    v = f.operation.variables",
                *reads,
                *self.body,
                "",
            ]
        )
        namespace: dict[str, Any] = {**self.consts, **HELPERS}
        exec(compile(src, "<fused residual>", "exec"), namespace)
        run: Run = namespace["residual"]
        return run, src

    def var(self, name: str) -> str:
        """The temporary holding variable *name*'s value (read once, at the top); in a loop
        over a list's items, an item's field (ITEM_FIELD) read per item."""
        if name.startswith(ITEM_FIELD):
            assert self._fields is not None, "an item's field outside the loop over items"
            key = name[len(ITEM_FIELD) :]
            found = self._fields.get(key)
            if found is None:
                found = self._fields[key] = self.temp()
            return found
        found = self._vars.get(name)
        if found is None:
            found = self._vars[name] = self.temp()
        return found

    # -- the answer when every check passed ----------------------------------------------

    def allowed(self, allowed: Allowed) -> None:
        """The function's last statements: what it answers when no check refused."""
        if allowed is None:
            self.line("    ", "return -1")
            return
        kind, decision = allowed[0], allowed[1]
        if kind == "decision":
            self.line("    ", f"return {self.const(decision)}")
        elif kind == "extract":
            extract = self.const(allowed[2])
            self.line("    ", f"return _with_audit({self.const(decision)}, {extract}(f))")
        else:
            _kind, _decision, spec, names, extract = allowed
            self._audit(spec, names, extract)
            self._decision(decision)

    def _audit(self, spec: OneInput, names: AuditValues, extract: Any) -> None:
        """``_t0``: the audit values of a one-input block (as audit_fields' generated
        extractor finds them), under every name of *names* in order; *extract*'s when the
        input is no plain dict. Where the plan's symbolic input (``self.arguments``) fixes
        a field (a variable's own value, or a value without variables), it is read from
        there: the same value the request's input holds (built by the same templates)."""
        i = ""  # the plan fixes the fields: straight-line code
        out = "_t0"
        symbolic = self.arguments.get(spec.head) if self.arguments is not None else None
        read = self._planned(symbolic, spec) if type(symbolic) is dict else None
        if read is None:  # read from the request's input object, when it is a dict
            i = "    "
            values, get = self.temp(), self.temp()
            self.line(i, f"{values} = f.operation.arguments.get({self.const(spec.head)})")
            self.line(i, f"if type({values}) is dict:")
            self.line(i, f"    {get} = {values}.get")

            def read(key: str) -> str:
                return f"{get}({self.const(key)})"

        found: dict[str, str] = {}
        for name, key in spec.texts:
            x = found[name] = self.temp()
            self.line(i, f"    {x} = {read(key)}")
            self.line(i, f"    if type({x}) is not str: {x} = None")
        for name, type_key, id_key in spec.pairs:
            x = found[name] = self.temp()
            t, d = self.temp(), self.temp()
            self.line(i, f"    {t} = {read(type_key)}")
            self.line(i, f"    {d} = {read(id_key)}")
            both = f"type({t}) is str and type({d}) is str"
            self.line(i, f"    {x} = f'{{{t}}}:{{{d}}}' if {both} else None")
        for list_key, wanted in spec.by_list().items():
            items, x, y = self.temp(), self.temp(), self.temp()
            found.update((name, self.temp()) for name, _ in wanted)
            self.line(i, f"    {items} = {read(list_key)}")
            self.line(i, f"    if type({items}) is list or isinstance({items}, tuple):")
            for name, _ in wanted:
                self.line(i, f"        {found[name]} = []")
            self.line(i, f"        for {x} in {items}:")
            self.line(i, f"            if type({x}) is dict or isinstance({x}, Mapping):")
            for name, item_key in wanted:
                self.line(i, f"                {y} = {x}.get({self.const(item_key)})")
                self.line(i, f"                if type({y}) is str: {found[name]}.append({y})")
            for name, _ in wanted:
                self.line(i, f"        {found[name]} = tuple({found[name]})")
            self.line(i, "    else:")
            for name, _ in wanted:
                self.line(i, f"        {found[name]} = ()")
        pairs = ", ".join(
            f"{self.const(name)}: {found[name] if name in found else self.const(blank)}"
            for name, blank in names.items()
        )
        self.line(i, f"    {out} = {{{pairs}}}")
        if i:
            self.line(i, "else:")
            self.line(i, f"    {out} = {self.const(extract)}(f)")

    def _planned(self, symbolic: dict[str, Any], spec: OneInput) -> Callable[[str], str] | None:
        """How each field the block reads is found from the plan's symbolic input: a
        variable's temporary, or a constant (absent: None); None when a field holds
        variables deeper inside (read from the request then)."""
        keys = [
            *(k for _n, k in spec.texts),
            *(k for _n, a, b in spec.pairs for k in (a, b)),
            *(k for _n, k, _i in spec.lists),
        ]
        if any(type(symbolic.get(k)) is not Var and has_var(symbolic.get(k)) for k in keys):
            return None

        def read(key: str) -> str:
            value = symbolic.get(key)
            return self.var(value.name) if type(value) is Var else self.const(value)

        return read

    def _decision(self, decision: Decision) -> None:
        """Return *decision* carrying ``_t0`` (as :func:`with_audit` builds it, in place)."""
        d = self.temp()
        self.line("    ", f"{d} = _new(_Filling)")
        for name in _DECISION_FIELDS:
            value = "_t0" if name == "audit" else self.const(getattr(decision, name))
            self.line("    ", f"{d}.{name} = {value}")
        self.line("    ", f"{d}.__class__ = {self.const(Decision)}")
        self.line("    ", f"return {d}")

    # -- statements: a require that refuses with check n ---------------------------------

    def require(self, test: Any, n: int, indent: str) -> None:
        """Statements that return *n* unless *test* holds (an ``all:`` part by part)."""
        if test is True:
            return
        if test is False:
            self.line(indent, f"return {n}")
            return
        shape = SHAPES.get(test)
        if shape is not None and shape[0] == "all":
            for part in shape[1]:
                self.require(part, n, indent)
        elif shape is not None and shape[0] == "lower":
            self._lower(shape[1], shape[2], n, indent)
        elif shape is not None and shape[0] == "upper":
            self._upper(shape[1], shape[2], n, indent)
        elif shape is not None and shape[0] in ("every", "some") and self.item == "None":
            self._items(shape[0], shape[1], shape[2], shape[3], n, indent)
        else:
            self.line(indent, f"if not {self.expr(test)}:")
            self.line(indent, f"    return {n}")

    def _items(
        self, word: str, source: Any, inner: Any, per_item: Any, n: int, indent: str
    ) -> None:
        """``every``/``some`` over a list (conditions.py's ``over``) as a loop in place:
        the inner condition's residual for one item (*per_item*, its fields read from the
        item) written in place, else the inner test called per item."""
        got, items = self._bound(self._operand(source))
        x = self.temp()
        if got != items:
            self.line(indent, f"{items} = {self._operand(source)}")
        self.line(indent, f"if not isinstance({items}, {self.const(ITEM_KINDS)}):")
        self.line(indent, f"    return {n}")
        self.line(indent, f"for {x} in {items}:")
        test = f"{self.const(inner)}(f, {x})"
        if per_item is not None and type(per_item) is not bool:
            self.item, self._fields = x, {}
            try:
                test = self.expr(per_item)
            finally:
                fields, self.item, self._fields = self._fields, "None", None
            mapping = f"type({x}) is dict or isinstance({x}, Mapping)"
            for key, t in fields.items():  # conditions.py's item getter of one field
                self.line(indent, f"    {t} = {x}.get({self.const(key)}) if {mapping} else None")
        if word == "every":
            self.line(indent, f"    if not {test}:")
            self.line(indent, f"        return {n}")
            return
        self.line(indent, f"    if {test}:")
        self.line(indent, "        break")
        self.line(indent, "else:")
        self.line(indent, f"    return {n}")

    def _lower(self, floors: Any, alternatives: Any, n: int, indent: str) -> None:
        """``_lower`` of conditions.py unrolled: the window's first day (the earliest valid
        floor date, a date-time's day), then one list of alternatives whose dates are each
        ``{eq: null}`` or a date on or after it."""
        first = self.temp()
        self.line(indent, f"{first} = None")
        for name, read, value in floors:
            x = self.temp()
            self.line(indent, f"{x} = {self._source(name, read, value)}")
            self.line(indent, f"if type({x}) is str:")
            self.line(indent, f"    if len({x}) == 10 and {_date(x)}:")
            self.line(indent, "        pass")
            self.line(indent, f"    elif {_date_time(x)}:")
            self.line(indent, f"        {x} = {x}[:10]")
            self.line(indent, "    else:")
            self.line(indent, f"        {x} = None")
            self.line(indent, f"    if {x} is not None and ({first} is None or {x} < {first}):")
            self.line(indent, f"        {first} = {x}")
        lists = []
        for dates in alternatives:
            parts = []
            for name, value in dates:
                if name is None:  # a literal date (checked at load)
                    k = self.const(value)
                    parts.append(f"({first} is not None and not {k} < {first})")
                    continue
                y = self.temp()
                date = (
                    f"type({y}) is str and len({y}) == 10 and {_date(y)} "
                    f"and {first} is not None and not {y} < {first}"
                )
                got = f"({y} := {self.var(name)})"
                if value:  # {eq: $x}: null passes
                    parts.append(f"({got} is None or ({date}))")
                else:
                    parts.append(f"({got} is not None and {date})")
            lists.append("(" + " and ".join(parts) + ")" if parts else "True")
        self.line(indent, f"if not ({' or '.join(lists)}):")
        self.line(indent, f"    return {n}")

    def _upper(self, ceilings: Any, dates: Any, n: int, indent: str) -> None:
        """``_upper`` of conditions.py unrolled: the window's last day (the latest of the
        ``until:`` days), then, when there is one, a ``start`` bound that is a date not
        after it."""
        last = self.temp()
        self.line(indent, f"{last} = None")
        for name, read, day, years, month_day in ceilings:
            x = self.temp()
            if name is not None:
                self.line(indent, f"{x} = {self.var(name)}")
                self.line(indent, f"if type({x}) is str and len({x}) == 10 and {_date(x)}:")
                if years or month_day is not None:
                    known, shift = (self.const(c) for c in _shifts(years, month_day))
                    self.line(indent, f"    {x} = {known}[{x}] if {x} in {known} else {shift}({x})")
                self.line(indent, f"    if {x} is not None and ({last} is None or {x} > {last}):")
                self.line(indent, f"        {last} = {x}")
                continue
            self.line(indent, f"{x} = {self._source(None, read, day)}")
            self.line(indent, f"if {x} is not None and ({last} is None or {x} > {last}):")
            self.line(indent, f"    {last} = {x}")
        bounds = []
        for name, value in dates:
            y = self.temp()
            got = f"({y} := {self._source(name, None, value)})"
            bounds.append(
                f"(type({got}) is str and len({y}) == 10 and {y} <= {last} and {_date(y)})"
            )
        self.line(indent, f"if {last} is not None and not ({' or '.join(bounds) or 'False'}):")
        self.line(indent, f"    return {n}")

    # -- expressions ---------------------------------------------------------------------

    def _source(self, name: Any, read: Any, value: Any) -> str:
        """A value as conditions.py's ``_direct`` gives it: a variable's own value, a
        getter's answer, or a constant."""
        if name is not None:
            return self.var(name)
        if read is not None:
            return self._read(read)
        return self.const(value)

    def _operand(self, spec: tuple[str, Any]) -> str:
        kind, what = spec
        if kind == "var":
            return self.var(what)
        if kind == "read":
            return self._read(what)
        return self.const(what)

    def _read(self, getter: Any) -> str:
        """A getter's answer on the request's facts (an attribute: read in place)."""
        attribute = ATTRIBUTES.get(getter)
        if attribute is not None:  # the facts' fixed layout: read once, at the top
            found = self._attributes.get(attribute)
            if found is None:
                found = self._attributes[attribute] = self.temp()
            return found
        return f"{self.const(getter)}(f, {self.item})"

    def expr(self, test: Any) -> str:
        """*test* as one expression over ``f`` and ``v`` (truthy when it holds)."""
        if test is True or test is False:
            return str(test)
        shape = SHAPES.get(test)
        if shape is None or shape[0] in ("lower", "upper"):
            return f"{self.const(test)}(f, {self.item})"
        kind = shape[0]
        if kind == "memo":  # an answer remembered per list (by identity), else the test
            x, hit = self.temp(), self.temp()
            got = f"({hit} := {self.const(shape[2])}.get(id(({x} := {self._read(shape[1])}))))"
            return (
                f"({hit}[1] if {got} is not None and {hit}[0] is {x} "
                f"else {self.const(test)}(f, {self.item}))"
            )
        if kind in ("every", "some"):  # a loop: written as such in a require only
            return f"{self.const(test)}(f, {self.item})"
        if kind == "all":
            return "(" + " and ".join(self.expr(t) for t in shape[1]) + ")"
        if kind == "any":
            return "(" + " or ".join(self.expr(t) for t in shape[1]) + ")"
        if kind == "not":
            return f"(not {self.expr(shape[1])})"
        if kind == "unary":
            return self._check(shape[1], self._operand(shape[2]))
        if kind == "row":  # each open column a text, found column by column in the rows
            bound = [self._bound(self._operand(source)) for source in shape[1]]
            names = [x for _got, x in bound]
            texts = " and ".join(f"type({got}) is str" for got, _x in bound)
            level = self.temp()
            steps = [f"({level} := {self.const(_nested(shape[2]))}.get({names[0]})) is not None"]
            steps += [f"({level} := {level}.get({x})) is not None" for x in names[1:-1]]
            if len(names) > 1:
                steps.append(f"{names[-1]} in {level}")
            return f"({texts} and {' and '.join(steps)})"
        a, b = self._operand(shape[2]), self._operand(shape[3])
        form = CHECK_FORMS.get(shape[1])
        if form == ("eq_other",):
            got, x = self._bound(a)
            return f"({got} is not None and {x} == {b})"
        if form == ("not_before",):  # two dates compared in place, else the check
            (got_x, x), (got_y, y) = self._bound(a), self._bound(b)
            dates = f"len({x}) == 10 and {_date(x)} and len({y}) == 10 and {_date(y)}"
            return (
                f"(type({got_x}) is str and type({got_y}) is str "
                f"and ({x} >= {y} if {dates} else {self.const(shape[1])}({x}, {y})))"
            )
        return f"{self.const(shape[1])}({a}, {b})"

    def _bound(self, operand: str) -> tuple[str, str]:
        """``(expression, name)``: *operand* evaluated once into a name (a variable's
        temporary is one already)."""
        if _TEMP.fullmatch(operand):
            return operand, operand
        x = self.temp()
        return f"({x} := {operand})", x

    def _check(self, check: Any, operand: str) -> str:
        """``check(operand)`` written in place when its form is known."""
        form = CHECK_FORMS.get(check)
        if form is None:
            return f"{self.const(check)}({operand})"
        got, x = self._bound(operand)
        kind = form[0]
        if kind == "present":  # a text compared with '' alone (no list or dict built)
            found = (
                f"{got} is not None and "
                f"({x} != '' if type({x}) is str else ({x} != [] and {x} != {{}}))"
            )
            return f"({found})" if form[1] else f"(not ({found}))"
        if kind == "in":
            return f"(type({got}) is str and {x} in {self.const(form[1])})"
        if kind == "is":
            return f"({operand} is {self.const(form[1])})"
        if kind == "eq":
            return f"({operand} == {self.const(form[1])})"
        if kind == "pattern":
            return f"(type({got}) is str and {self.const(form[1])}({x}) is not None)"
        if kind == "count":
            low, high = self.const(form[1]), self.const(form[2])
            return f"(isinstance({got}, {self.const(COUNTED)}) and {low} <= len({x}) <= {high})"
        if kind == "date":
            return f"(type({got}) is str and len({x}) == 10 and {_date(x)})"
        if kind == "date_time":
            return f"(type({got}) is str and {_date_time(x)})"
        return f"{self.const(check)}({operand})"


def _nested(rows: frozenset[tuple[str, ...]]) -> dict[str, Any]:
    """*rows* (tuples of texts, all of one length) as nested dicts by column, the last
    column's texts a set: a row is found by one lookup per text (a tuple of new texts costs
    its hash and a compare per column). A one-column row is a dict of its texts."""
    top: dict[str, Any] = {}
    for row in rows:
        level = top
        for text in row[:-2]:
            level = level.setdefault(text, {})
        if len(row) == 1:
            level[row[0]] = True
        else:
            level.setdefault(row[-2], set()).add(row[-1])
    return _frozen(top)


def _frozen(level: dict[str, Any]) -> dict[str, Any]:
    """*level* with each set of last-column texts frozen (constants of the function)."""
    return {
        k: frozenset(v) if isinstance(v, set) else _frozen(v) if isinstance(v, dict) else v
        for k, v in level.items()
    }


def _date(x: str) -> str:
    """Whether the text *x* (a name in the source) is a valid ISO date."""
    return f"({x} in _dates or _date_ok({x}))"


def _date_time(x: str) -> str:
    """Whether the text *x* is a valid RFC 3339 date-time."""
    return f"({x} in _date_times or _date_time_ok({x}))"
