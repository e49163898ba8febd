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

from collections.abc import Callable, Sequence
from functools import lru_cache
from operator import attrgetter
from typing import Any

from gateway.facts import DecisionInput
from gateway.policy.conditions import (
    CHECK_FORMS,
    SHAPES,
    _date_text,
    _date_time_text,
    _shifted_day,
)
from gateway.policy.factpaths import ATTRIBUTES

Run = Callable[[DecisionInput], int]
"""``facts -> index of the first refusing check, or -1`` (every check passed)."""
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
    "id": id,
}
"""The engine's own helpers the written source uses by name."""


def fuse(plan: Sequence[tuple[Any, Any, Any]]) -> tuple[Run, str]:
    """*plan* (``(when, require, check)``: residual tests, ``when`` None for none) as one
    function, and its source (for tests and ``policy explain`` debugging)."""
    writer = _Writer()
    for n, (when, require, _check) in enumerate(plan):
        indent = "    "
        if when is not None:
            writer.line(indent, f"if {writer.expr(when)}:")
            indent += "    "
        writer.require(require, n, indent)
    return writer.build()


@lru_cache(maxsize=256)
def _attrgetter(path: str) -> attrgetter[Any]:
    """One ``attrgetter`` per attribute path (the same constant in every function)."""
    return attrgetter(path)


class _Writer:
    """Builds the function's body, its constants and temporaries."""

    def __init__(self) -> None:
        self.consts: dict[str, Any] = {}
        self._named: dict[int, str] = {}
        self.body: list[str] = []
        self.temps = 0

    def const(self, value: Any) -> str:
        """The name *value* is bound to in the function (one name per object)."""
        name = self._named.get(id(value))
        if name is None:
            name = self._named[id(value)] = f"_k{len(self.consts)}"
            self.consts[name] = value
        return name

    def temp(self) -> str:
        self.temps += 1
        return f"_t{self.temps}"

    def line(self, indent: str, text: str) -> None:
        self.body.append(indent + text)

    def build(self) -> tuple[Run, str]:
        names = [*self.consts, *HELPERS]
        params = "".join(f", {n}={n}" for n in names)
        src = "\n".join(
            [
                f"def residual(f{params}):",
                "    v = f.operation.variables",
                *self.body,
                "    return -1",
                "",
            ]
        )
        namespace: dict[str, Any] = {**self.consts, **HELPERS}
        exec(compile(src, "<fused residual>", "exec"), namespace)
        run: Run = namespace["residual"]
        return run, src

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
        else:
            self.line(indent, f"if not {self.expr(test)}:")
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
                got = f"({y} := v[{self.const(name)}])"
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
                self.line(indent, f"{x} = v[{self.const(name)}]")
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
            return f"v[{self.const(name)}]"
        if read is not None:
            return self._read(read)
        return self.const(value)

    def _operand(self, spec: tuple[str, Any]) -> str:
        kind, what = spec
        if kind == "var":
            return f"v[{self.const(what)}]"
        if kind == "read":
            return self._read(what)
        return self.const(what)

    def _read(self, getter: Any) -> str:
        """A getter's answer on the request's facts (an attribute: one ``attrgetter``)."""
        attribute = ATTRIBUTES.get(getter)
        if attribute is not None:
            return f"{self.const(_attrgetter(attribute))}(f)"
        return f"{self.const(getter)}(f, None)"

    def expr(self, test: Any) -> str:
        """*test* as one expression over ``f`` and ``v`` (truthy when it holds)."""
        if test is True or test is False:
            return str(test)
        shape = SHAPES.get(test)
        if shape is None or shape[0] in ("lower", "upper"):
            return f"{self.const(test)}(f, None)"
        kind = shape[0]
        if kind == "memo":  # an answer remembered per list (by identity), else the test
            x, hit = self.temp(), self.temp()
            got = f"({hit} := {self.const(shape[2])}.get(id(({x} := {self._read(shape[1])}))))"
            return (
                f"({hit}[1] if {got} is not None and {hit}[0] is {x} "
                f"else {self.const(test)}(f, None))"
            )
        if kind == "all":
            return "(" + " and ".join(self.expr(t) for t in shape[1]) + ")"
        if kind == "any":
            return "(" + " or ".join(self.expr(t) for t in shape[1]) + ")"
        if kind == "not":
            return f"(not {self.expr(shape[1])})"
        if kind == "unary":
            return self._check(shape[1], self._operand(shape[2]))
        if kind == "row":  # each open column a text, their tuple one of the rows
            names = [self.temp() for _ in shape[1]]
            texts = " and ".join(
                f"type(({x} := {self._operand(source)})) is str"
                for x, source in zip(names, shape[1], strict=True)
            )
            key = ", ".join(names) + ("," if len(names) == 1 else "")
            return f"({texts} and ({key}) in {self.const(shape[2])})"
        a, b = self._operand(shape[2]), self._operand(shape[3])
        form = CHECK_FORMS.get(shape[1])
        if form == ("eq_other",):
            x = self.temp()
            return f"(({x} := {a}) is not None and {x} == {b})"
        if form == ("not_before",):  # two dates compared in place, else the check
            x, y = self.temp(), self.temp()
            dates = f"len({x}) == 10 and {_date(x)} and len({y}) == 10 and {_date(y)}"
            return (
                f"(type(({x} := {a})) is str and type(({y} := {b})) is str "
                f"and ({x} >= {y} if {dates} else {self.const(shape[1])}({x}, {y})))"
            )
        return f"{self.const(shape[1])}({a}, {b})"

    def _check(self, check: Any, operand: str) -> str:
        """``check(operand)`` written in place when its form is known."""
        form = CHECK_FORMS.get(check)
        if form is None:
            return f"{self.const(check)}({operand})"
        x = self.temp()
        got = f"({x} := {operand})"
        kind = form[0]
        if kind == "present":
            found = f"{got} is not None and {x} != '' and {x} != [] and {x} != {{}}"
            return f"({found})" if form[1] else f"(not ({found}))"
        if kind == "in":
            return f"(type({got}) is str and {x} in {self.const(form[1])})"
        if kind == "is":
            return f"({operand} is {self.const(form[1])})"
        if kind == "eq":
            return f"({operand} == {self.const(form[1])})"
        if kind == "pattern":
            return f"(type({got}) is str and {self.const(form[1])}({x}) is not None)"
        if kind == "date":
            return f"(type({got}) is str and len({x}) == 10 and {_date(x)})"
        if kind == "date_time":
            return f"(type({got}) is str and {_date_time(x)})"
        return f"{self.const(check)}({operand})"


def _date(x: str) -> str:
    """Whether the text *x* (a name in the source) is a valid ISO date."""
    return f"({x} in _dates or _date_ok({x}))"


def _date_time(x: str) -> str:
    """Whether the text *x* is a valid RFC 3339 date-time."""
    return f"({x} in _date_times or _date_time_ok({x}))"
