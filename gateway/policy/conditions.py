"""Conditions compiled to closures.

A condition in a policy file is a small mapping (``fact:`` + one operator, ``row:``,
``all:``/``any:``/``not:``). :func:`compile_condition` turns it, once at load, into a
:class:`Cond`: ``test(facts, item) -> bool`` (the hot path: no YAML, no name lookups;
lists are frozensets, tables are frozensets of tuples) and ``explain(facts, item) -> str``
(for ``policy explain``). Tests never raise: wrong types and missing values do not match.
"""

from __future__ import annotations

import datetime as dt
import re
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import Any

from gateway.config.errors import did_you_mean
from gateway.config.yamlsource import JsonPath, Source
from gateway.facts import DecisionInput, OperationFacts, Var
from gateway.policy.errors import LoadIssue
from gateway.policy.factpaths import (
    UNKNOWN,
    Getter,
    Sym,
    SymGetter,
    UnknownFact,
    compile_fact,
    compile_symbolic,
)

Test = Callable[[DecisionInput, Any], bool]
Explain = Callable[[DecisionInput, Any], str]
Culprit = Callable[[DecisionInput, Any], str | None]
Residual = bool | Test
"""A condition partially evaluated for a query plan: decided (True/False) for every
request of the plan, or the test left to run per request (:mod:`gateway.policy.partial`)."""
Partial = Callable[[OperationFacts, Any], Residual]
"""``(the plan's symbolic operation, symbolic item) -> Residual``."""

FACT_OPERATORS = (
    "equals",
    "in",
    "present",
    "pattern",
    "format",
    "count",
    "every",
    "some",
    "subset_of",
    "contains",
    "fields",
    "not_before",
    "date_window",
    "overlaps",
)
FORMATS = ("date-time", "date")

_DATE_TIME = re.compile(r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:[Zz]|[+-]\d{2}:\d{2})")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


@dataclass(frozen=True, slots=True)
class Cond:
    """A compiled condition."""

    test: Test
    explain: Explain
    text: str
    """The condition as a security officer wrote it, in one line."""
    never: bool = False
    """True when this condition can never match (reported at load)."""
    culprit: Culprit | None = None
    """What made it fail, for a reason's ``{found}``: the selected path outside the
    allowed fields, the list item a ``not: {some: ...}`` found (None: not known)."""
    item_only: bool = False
    """True when the answer depends on ``item`` alone (no other fact): ``every``/``some``
    over an immutable list (the selected paths) can then remember it per list."""
    per_list: bool = False
    """``every``/``some`` whose answer depends on the list alone (its items)."""
    selected_only: bool = False
    """True when the answer depends on ``operation.selected`` alone (one tuple per query
    text): the engine then decides it once per selection (:meth:`CompiledPolicy.decide`)."""
    keyed: tuple[str, str, Getter, Cond | None] | None = None
    """``(fact path, text, getter, rest)`` when this condition is ``<fact> equals <text>``
    (alone, or as an item of ``all:`` with *rest* the other items): the engine then
    picks a request's checks by that fact's value once, instead of testing it per check."""
    partial: Partial | None = None
    """This condition evaluated against a query plan's symbolic facts (None: not known
    here; the residual is then ``test`` itself, the full evaluation)."""


def residual(cond: Cond, op: OperationFacts, item: Any) -> Residual:
    """*cond* partially evaluated for the plan whose symbolic facts are *op*: what a
    request of the plan still has to test (or the answer for all of them)."""
    if cond.partial is None:
        return cond.test
    return cond.partial(op, item)


def _symbolic_input(op: OperationFacts) -> DecisionInput:
    """A plan's symbolic operation as decision input, for tests that read
    ``operation.selected`` alone (no token, no route: they are never read)."""
    return DecisionInput(None, op, None)  # type: ignore[arg-type]


def _unary(sym: SymGetter, check: Callable[[Any], bool], *, shape: bool = False) -> Partial:
    """The partial evaluation of a test ``check(fact's value)``: decided when the plan
    fixes the value (*shape*: or when only the shape of a value with variables inside
    counts, e.g. present:); else ``check`` of the value read per request."""

    def partial(op: OperationFacts, item: Any) -> Residual:
        s = sym(op, item)
        read = s.read
        if read is None or (shape and s.value is not UNKNOWN):
            return bool(check(s.value))
        name = _variable(s)
        if name is not None:  # the variable's own value: read in place
            test: Test = lambda f, i: check(f.operation.variables[name])  # noqa: E731
            SHAPES[test] = ("unary", check, ("var", name))
            return _item_free_if(test, [s])
        test = lambda f, i: check(read(f, i))  # noqa: E731
        SHAPES[test] = ("unary", check, ("read", read))
        return _item_free_if(test, [s])

    return partial


def _variable(s: Sym) -> str | None:
    """The variable whose own value *s* is (None: something else)."""
    key = s.key
    if s.read is not None and key is not None and key[0] == "var" and not key[2]:
        return str(key[1])
    return None


def _binary(a: SymGetter, b: SymGetter, check: Callable[[Any, Any], bool]) -> Partial:
    """As :func:`_unary`, for a test of two values (``equals: {fact: ..}``, not_before:)."""

    def partial(op: OperationFacts, item: Any) -> Residual:
        sa, sb = a(op, item), b(op, item)
        ra, rb = sa.read, sb.read
        if ra is None and rb is None:
            return bool(check(sa.value, sb.value))
        va, vb = sa.value, sb.value
        na, nb = _variable(sa), _variable(sb)
        if na is not None and nb is not None:  # two variables' own values (not_before:)
            test: Test = lambda f, i: check(  # noqa: E731
                f.operation.variables[na], f.operation.variables[nb]
            )
            shape: tuple[Any, ...] = ("binary", check, ("var", na), ("var", nb))
        elif na is not None and rb is not None:  # a variable and a token fact (equals:)
            test = lambda f, i: check(f.operation.variables[na], rb(f, i))  # noqa: E731
            shape = ("binary", check, ("var", na), ("read", rb))
        elif ra is None:
            test = lambda f, i: check(va, rb(f, i))  # type: ignore[misc]  # noqa: E731
            shape = ("binary", check, ("const", va), ("read", rb))
        elif rb is None:
            test = lambda f, i: check(ra(f, i), vb)  # noqa: E731
            shape = ("binary", check, ("read", ra), ("const", vb))
        else:
            test = lambda f, i: check(ra(f, i), rb(f, i))  # noqa: E731
            shape = ("binary", check, ("read", ra), ("read", rb))
        SHAPES[test] = shape
        return _item_free_if(test, [sa, sb])

    return partial


ALL_PARTS: weakref.WeakKeyDictionary[Any, tuple[Any, ...]] = weakref.WeakKeyDictionary()
"""The parts of each residual ``all:`` test: the engine runs a part an earlier check
already ran (and passed) once (:meth:`CompiledPolicy._residual`)."""
SHAPES: weakref.WeakKeyDictionary[Any, tuple[Any, ...]] = weakref.WeakKeyDictionary()
"""What each residual test computes, for :mod:`gateway.policy.fused` to write the residual
checks of a plan as one function: ``("unary", check, source)``, ``("binary", check, a,
b)`` (a source: ``("var", name)``, ``("read", getter)``, ``("const", value)``), ``("all",
tests)``, ``("any", tests)``, ``("not", test)``, ``("lower", floors, alternatives)``,
``("upper", ceilings, dates)``, ``("memo", getter, seen)`` (an ``every``/``some`` whose
answer is remembered per list in *seen*, by identity), ``("every", source, test)`` and
``("some", source, test)`` (*test* of each item of a list, a variable's own value),
``("row", sources, rows)`` (a ``row:`` whose open columns' values, each a text, form a
tuple in *rows*). A test without one is called as it is."""
CHECK_FORMS: weakref.WeakKeyDictionary[Any, tuple[Any, ...]] = weakref.WeakKeyDictionary()
"""What each value check of an operator tests (``("present", wanted)``, ``("in",
values)``, ``("count", min, max)``, ``("is", value)``, ``("eq", value)``, ``("eq_other",)``,
``("pattern", match)``, ``("date",)``, ``("date_time",)``, ``("not_before",)``), for
:mod:`gateway.policy.fused` to write it in place; a check without one is called."""
ITEM_FREE: weakref.WeakSet[Any] = weakref.WeakSet()
"""Residual tests that do not read their item (the variables, the token): ``every`` over
a plan's list then runs each distinct one once, not once per item."""


def all_residual(parts: list[Residual]) -> Residual:
    """Residuals of ``all:`` (tests never raise and read nothing twice: order-free; the
    same test twice is run once)."""
    if any(p is False for p in parts):
        return False
    left = list({id(p): p for p in parts if p is not True}.values())
    if not left:
        return True
    if len(left) == 1:
        return left[0]
    tests = tuple(left)

    def every_test(f: DecisionInput, i: Any) -> bool:
        for t in tests:  # type: ignore[operator]  # noqa: SIM110
            if not t(f, i):  # type: ignore[operator]
                return False
        return True

    ALL_PARTS[every_test] = tests
    SHAPES[every_test] = ("all", tests)
    return _item_free_if(every_test, left)


def _item_free_if(test: Test, parts: list[Any]) -> Test:
    """*test*, noted as reading no item when none of *parts* does (residual tests, or the
    symbolic values read)."""
    if all(not _reads_item(p.key) if type(p) is Sym else p in ITEM_FREE for p in parts):
        ITEM_FREE.add(test)
    return test


def _reads_item(key: Any) -> bool:
    """Whether a :class:`Sym` read with this key may read the item (None: unknown, may)."""
    if key is None or key[0] == "item":
        return True
    return key[0] == "until" and _reads_item(key[3])


def _any_of(parts: list[Residual]) -> Residual:
    """Residuals of ``any:``."""
    if any(p is True for p in parts):
        return True
    left = list({id(p): p for p in parts if p is not False}.values())
    if not left:
        return False
    if len(left) == 1:
        return left[0]
    tests = tuple(left)

    def any_of(f: DecisionInput, i: Any) -> bool:
        for t in tests:  # type: ignore[operator]  # noqa: SIM110
            if t(f, i):  # type: ignore[operator]
                return True
        return False

    SHAPES[any_of] = ("any", tests)
    return _item_free_if(any_of, left)


def _row_partial(syms: tuple[SymGetter, ...], index: frozenset[tuple[Any, ...]]) -> Partial:
    """The partial evaluation of ``row:``: the columns the plan fixes (literals, the plan's
    own values) are decided here, so the table is narrowed to the rows that match them; the
    columns left (a variable's value, a token or route fact) are looked up per request, one
    column as ``in:`` a set of texts. Every column must be a text, as the full test says."""

    def partial(op: OperationFacts, item: Any) -> Residual:
        got = [s(op, item) for s in syms]
        fixed = [(n, s.value) for n, s in enumerate(got) if s.read is None]
        if any(type(value) is not str for _n, value in fixed):
            return False
        open_ = [n for n, s in enumerate(got) if s.read is not None]
        rows = frozenset(
            tuple(key[n] for n in open_)
            for key in index
            if all(key[n] == value for n, value in fixed)
        )
        if not open_:
            return bool(rows)
        if not rows:
            return False
        if len(open_) == 1:
            return _unary(lambda _op, _i: got[open_[0]], _in_check(frozenset(r[0] for r in rows)))(
                op, item
            )
        sources = tuple(_row_source(got[n]) for n in open_)
        reads = tuple(_row_read(source) for source in sources)

        def test(f: DecisionInput, i: Any) -> bool:
            key = tuple(read(f, i) for read in reads)
            return all(type(v) is str for v in key) and key in rows

        SHAPES[test] = ("row", sources, rows)
        return _item_free_if(test, [got[n] for n in open_])

    return partial


def _row_source(s: Sym) -> tuple[str, Any]:
    """A column's source for :mod:`gateway.policy.fused`: ``("var", name)`` (a variable's
    own value) or ``("read", getter)``."""
    name = _variable(s)
    if name is not None:
        return ("var", name)
    assert s.read is not None
    return ("read", s.read)


def _row_read(source: tuple[str, Any]) -> Getter:
    kind, what = source
    if kind == "var":
        return lambda f, _i: f.operation.variables[what]
    read: Getter = what
    return read


def _negated(inner: Cond) -> Partial:
    def partial(op: OperationFacts, item: Any) -> Residual:
        r = residual(inner, op, item)
        if type(r) is bool:
            return not r
        test: Test = lambda f, i: not r(f, i)  # type: ignore[operator]  # noqa: E731
        SHAPES[test] = ("not", r)
        return test

    return partial


ITEM_FIELD = "\0item."
"""Marks a list item's field among a residual's variables (``\0item.subject``): no
GraphQL variable name has a NUL, so :mod:`gateway.policy.fused` reads it from the item."""


class _ItemView(Mapping[str, Any]):
    """A list item as a plan's symbolic value: each field is a :class:`Var` named with
    ITEM_FIELD, so the inner condition of ``every``/``some`` partially evaluates to tests
    of "this field of the item" (conditions whose item facts are one field each)."""

    def __getitem__(self, key: str) -> Any:
        return Var(ITEM_FIELD + key)

    def __iter__(self) -> Any:
        return iter(())

    def __len__(self) -> int:
        return 0


ITEM_VIEW = _ItemView()


def _item_fields_only(node: Any) -> bool:
    """Whether every item fact in *node* (an ``every``/``some`` condition as written) is one
    field, ``item.<field>``, with no ``every``/``some`` inside (whose items would be others)."""
    if isinstance(node, list):
        return all(_item_fields_only(n) for n in node)
    if not isinstance(node, dict):
        return True
    if "every" in node or "some" in node:
        return False
    fact = node.get("fact")
    if isinstance(fact, str) and fact.split(".")[0] == "item" and fact.count(".") != 1:
        return False
    return all(_item_fields_only(v) for v in node.values())


class IdentityMemo:
    """Answers remembered per immutable object, looked up by identity (no hashing of a
    hundred selected paths per request). The object is kept, so its id is not reused."""

    __slots__ = ("seen",)
    SIZE = 1024

    def __init__(self) -> None:
        self.seen: dict[int, tuple[Any, Any]] = {}
        """``id(key) -> (key, answer)``: a hot caller may look it up itself."""

    def get(self, key: Any, compute: Callable[[], Any]) -> Any:
        hit = self.seen.get(id(key))
        if hit is not None and hit[0] is key:
            return hit[1]
        value = compute()
        if type(key) is tuple or type(key) is frozenset:
            if len(self.seen) >= self.SIZE:
                self.seen.clear()
            self.seen[id(key)] = (key, value)
        return value


@dataclass(slots=True)
class DataCatalogue:
    """Named data a policy may refer to (after the environment overlay is applied)."""

    lists: dict[str, frozenset[str]]
    tables: dict[str, tuple[Mapping[str, Any], ...]]
    columns: dict[str, tuple[str, ...]] = field(default_factory=dict)
    """Each table's columns (declared, or every column its catalogue rows use)."""


class CompileError(Exception):
    """Collected by the compiler; carries a positioned issue."""

    def __init__(self, issue: LoadIssue) -> None:
        super().__init__(str(issue))
        self.issue = issue


def literal(value: Any) -> Any:
    """Policy literals: numbers are identifiers, compared as text; true/false stay booleans."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int | float):
        return str(value)
    return value


def _show(value: Any) -> str:
    if value is None:
        return "missing"
    if isinstance(value, frozenset | set):
        return "[" + ", ".join(sorted(map(repr, value))) + "]"
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _valid_date_time(value: Any) -> bool:
    return type(value) is str and _date_time_text(value)


@lru_cache(maxsize=4096)
def _date_time_text(value: str) -> bool:
    """Whether *value* is an RFC 3339 date-time (remembered: the same dates recur)."""
    if type(value) is not str or _DATE_TIME.fullmatch(value) is None:
        return False
    try:
        dt.datetime.fromisoformat(value.replace("z", "Z").replace("t", "T"))
    except ValueError:
        return False
    return True


def _names_a_fact(value: Any) -> bool:
    """Whether an operator's argument reads a fact (``{fact: ...}``, or a nested condition)."""
    if isinstance(value, dict):
        return "fact" in value or any(_names_a_fact(v) for v in value.values())
    if isinstance(value, list):
        return any(_names_a_fact(v) for v in value)
    return False


def _instant(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value.upper().replace("Z", "+00:00"))


def _valid_date(value: Any) -> bool:
    return type(value) is str and len(value) == 10 and _date_text(value)


def _equal_other(a: Any, b: Any) -> bool:
    """``equals: {fact: ..}``: the fact is present and equal to the other."""
    return a is not None and a == b


def _in_check(values: frozenset[str]) -> Callable[[Any], bool]:
    def check(v: Any) -> bool:
        return type(v) is str and v in values

    CHECK_FORMS[check] = ("in", values)
    return check


def _pattern_check(match: Callable[[str], Any]) -> Callable[[Any], bool]:
    def check(v: Any) -> bool:
        return type(v) is str and match(v) is not None

    CHECK_FORMS[check] = ("pattern", match)
    return check


CHECK_FORMS[_valid_date] = ("date",)
CHECK_FORMS[_valid_date_time] = ("date_time",)
CHECK_FORMS[_equal_other] = ("eq_other",)


@lru_cache(maxsize=4096)
def _date_text(value: str) -> bool:
    """Whether *value* is an ISO-8601 date (remembered: the same dates recur)."""
    if _DATE.fullmatch(value) is None:
        return False
    try:
        dt.date.fromisoformat(value)
    except ValueError:
        return False
    return True


@lru_cache(maxsize=4096)
def _shifted_day(value: str, years: int, day: str | None) -> str:
    """A valid ISO date *value* with *years* added, then the month and day set to *day*
    (``MM-DD``) when given; 29 February in a common year is the 28th. A pure function of
    its arguments, remembered as :func:`_date_text` (an ``until:`` bound of every request
    with a closed toewijzing: two per QBR-0002 decision)."""
    d = dt.date.fromisoformat(value)
    year = d.year + years
    month, dom = (int(day[:2]), int(day[3:])) if day else (d.month, d.day)
    if month == 2 and dom == 29 and not (year % 4 == 0 and (year % 100 or year % 400 == 0)):
        dom = 28
    return dt.date(year, month, dom).isoformat()


def _day(value: Any) -> dt.date | None:
    """An ISO date, or the date of an ISO date-time (the register's vaststellingMoment)."""
    if type(value) is str and len(value) >= 10 and _date_text(value[:10]):
        return dt.date.fromisoformat(value[:10])
    return None


def bounded(ops: dict[str, Any], ceiling_day: str) -> bool:
    """Whether a filter's operators on a start date bound it by a date not after
    *ceiling_day* (``ngt``, ``lte`` or ``lt``)."""
    for op in ("ngt", "lte", "lt"):
        v = ops.get(op)
        if type(v) is str and len(v) == 10 and v <= ceiling_day and _date_text(v):
            return True
    return False


Span = tuple[dt.date, dt.date | None]
"""First and last day (None: open-ended)."""


def _overlap(a: Span, b: Span) -> bool:
    return (b[1] is None or a[0] <= b[1]) and (a[1] is None or b[0] <= a[1])


@dataclass(frozen=True, slots=True)
class Period:
    """Where a record keeps its period: the earliest of the ``start`` keys (UCBR-0012: the
    toewijzingIngangsdatum, or the earlier vaststellingMoment; no keys: since ever) through
    the ``end`` key (missing or null: open-ended); ``extended`` (``MM-DD``) moves the end to
    that day of the following year ("access until 31 May of the year after the einddatum").
    Start keys given but none holding a date: no period (it overlaps nothing)."""

    start: tuple[str, ...]
    end: str | None
    extended: str | None = None

    def without_extension(self) -> Period:
        return replace(self, extended=None)

    def span(self, record: Any) -> Span | None:
        if type(record) is str:  # a date: that one day
            day = _day(record)
            return None if day is None else (day, day)
        if not isinstance(record, Mapping):
            return None
        starts = [d for d in (_day(record.get(k)) for k in self.start) if d is not None]
        if not self.start:
            starts = [dt.date.min]
        elif not starts:
            return None
        last = record.get(self.end) if self.end else None
        if last is None:
            return min(starts), None
        end = _day(last)
        if end is None:
            return None
        if self.extended:
            end = dt.date(end.year + 1, int(self.extended[:2]), int(self.extended[3:]))
        return min(starts), end

    def records(self, value: Any) -> list[Any]:
        return list(value) if isinstance(value, list | tuple) else [value]

    def spans(self, value: Any) -> list[Span]:
        return [s for s in map(self.span, self.records(value)) if s is not None]

    def show(self, record: Any) -> str:
        span = self.span(record)
        if span is None:
            return "(no period)"
        first = "" if span[0] == dt.date.min else str(span[0])
        return f"({first} - {span[1] or 'open'})"


class ConditionCompiler:
    """Compiles the conditions of one file against the loaded data."""

    def __init__(self, source: Source, data: DataCatalogue) -> None:
        self.source = source
        self.data = data
        self._window_days: dict[str, list[tuple[Any, str | None]]] = {}
        """Per ``from:`` / ``until:`` list of the file's date windows: ``[(the last request,
        its day)]`` (the windows of one request share it; one slot, replaced whole, so
        threads sharing the set never read one request's facts with another's day)."""
        self._window_verdicts: dict[tuple[Any, ...], list[tuple[Any, list[Any]]]] = {}
        self._syms: dict[Getter, SymGetter] = {}
        self._window_residuals: dict[Any, Test] = {}
        """Date windows left per request, by what they read (:func:`_window_partial`)."""
        """The symbolic getter of each fact getter and literal compiled here."""
        """Per date window spec (end, start, from, until): ``[(the last request, [its
        where filters that passed or failed])]``, shared by the checks of one spec."""

    def error(
        self, path: JsonPath, message: str, hint: str | None = None, *, key: bool = False
    ) -> CompileError:
        return CompileError(self.source.issue(path, message, hint, key=key))

    # ------------------------------------------------------------------ entry
    def compile(self, node: Any, path: JsonPath, *, in_item: bool = False) -> Cond:
        """Compile the condition *node* found at *path*."""
        if not isinstance(node, dict) or not node:
            raise self.error(
                path,
                "expected a condition mapping",
                "e.g. {fact: token.identifier, equals: '5151'}",
            )
        if "all" in node or "any" in node:
            word = "all" if "all" in node else "any"
            self._only(node, path, {word})
            return self._group(word, node[word], (*path, word), in_item)
        if "not" in node:
            self._only(node, path, {"not"})
            inner = self.compile(node["not"], (*path, "not"), in_item=in_item)
            test = inner.test
            return Cond(
                lambda f, i: not test(f, i),
                lambda f, i: "not (" + inner.explain(f, i) + ")",
                f"not ({inner.text})",
                culprit=inner.culprit,
                selected_only=inner.selected_only,
                partial=_negated(inner),
            )
        if "row" in node:
            self._only(node, path, {"row", "where"})
            return self._row(node, path, in_item)
        if "fact" in node:
            ops = [k for k in node if k != "fact"]
            if len(ops) != 1 or ops[0] not in FACT_OPERATORS:
                raise self.error(
                    path,
                    f"a fact condition needs exactly one operator, got {', '.join(ops) or 'none'}",
                    "one of: " + ", ".join(FACT_OPERATORS) + "; combine several with all:",
                )
            return self._fact(node, path, ops[0], in_item)
        raise self.error(path, "unknown condition", "start with fact:, row:, all:, any: or not:")

    def _only(self, node: dict[str, Any], path: JsonPath, allowed: set[str]) -> None:
        extra = [k for k in node if k not in allowed]
        if extra:
            raise self.error(
                (*path, extra[0]),
                f"{extra[0]!r} cannot be combined with "
                f"{' / '.join(sorted(allowed))} in one condition",
                "put each condition in its own list item under all:",
                key=True,
            )

    def fact_getter(self, value: Any, path: JsonPath, in_item: bool) -> Getter:
        """Compile a fact path found at *path* (and its symbolic getter: :meth:`sym`)."""
        if not isinstance(value, str):
            raise self.error(path, "a fact path must be text", "e.g. token.identifier")
        try:
            get = compile_fact(value, in_item=in_item)
        except UnknownFact as exc:
            raise self.error(path, str(exc), exc.hint) from None
        self._syms[get] = compile_symbolic(value, get, in_item=in_item)
        return get

    def sym(self, get: Getter) -> SymGetter:
        """The symbolic getter of a getter this compiler made (a literal's: its value;
        anything else: read per request)."""
        found = self._syms.get(get)
        if found is None:
            return lambda _op, _i: Sym(UNKNOWN, get)
        return found

    def named_list(self, name: str, path: JsonPath) -> frozenset[str]:
        """The data list called *name*."""
        found = self.data.lists.get(name)
        if found is None:
            hint = (
                did_you_mean(name, self.data.lists)
                + "known lists: "
                + (", ".join(sorted(self.data.lists)) or "none (add a catalogue file)")
            )
            raise self.error(path, f"unknown list {name!r}", hint)
        return found

    # ------------------------------------------------------------------ groups
    def _group(
        self,
        word: str,
        items: Any,
        path: JsonPath,
        in_item: bool,
        compiled: list[Cond] | None = None,
    ) -> Cond:
        if compiled is not None:
            conds = compiled
        else:
            if not isinstance(items, list) or not items:
                raise self.error(path, f"{word}: needs a non-empty list of conditions")
            conds = [self.compile(c, (*path, n), in_item=in_item) for n, c in enumerate(items)]
        tests = tuple(c.test for c in conds)
        text = f"{word}(" + "; ".join(c.text for c in conds) + ")"

        def explain(f: DecisionInput, i: Any) -> str:
            parts = [("yes: " if c.test(f, i) else "no: ") + c.explain(f, i) for c in conds]
            return f"{word} of [" + "; ".join(parts) + "]"

        def culprit(f: DecisionInput, i: Any) -> str | None:
            failing = next((c for c in conds if not c.test(f, i)), None)
            return failing.culprit(f, i) if failing and failing.culprit else None

        # Unrolled for the usual sizes: a generator per call costs more than the tests.
        if word == "all":
            never = any(c.never for c in conds)
            keyed = next((c.keyed for c in conds if c.keyed and c.keyed[3] is None), None)
            if keyed is not None:
                others = [c for c in conds if c.keyed is not keyed]
                rest = self._group("all", [], path, in_item, compiled=others) if others else None
                keyed = (*keyed[:3], rest)

            def all_partial(op: OperationFacts, i: Any) -> Residual:
                return all_residual([residual(c, op, i) for c in conds])

            if len(tests) == 1:
                return Cond(
                    tests[0], explain, text, never, culprit, keyed=keyed, partial=all_partial
                )
            if len(tests) == 2:
                t1, t2 = tests
                return Cond(
                    lambda f, i: t1(f, i) and t2(f, i),
                    explain,
                    text,
                    never,
                    culprit,
                    keyed=keyed,
                    partial=all_partial,
                )
            if len(tests) == 3:
                t1, t2, t3 = tests
                return Cond(
                    lambda f, i: t1(f, i) and t2(f, i) and t3(f, i),
                    explain,
                    text,
                    never,
                    culprit,
                    keyed=keyed,
                    partial=all_partial,
                )

            def all_of(f: DecisionInput, i: Any) -> bool:
                for t in tests:  # noqa: SIM110 - a plain loop avoids a generator per call
                    if not t(f, i):
                        return False
                return True

            return Cond(all_of, explain, text, never, culprit, keyed=keyed, partial=all_partial)
        never = all(c.never for c in conds)

        def any_partial(op: OperationFacts, i: Any) -> Residual:
            return _any_of([residual(c, op, i) for c in conds])

        if len(tests) == 2:
            t1, t2 = tests
            return Cond(
                lambda f, i: t1(f, i) or t2(f, i), explain, text, never, partial=any_partial
            )

        def any_of(f: DecisionInput, i: Any) -> bool:
            for t in tests:  # noqa: SIM110 - a plain loop avoids a generator per call
                if t(f, i):
                    return True
            return False

        return Cond(any_of, explain, text, never, partial=any_partial)

    # ------------------------------------------------------------------ tables
    def _row(self, node: dict[str, Any], path: JsonPath, in_item: bool) -> Cond:
        table_name = node["row"]
        rows = self.data.tables.get(table_name) if isinstance(table_name, str) else None
        if rows is None:
            raise self.error(
                (*path, "row"),
                f"unknown table {table_name!r}",
                did_you_mean(str(table_name), self.data.tables)
                + "known tables: "
                + (", ".join(sorted(self.data.tables)) or "none"),
            )
        where = node.get("where")
        if not isinstance(where, dict) or not where:
            raise self.error(
                path,
                "row: needs where: with at least one column",
                "e.g. where: {code: {fact: args.notificatieInput.eventType}}",
            )
        columns = list(self.data.columns.get(table_name, ()))
        for column in where:
            if column not in columns:
                raise self.error(
                    (*path, "where", column),
                    f"table {table_name!r} has no column {column!r}",
                    did_you_mean(column, columns) + "columns: " + ", ".join(columns),
                    key=True,
                )
        names = tuple(where)
        getters: list[Getter] = []
        for column in names:
            getters.append(self._value(where[column], (*path, "where", column), in_item))
        index = frozenset(tuple(literal(row.get(c)) for c in names) for row in rows)
        gets = tuple(getters)
        text = f"row in {table_name} where " + ", ".join(
            f"{c} = {self._value_text(where[c])}" for c in names
        )

        if len(gets) == 1:
            (g1,) = gets

            def test(f: DecisionInput, i: Any) -> bool:
                v = g1(f, i)
                return type(v) is str and (v,) in index
        elif len(gets) == 2:
            g1, g2 = gets

            def test(f: DecisionInput, i: Any) -> bool:
                a = g1(f, i)
                b = g2(f, i)
                return type(a) is str and type(b) is str and (a, b) in index
        else:

            def test(f: DecisionInput, i: Any) -> bool:
                key = tuple(g(f, i) for g in gets)
                return all(type(v) is str for v in key) and key in index

        def explain(f: DecisionInput, i: Any) -> str:
            got = ", ".join(f"{c} = {_show(g(f, i))}" for c, g in zip(names, gets, strict=True))
            found = "exists" if test(f, i) else "does not exist"
            return f"a row of {table_name} with {got}: {found}"

        # An empty table is not "never": overlays fill tables per environment on purpose.
        partial = _row_partial(tuple(self.sym(g) for g in gets), index)
        return Cond(test, explain, text, partial=partial)

    def _value(self, value: Any, path: JsonPath, in_item: bool) -> Getter:
        """A right-hand value: ``{fact: path}`` or a literal."""
        if isinstance(value, dict):
            if set(value) != {"fact"}:
                raise self.error(path, "expected a literal or {fact: <path>}")
            return self.fact_getter(value["fact"], (*path, "fact"), in_item)
        if isinstance(value, list):
            raise self.error(
                path, "expected a single value here, got a list", "to test membership use in:"
            )
        constant = literal(value)
        get: Getter = lambda _f, _i: constant  # noqa: E731
        known = Sym(constant)
        self._syms[get] = lambda _op, _i: known
        return get

    @staticmethod
    def _value_text(value: Any) -> str:
        if isinstance(value, dict) and "fact" in value:
            return str(value["fact"])
        return repr(literal(value))

    # ------------------------------------------------------------------ facts
    def _fact(self, node: dict[str, Any], path: JsonPath, op: str, in_item: bool) -> Cond:
        fact_path = node["fact"]
        get = self.fact_getter(fact_path, (*path, "fact"), in_item)
        arg = node[op]
        at = (*path, op)
        handler = getattr(self, "_op_" + op)
        cond: Cond = handler(fact_path, get, arg, at, in_item)
        if str(fact_path).split(".")[0] == "item" and not _names_a_fact(arg):
            cond = replace(cond, item_only=True)
        if fact_path == "operation.selected" and (
            cond.per_list if op in ("every", "some") else not _names_a_fact(arg)
        ):
            # Reads the selection alone, which a plan fixes: decided on its symbolic facts.
            test = cond.test
            cond = replace(
                cond,
                selected_only=True,
                partial=lambda op, i: bool(test(_symbolic_input(op), i)),
            )
        return cond

    def _op_equals(self, name: str, get: Getter, arg: Any, at: JsonPath, in_item: bool) -> Cond:
        if isinstance(arg, dict):
            other = self._value(arg, at, in_item)
            other_name = str(arg.get("fact"))

            def test(f: DecisionInput, i: Any) -> bool:
                a = get(f, i)
                return a is not None and a == other(f, i)

            return Cond(
                test,
                lambda f, i: (
                    f"{name} is {_show(get(f, i))}, must equal {other_name} ({_show(other(f, i))})"
                ),
                f"{name} equals {other_name}",
                partial=_binary(self.sym(get), self.sym(other), _equal_other),
            )
        if isinstance(arg, list):
            raise self.error(at, "equals: takes one value", "to test membership use in:")
        want = literal(arg)
        never = False
        if name == "operation.type" and want not in ("query", "mutation", "subscription"):
            never = True
        if isinstance(want, bool):

            def test(f: DecisionInput, i: Any) -> bool:
                return get(f, i) is want

            def check(v: Any) -> bool:
                return v is want

            CHECK_FORMS[check] = ("is", want)
        elif want is None:
            raise self.error(at, "equals: needs a value", "to test absence use present: false")
        else:

            def test(f: DecisionInput, i: Any) -> bool:
                return bool(get(f, i) == want)

            def check(v: Any) -> bool:
                return bool(v == want)

            CHECK_FORMS[check] = ("eq", want)

        keyed = (name, want, get, None) if type(want) is str and not in_item else None
        return Cond(
            test,
            lambda f, i: f"{name} is {_show(get(f, i))}, must equal {want!r}",
            f"{name} equals {want!r}",
            never,
            keyed=keyed,
            partial=_unary(self.sym(get), check),
        )

    def _op_in(self, name: str, get: Getter, arg: Any, at: JsonPath, in_item: bool) -> Cond:
        if isinstance(arg, str):
            values = self.named_list(arg, at)
            label = f"list {arg}"
            never = False  # a data list may be empty in one environment on purpose
        elif isinstance(arg, list):
            bad = [n for n, v in enumerate(arg) if isinstance(v, dict | list)]
            if bad:
                raise self.error((*at, bad[0]), "list items must be plain values")
            values = frozenset(str(literal(v)) for v in arg if v is not None)
            label = _show(values)
            never = not values
        else:
            raise self.error(
                at,
                "in: takes a list name or a list of values",
                "e.g. in: afzender_id_types, or in: [UZOVI, AGB]",
            )

        def test(f: DecisionInput, i: Any) -> bool:
            v = get(f, i)
            return type(v) is str and v in values

        return Cond(
            test,
            lambda f, i: f"{name} is {_show(get(f, i))}, must be in {label}",
            f"{name} in {label}",
            never,
            partial=_unary(self.sym(get), _in_check(values)),
        )

    def _op_subset_of(self, name: str, get: Getter, arg: Any, at: JsonPath, in_item: bool) -> Cond:
        if isinstance(arg, str):
            values = self.named_list(arg, at)
            label = f"list {arg}"
        elif isinstance(arg, list) and all(isinstance(v, str | int) for v in arg):
            values = frozenset(str(literal(v)) for v in arg)
            label = _show(values)
        else:
            raise self.error(at, "subset_of: takes a list name or a list of values")

        # A mapping (an input object such as a where filter) is tested by its keys.
        def test(f: DecisionInput, i: Any) -> bool:
            v = get(f, i)
            if type(v) is dict:  # an input object's keys: always text
                return values.issuperset(v)
            if not isinstance(v, list | tuple | frozenset | set | Mapping):
                return False
            return all(type(x) is str and x in values for x in v)

        def explain(f: DecisionInput, i: Any) -> str:
            v = get(f, i)
            if isinstance(v, Mapping):
                v = list(v)
            if not isinstance(v, list | tuple | frozenset | set):
                return f"{name} is {_show(v)}, not a list"
            outside = [x for x in v if not (type(x) is str and x in values)]
            if outside:
                return f"{name} has {_show(outside)} outside {label}"
            return f"{name} {_show(list(v))} all in {label}"

        def check(v: Any) -> bool:
            if type(v) is dict:  # an input object's keys: always text
                return values.issuperset(v)
            if not isinstance(v, list | tuple | frozenset | set | Mapping):
                return False
            return all(type(x) is str and x in values for x in v)

        sym = self.sym(get)
        by_values = _unary(sym, check)

        def partial(op: OperationFacts, item: Any) -> Residual:
            s = sym(op, item)
            if type(s.value) is dict:  # a where filter with variables inside: its keys
                return bool(values.issuperset(s.value))
            return by_values(op, item)

        return Cond(test, explain, f"{name} only from {label}", partial=partial)

    def _op_contains(self, name: str, get: Getter, arg: Any, at: JsonPath, in_item: bool) -> Cond:
        other = self._value(arg, at, in_item)

        # The selected paths are one tuple per query text: look them up in a frozenset
        # built once per tuple (a scan of a hundred paths per check costs more).
        as_set = IdentityMemo()
        seen = as_set.seen

        if not isinstance(arg, dict) and type(literal(arg)) is str:
            # A literal path (a nested date window's `when:`): the answer depends on the
            # tuple alone, so remember the answer itself per tuple.
            wanted = literal(arg)
            answers = IdentityMemo()
            known = answers.seen

            def contains_literal(f: DecisionInput, i: Any) -> bool:
                v = get(f, i)
                hit = known.get(id(v))
                if hit is not None and hit[0] is v:
                    return bool(hit[1])
                if type(v) is tuple:
                    return bool(answers.get(v, lambda: wanted in frozenset(v)))
                return isinstance(v, list | frozenset | set) and wanted in v

            return Cond(
                contains_literal,
                lambda f, i: f"{name} is {_show(get(f, i))}, must contain {wanted!r}",
                f"{name} contains {self._value_text(arg)}",
            )

        def test(f: DecisionInput, i: Any) -> bool:
            v = get(f, i)
            w = other(f, i)
            if type(w) is not str:
                return False
            if type(v) is tuple:
                hit = seen.get(id(v))
                if hit is not None and hit[0] is v:
                    return w in hit[1]
                return w in as_set.get(v, lambda: frozenset(v))
            if not isinstance(v, list | frozenset | set):
                return False
            return w in v

        return Cond(
            test,
            lambda f, i: f"{name} is {_show(get(f, i))}, must contain {_show(other(f, i))}",
            f"{name} contains {self._value_text(arg)}",
        )

    def _op_present(self, name: str, get: Getter, arg: Any, at: JsonPath, in_item: bool) -> Cond:
        if not isinstance(arg, bool):
            raise self.error(at, "present: takes true or false")
        if arg:

            def test(f: DecisionInput, i: Any) -> bool:
                v = get(f, i)
                return v is not None and v != "" and v != [] and v != {}
        else:

            def test(f: DecisionInput, i: Any) -> bool:
                v = get(f, i)
                return v is None or v == "" or v == [] or v == {}

        def check(v: Any) -> bool:
            found = v is not None and v != "" and v != [] and v != {}
            return found if arg else not found

        CHECK_FORMS[check] = ("present", arg)

        word = "present" if arg else "absent"
        return Cond(
            test,
            lambda f, i: f"{name} is {_show(get(f, i))}, must be {word}",
            f"{name} is {word}",
            # Variables inside a value do not make it empty or not: decided by its shape.
            partial=_unary(self.sym(get), check, shape=True),
        )

    def _op_pattern(self, name: str, get: Getter, arg: Any, at: JsonPath, in_item: bool) -> Cond:
        if not isinstance(arg, str):
            raise self.error(at, "pattern: takes a regular expression")
        try:
            rx = re.compile(arg)
        except re.error as exc:
            raise self.error(
                at,
                f"invalid regular expression: {exc}",
                "the whole value must match; quote the pattern in YAML",
            ) from None
        match = rx.fullmatch

        def test(f: DecisionInput, i: Any) -> bool:
            v = get(f, i)
            return type(v) is str and match(v) is not None

        return Cond(
            test,
            lambda f, i: f"{name} is {_show(get(f, i))}, must match {arg!r}",
            f"{name} matches {arg!r}",
            partial=_unary(self.sym(get), _pattern_check(match)),
        )

    def _op_format(self, name: str, get: Getter, arg: Any, at: JsonPath, in_item: bool) -> Cond:
        if arg not in FORMATS:
            raise self.error(at, f"unknown format {arg!r}", "one of: " + ", ".join(FORMATS))
        check = _valid_date_time if arg == "date-time" else _valid_date

        def test(f: DecisionInput, i: Any) -> bool:
            return check(get(f, i))

        return Cond(
            test,
            lambda f, i: f"{name} is {_show(get(f, i))}, must be an ISO-8601 {arg}",
            f"{name} is a {arg}",
            partial=_unary(self.sym(get), check),
        )

    def _op_count(self, name: str, get: Getter, arg: Any, at: JsonPath, in_item: bool) -> Cond:
        if not isinstance(arg, dict) or not arg or set(arg) - {"min", "max"}:
            raise self.error(at, "count: takes min: and/or max:", "e.g. count: {min: 1}")
        low = arg.get("min", 0)
        high = arg.get("max", 1 << 62)
        if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in (low, high)):
            raise self.error(at, "count: min and max must be whole numbers >= 0")
        never = low > high

        def check(v: Any) -> bool:
            return isinstance(v, list | tuple) and low <= len(v) <= high

        CHECK_FORMS[check] = ("count", low, high)

        def test(f: DecisionInput, i: Any) -> bool:
            return check(get(f, i))

        def explain(f: DecisionInput, i: Any) -> str:
            v = get(f, i)
            n = len(v) if isinstance(v, list | tuple) else "no list"
            return f"{name} has {n} items, must have {arg}"

        return Cond(
            test, explain, f"{name} count {arg}", never, partial=_unary(self.sym(get), check)
        )

    def _items(self, word: str, name: str, get: Getter, arg: Any, at: JsonPath) -> Cond:
        inner = self.compile(arg, at, in_item=True)
        inner_test = inner.test
        kinds = (list, tuple, frozenset, set)  # a set: token.scopes

        # Plain loops: a generator per call costs more than the one or two items tested.
        if word == "every":

            def over(f: DecisionInput, v: Any) -> bool:
                if not isinstance(v, kinds):
                    return False
                for x in v:  # noqa: SIM110
                    if not inner_test(f, x):
                        return False
                return True
        else:

            def over(f: DecisionInput, v: Any) -> bool:
                if not isinstance(v, kinds):
                    return False
                for x in v:  # noqa: SIM110
                    if inner_test(f, x):
                        return True
                return False

        def scan(f: DecisionInput, i: Any) -> bool:
            return over(f, get(f, i))

        test = scan
        if inner.item_only:
            memo = IdentityMemo()
            seen = memo.seen

            def test(f: DecisionInput, i: Any) -> bool:
                v = get(f, i)
                hit = seen.get(id(v))
                if hit is not None and hit[0] is v:
                    return bool(hit[1])
                return bool(memo.get(v, lambda: scan(f, i)))

            SHAPES[test] = ("memo", get, seen)

        def witness(f: DecisionInput, i: Any) -> str | None:
            v = get(f, i)
            found = next((x for x in v if inner_test(f, x)), None) if isinstance(v, kinds) else None
            return None if found is None else str(found)

        def explain(f: DecisionInput, i: Any) -> str:
            v = get(f, i)
            if not isinstance(v, kinds):
                return f"{name} is {_show(v)}, not a list"
            v = sorted(v) if isinstance(v, frozenset | set) else v
            failing = [n for n, x in enumerate(v) if not inner_test(f, x)]
            if word == "every":
                if not failing:
                    return f"every item of {name} ({len(v)}) passes {inner.text}"
                n = failing[0]
                return f"{name}[{n}]: " + inner.explain(f, v[n])
            passing = [n for n in range(len(v)) if n not in failing]
            return (
                f"{name}[{passing[0]}] passes {inner.text}"
                if passing
                else f"no item of {name} ({len(v)}) passes {inner.text}"
            )

        return Cond(
            test,
            explain,
            f"{word} item of {name}: {inner.text}",
            inner.never,
            witness if word == "some" else None,
            per_list=inner.item_only,
            partial=self._items_partial(
                word, self.sym(get), get, inner, test, over, _item_fields_only(arg)
            ),
        )

    @staticmethod
    def _items_partial(
        word: str,
        sym: SymGetter,
        get: Getter,
        inner: Cond,
        test: Test,
        over: Callable[[DecisionInput, Any], bool],
        one_field: bool = False,
    ) -> Partial:
        """``every``/``some`` over a list the plan fixes the length of (the argument sets of
        a nested field: ``args_at``): the inner condition partially evaluated per item, the
        request's own items passed to what is left. Any other list: the full test."""

        def partial(op: OperationFacts, item: Any) -> Residual:
            s = sym(op, item)
            items = s.value
            if type(items) is not list and type(items) is not tuple:
                if items is None and s.read is None:
                    return False
                name = _variable(s)
                if name is None or inner.item_only:
                    return test
                # The list is a variable's own value: read in place, and its items tested
                # where the generated function can loop over them (gateway/policy/fused.py):
                # the inner condition's residual for an item whose fields are ITEM_FIELD
                # marks, when each item fact it reads is one field (else None: called).
                items_of: Test = lambda f, i: over(f, f.operation.variables[name])  # noqa: E731
                per_item = residual(inner, op, ITEM_VIEW) if one_field else None
                SHAPES[items_of] = (word, ("var", name), inner.test, per_item)
                return _item_free_if(items_of, [s])
            left = [(n, residual(inner, op, x)) for n, x in enumerate(items)]
            decided = [r for _n, r in left if type(r) is bool]
            if word == "every" and False in decided:
                return False
            if word == "some" and True in decided:
                return True
            left = [(n, r) for n, r in left if type(r) is not bool]
            if not left:
                return word == "every"
            if all(r in ITEM_FREE for _n, r in left):
                # The items' tests read no item: each distinct one once (an every over
                # one selection is its single test, which the engine can share).
                tests = [r for _n, r in left]
                return all_residual(tests) if word == "every" else _any_of(tests)
            count = len(items)
            pairs = tuple(left)
            want = word == "every"

            def items_left(f: DecisionInput, i: Any) -> bool:
                v = get(f, i)
                if (type(v) is not list and type(v) is not tuple) or len(v) != count:
                    return test(f, i)  # not the plan's shape (never, by construction)
                # Plain loops: a generator per call costs more than the one or two items.
                if want:
                    for n, r in pairs:  # noqa: SIM110
                        if not r(f, v[n]):  # type: ignore[operator]
                            return False
                    return True
                for n, r in pairs:  # noqa: SIM110
                    if r(f, v[n]):  # type: ignore[operator]
                        return True
                return False

            return items_left

        return partial

    def _op_every(self, name: str, get: Getter, arg: Any, at: JsonPath, in_item: bool) -> Cond:
        return self._items("every", name, get, arg, at)

    def _op_some(self, name: str, get: Getter, arg: Any, at: JsonPath, in_item: bool) -> Cond:
        return self._items("some", name, get, arg, at)

    def _op_not_before(self, name: str, get: Getter, arg: Any, at: JsonPath, in_item: bool) -> Cond:
        """Two ISO-8601 dates (or date-times of one form): the fact is on or after *arg*.

        Two dates, or two date-times (compared as instants); anything else fails."""
        other = self._value(arg, at, in_item)
        label = self._value_text(arg)

        def check(a: Any, b: Any) -> bool:
            if type(a) is not str or type(b) is not str:
                return False
            if _valid_date(a) and _valid_date(b):
                return a >= b
            if _valid_date_time(a) and _valid_date_time(b):
                return _instant(a) >= _instant(b)
            return False

        CHECK_FORMS[check] = ("not_before",)

        def test(f: DecisionInput, i: Any) -> bool:
            return check(get(f, i), other(f, i))

        return Cond(
            test,
            lambda f, i: (
                f"{name} is {_show(get(f, i))}, must not be before {label} ({_show(other(f, i))})"
            ),
            f"{name} not before {label}",
            partial=_binary(self.sym(get), self.sym(other), check),
        )

    def _op_overlaps(self, name: str, get: Getter, arg: Any, at: JsonPath, in_item: bool) -> Cond:
        """The fact (a record) has a period overlapping another's (:class:`Period`): one
        record, any of a list of records, or a date (a one-day period). A period without a
        readable start overlaps nothing (fail closed)."""
        mine = self._period(arg.get("period"), (*at, "period"))
        theirs = mine.without_extension()
        if "with_period" in arg:
            theirs = self._period(arg["with_period"], (*at, "with_period"))
        other = self._value(arg.get("with"), (*at, "with"), in_item)
        label = self._value_text(arg.get("with"))

        def test(f: DecisionInput, i: Any) -> bool:
            span = mine.span(get(f, i))
            return span is not None and any(_overlap(span, s) for s in theirs.spans(other(f, i)))

        return Cond(
            test,
            lambda f, i: (
                f"{name} {mine.show(get(f, i))} "
                f"{'overlaps' if test(f, i) else 'overlaps none of'} {label} "
                f"{[theirs.show(v) for v in theirs.records(other(f, i))]}"
            ),
            f"{name} overlaps {label}",
        )

    def _period(self, spec: Any, at: JsonPath) -> Period:
        if not isinstance(spec, dict) or not (spec.get("from") or spec.get("through")):
            raise self.error(
                at, "a period needs from: [keys] and/or through: key", "e.g. {from: [ingangsdatum]}"
            )
        extended = spec.get("extended_to")
        if extended is not None:
            try:
                dt.date(2000, int(extended[:2]), int(extended[3:]))
            except (ValueError, TypeError):
                raise self.error(
                    (*at, "extended_to"), f"{extended!r} is not a day of the year", "MM-DD"
                ) from None
        return Period(tuple(spec.get("from") or ()), spec.get("through"), extended)

    def _op_fields(self, name: str, get: Getter, arg: Any, at: JsonPath, in_item: bool) -> Cond:
        """Selected field paths, each allowed by the entry for the path it sits under.

        ``{PARENT: [names]}``: a selected ``a.b.c`` passes when an entry whose key matches
        ``a.b`` (``.`` is the root field itself, ``*`` one step) names ``c``; a name is a
        field group (a data list) or one field. A group is Capitalised, so a misspelt
        group is a load error rather than a field nobody selects."""
        if not isinstance(arg, dict) or not arg:
            raise self.error(
                at,
                "fields: takes {parent path: [field groups or fields]}",
                "e.g. fields: {'.': [BS14, bemiddeling], bemiddeling: [Bem5]}",
            )
        exact: dict[str, frozenset[str]] = {}
        wild: list[tuple[re.Pattern[str], frozenset[str]]] = []
        for key, names in arg.items():
            if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
                raise self.error((*at, key), "expected a list of field groups or fields")
            allowed: set[str] = set()
            for n, entry in enumerate(names):
                if entry in self.data.lists:
                    allowed |= self.data.lists[entry]
                elif entry[:1].isupper():
                    allowed |= self.named_list(entry, (*at, key, n))  # raises: unknown list
                else:
                    allowed.add(entry)
            key = str(key)
            if "*" in key:
                rx = re.compile(r"[^.]+".join(map(re.escape, key.split("*"))))
                wild.append((rx, frozenset(allowed)))
            else:
                exact[key] = frozenset(allowed) | exact.get(key, frozenset())

        def allowed_at(parent: str) -> frozenset[str]:
            found = exact.get(parent, frozenset())
            for rx, more in wild:
                if rx.fullmatch(parent):
                    found = found | more
            return found

        def first_outside(v: tuple[Any, ...]) -> str | None:
            for path in v:
                if type(path) is not str:
                    return repr(path)
                parent, _, leaf = path.rpartition(".")
                if leaf not in allowed_at(parent or "."):
                    return path
            return None

        # A query text selects the same paths (one tuple) every time: remember the verdict.
        memo = IdentityMemo()
        seen = memo.seen

        def outside(f: DecisionInput, i: Any) -> str | None:
            v = get(f, i)
            hit = seen.get(id(v))
            if hit is not None and hit[0] is v:
                known: str | None = hit[1]
                return known
            if not isinstance(v, tuple):
                return "(no selection)"
            found: str | None = memo.get(v, lambda: first_outside(v))
            return found

        def test(f: DecisionInput, i: Any) -> bool:
            return outside(f, i) is None

        def explain(f: DecisionInput, i: Any) -> str:
            bad = outside(f, i)
            return (
                f"{name}: {bad} is not allowed there" if bad else f"{name}: every field is allowed"
            )

        keys = ", ".join(map(str, arg))
        return Cond(test, explain, f"{name} only the fields allowed under {keys}", culprit=outside)

    def _op_date_window(
        self, name: str, get: Getter, arg: Any, at: JsonPath, in_item: bool
    ) -> Cond:
        """A nested list's ``where`` that never returns rows outside the window.

        ``{end: <field>, from: [{fact: ..}, ..]}``: the filter holds an ``or`` (at its top,
        or as an item of its ``and``) whose every alternative bounds ``<field>`` alone:
        ``{eq: null}``, or ``eq``/``gte``/``gt`` a date on or after one of the ``from``
        values (a date, or the calendar day of a date-time as written).
        ``start: <field>, until: [{fact: .., years: N, day: MM-DD}, ..]`` (optional): when
        an ``until`` value is a date (a closed window), the filter also bounds ``<field>``
        from above (at its top or as an item of its ``and``: ``ngt``/``lte``/``lt`` a date
        not after one of them; ``years`` added, then ``day`` set: 31 May of the next year
        is ``{years: 1, day: 05-31}``). One compiled closure: these windows sit on every
        nested list of the biggest templates."""
        keys = set(arg) if isinstance(arg, dict) else set()
        if (
            not {"end", "from"} <= keys <= {"end", "from", "start", "until"}
            or ("start" in keys) != ("until" in keys)
            or not all(isinstance(arg[k], str) and arg[k] for k in keys & {"end", "start"})
            or not all(isinstance(arg[k], list) and arg[k] for k in keys & {"from", "until"})
        ):
            raise self.error(
                at,
                "date_window: takes end: <field> and from: [{fact: ...}, ...] "
                "(and optionally start: <field> with until: [{fact: ...}, ...])",
                "e.g. date_window: {end: einddatum, from: [{fact: args.where.overdrachtDatum.eq}]}",
            )
        end: str = arg["end"]
        floors = tuple(self._value(v, (*at, "from", n), in_item) for n, v in enumerate(arg["from"]))
        start: str | None = arg.get("start")
        ceilings = tuple(
            self._ceiling(v, (*at, "until", n), in_item) for n, v in enumerate(arg.get("until", ()))
        )
        floor_names = ", ".join(self._value_text(v) for v in arg["from"])
        bounds = frozenset({"eq", "gte", "gt"})
        open_end = {"eq": None}
        request_only = not any(
            isinstance(v, dict) and str(v.get("fact", "")).split(".")[0] == "item"
            for v in arg["from"]
        )

        last = self._window_days.setdefault(floor_names, [(None, None)])
        until_text = repr(arg.get("until"))
        until_seen = self._window_days.setdefault("until " + until_text, [(None, None)])
        until_request_only = not any(
            isinstance(v, dict) and str(v.get("fact", "")).split(".")[0] == "item"
            for v in arg.get("until", ())
        )

        def first_day(f: DecisionInput, i: Any) -> str | None:
            """The window's first day: the earliest ``from`` value that is a date or a
            date-time (its own calendar day); None when none is. Kept for the request being
            decided (the facts object is held, so ``is`` cannot match another request):
            every selection of every nested list shares it."""
            seen_f, seen_day = last[0]
            if seen_f is f:
                return seen_day
            first = None
            for floor in floors:
                v = floor(f, i)
                if _valid_date(v):
                    pass
                elif _valid_date_time(v):
                    v = v[:10]
                else:
                    continue
                if first is None or v < first:
                    first = v
            if request_only:
                last[0] = (f, first)
            return first

        def or_fault(alts: Any, first: str | None) -> str | None:
            """Why the alternatives of one ``or`` do not bound the window (None: they do).
            One loop, no helper calls: this runs for every nested list of a template."""
            if type(alts) is not list or not alts:
                return "no or: alternatives"
            for alt in alts:
                if type(alt) is not dict or len(alt) != 1:
                    return f"an alternative bounds more than {end}"
                ops = alt.get(end)
                if type(ops) is not dict or not ops or not bounds.issuperset(ops):
                    return f"an alternative does not bound {end} with eq, gte or gt"
                for op, v in ops.items():
                    if v is None and op == "eq":
                        continue
                    if type(v) is not str or len(v) != 10 or not _date_text(v):
                        return f"{end}.{op} is {_show(v)}, not a date"
                    if first is None or v < first:
                        return f"{end}.{op} {v} is before the window ({floor_names}: {first})"
            return None

        def fault(f: DecisionInput, i: Any) -> str | None:
            where = get(f, i)
            if type(where) is not dict:
                return "no where filter"
            first = first_day(f, i)
            found = "no or: on " + end
            alts = where.get("or")
            if alts is not None:
                found = or_fault(alts, first) or ""
                if not found:
                    return upper_fault(where, f, i)
            conj = where.get("and")
            if type(conj) is list:
                for part in conj:
                    if type(part) is dict and "or" in part:
                        found = or_fault(part["or"], first) or ""
                        if not found:
                            return upper_fault(where, f, i)
            return found

        def last_day(f: DecisionInput, i: Any) -> str | None:
            """The window's last day: the latest ``until`` value (None: an open window).
            Kept for the request being decided, as the first day."""
            seen_f, ceiling_day = until_seen[0]
            if seen_f is f:
                return ceiling_day  # type: ignore[no-any-return]
            ceiling_day = None
            for ceiling in ceilings:
                day = ceiling(f, i)
                if day is not None and (ceiling_day is None or day > ceiling_day):
                    ceiling_day = day
            if until_request_only:
                until_seen[0] = (f, ceiling_day)
            return ceiling_day

        def upper_fault(where: dict[str, Any], f: DecisionInput, i: Any) -> str | None:
            """Why a closed window's start is not bounded from above (None: it is)."""
            if start is None:
                return None
            ceiling_day = last_day(f, i)
            if ceiling_day is None:
                return None  # an open window (no until date): no upper bound needed
            parts = [where.get(start)]
            conj = where.get("and")
            if type(conj) is list:
                parts.extend(p.get(start) for p in conj if type(p) is dict)
            for ops in parts:
                if type(ops) is dict and bounded(ops, ceiling_day):
                    return None
            return f"{start} is not bounded by ngt a date not after {ceiling_day}"

        def alts_ok(alts: Any, first: str | None) -> bool:
            """``or_fault(alts, first) is None``, without building a reason."""
            if type(alts) is not list or not alts:
                return False
            for alt in alts:
                if type(alt) is not dict or len(alt) != 1:
                    return False
                ops = alt.get(end)
                if type(ops) is not dict or not ops:
                    return False
                if ops == open_end:  # {eq: null}: one comparison in C
                    continue
                for op, v in ops.items():
                    if (
                        op not in bounds
                        or type(v) is not str
                        or len(v) != 10
                        or first is None
                        or v < first
                        or not _date_text(v)
                    ) and (v is not None or op != "eq"):
                        return False
            return True

        def upper_ok(where: dict[str, Any], f: DecisionInput, i: Any) -> bool:
            """``upper_fault(where, f, i) is None``, without building a reason."""
            if start is None:
                return True
            seen_f, ceiling_day = until_seen[0]
            if seen_f is not f:
                ceiling_day = last_day(f, i)
            if ceiling_day is None:
                return True
            ops = where.get(start)
            if type(ops) is dict and bounded(ops, ceiling_day):
                return True
            conj = where.get("and")
            if type(conj) is list:
                for part in conj:
                    if type(part) is dict:
                        ops = part.get(start)
                        if type(ops) is dict and bounded(ops, ceiling_day):
                            return True
            return False

        # The lower bound reads only the alternatives, ``end`` and the first day: windows
        # with another upper bound (the regiehouders' and the contacts') share it.
        or_memo = self._window_verdicts.setdefault(("or", end, floor_names), [(None, [])])

        def or_ok(alts: Any, f: DecisionInput, first: str | None) -> bool:
            """``alts_ok``, kept per request (as ``test`` below) for equal alternatives."""
            if not request_only:
                return alts_ok(alts, first)
            seen_f, known = or_memo[0]
            if seen_f is f:
                for a, ok in known:
                    if a is alts or a == alts:
                        return bool(ok)
            else:
                known = []
                or_memo[0] = (f, known)
            ok = alts_ok(alts, first)
            known.append((alts, ok))
            return ok

        def verdict(where: dict[str, Any], f: DecisionInput, i: Any) -> bool:
            """``fault(f, i) is None`` for this where filter."""
            seen_f, first = last[0]
            if seen_f is not f:
                first = first_day(f, i)
            alts = where.get("or")
            if alts is not None and or_ok(alts, f, first):
                return upper_ok(where, f, i)
            conj = where.get("and")
            if type(conj) is list:
                for part in conj:
                    if type(part) is dict and "or" in part and or_ok(part["or"], f, first):
                        return upper_ok(where, f, i)
            return False

        # The checks of one spec (the contacts' three lists) often carry equal filters in
        # one request: each filter's verdict is kept for the request being decided (held,
        # so ``is`` cannot match another request) and reused for an equal filter. The
        # verdict reads nothing else of the request (first day and last day are the
        # request's own, one per spec), so equal inputs give the equal answer.
        memo = self._window_verdicts.setdefault((end, start, floor_names, until_text), [(None, [])])
        memo_ok = request_only and until_request_only

        def test(f: DecisionInput, i: Any) -> bool:
            where = get(f, i)
            if type(where) is not dict:
                return False
            if not memo_ok:
                return verdict(where, f, i)
            seen_f, known = memo[0]
            if seen_f is f:
                for w, ok in known:
                    if w is where or w == where:
                        return bool(ok)
            else:
                known = []
                memo[0] = (f, known)
            ok = verdict(where, f, i)
            known.append((where, ok))
            return ok

        def explain(f: DecisionInput, i: Any) -> str:
            found = fault(f, i)
            if found is None:
                return f"{name} bounds {end} from {floor_names}"
            return f"{name}: {found}"

        partial = _window_partial(
            self._window_residuals,
            self.sym(get),
            [self.sym(g) for g in floors],
            [self.sym(g) for g in ceilings],
            end,
            start,
            bounds,
            test,
        )
        return Cond(
            test, explain, f"{name} is a date window on {end} from {floor_names}", partial=partial
        )

    def _ceiling(self, value: Any, path: JsonPath, in_item: bool) -> Getter:
        """An ``until:`` entry: ``{fact: F}`` with optional ``years: N`` (added) and
        ``day: MM-DD`` (then set) -> the last allowed day, a date (None: F is no date)."""
        if (
            not isinstance(value, dict)
            or "fact" not in value
            or set(value)
            - {
                "fact",
                "years",
                "day",
            }
        ):
            raise self.error(path, "until: entries are {fact: ..., years: N, day: MM-DD}")
        years = value.get("years", 0)
        day = value.get("day")
        if not isinstance(years, int) or isinstance(years, bool) or not 0 <= years <= 100:
            raise self.error((*path, "years"), "years: a whole number 0..100")
        if day is not None and (
            not isinstance(day, str) or not _date_text("2000-" + day) or len(day) != 5
        ):
            raise self.error((*path, "day"), "day: a month and day, e.g. '05-31'")
        get = self.fact_getter(value["fact"], (*path, "fact"), in_item)

        def last(v: Any) -> str | None:
            if not _valid_date(v):
                return None
            if not years and day is None:
                return str(v)
            return _shifted_day(v, years, day)

        def ceiling(f: DecisionInput, i: Any) -> str | None:
            return last(get(f, i))

        sym = self.sym(get)

        def symbolic(op: OperationFacts, item: Any) -> Sym:
            s = sym(op, item)
            read = s.read
            if read is None:
                return Sym(last(s.value))
            key = ("until", years, day, s.key) if s.key is not None else None
            return Sym(UNKNOWN, lambda f, i: last(read(f, i)), key)

        self._syms[ceiling] = symbolic
        return ceiling


# ---------------------------------------------------------------- date windows, per plan


class _Shapeless(Exception):
    """A variable where a date window's filter has structure (an ``or:`` list, an
    alternative, an operator mapping): the full test decides."""


_Leaf = tuple[str | None, Any]
"""A filter's date as the plan has it: ``(variable name, None)`` or ``(None, literal)``."""


def _leaf(value: Any) -> _Leaf:
    return (value.name, None) if type(value) is Var else (None, value)


def _structure(value: Any) -> Any:
    if type(value) is Var:
        raise _Shapeless
    return value


def _direct(s: Sym) -> tuple[str | None, Getter | None, Any]:
    """``(variable name, None, None)`` for a variable's own value, ``(None, None, value)``
    for a value the plan fixes, else ``(None, getter, None)``."""
    key = s.key
    if s.read is None:
        return None, None, s.value
    if key is not None and key[0] == "var" and not key[2]:
        return key[1], None, None
    return None, s.read, None


def _direct_until(s: Sym) -> tuple[str | None, Getter | None, Any, int, str | None]:
    """An ``until:`` value as :func:`_direct`, with its ``years`` and ``day`` when it is
    computed from a variable's own value (then applied in place)."""
    key = s.key
    if s.read is None:
        return None, None, s.value, 0, None
    inner = key[3] if key is not None and key[0] == "until" else None
    if inner is not None and inner[0] == "var" and not inner[2]:
        return inner[1], None, None, key[1], key[2]
    return None, s.read, None, 0, None


def _shared(shared: dict[Any, Test], key: Any, build: Callable[[], Any], reads: list[Sym]) -> Test:
    """The test for *key* built once (the same object for every window with that key),
    noted as reading no item when none of *reads* does."""
    try:
        known = shared.get(key)
    except TypeError:  # a literal list or mapping in the key: not shared
        return _item_free_if(build(), reads)
    if known is not None:
        return known
    if len(shared) >= IdentityMemo.SIZE:
        shared.clear()
    test = shared[key] = _item_free_if(build(), reads)
    return test


def _lower(
    floor_values: list[Sym], alternative_dates: tuple[tuple[tuple[str | None, Any], ...], ...]
) -> Test:
    """The lower bound left per request: one list of alternatives has each of its dates
    ``{eq: null}`` (a variable's null) or a date on or after the window's first day."""
    floors = tuple(_direct(v) for v in floor_values)

    def lower(f: DecisionInput, i: Any) -> bool:
        # A variable's value is read from the variables in place (no getter call).
        variables = f.operation.variables
        first = None
        for name, read, v in floors:
            if name is not None:
                v = variables[name]
            elif read is not None:
                v = read(f, i)
            if type(v) is not str:
                continue
            if len(v) == 10 and _date_text(v):
                pass
            elif _date_time_text(v):
                v = v[:10]
            else:
                continue
            if first is None or v < first:
                first = v
        for dates in alternative_dates:
            for name, v in dates:
                if name is not None:
                    eq = v
                    v = variables[name]
                    if v is None:
                        if eq:
                            continue
                        break
                    if type(v) is not str or len(v) != 10 or not _date_text(v):
                        break
                if first is None or v < first:
                    break
            else:
                return True  # this list passes
        return False

    SHAPES[lower] = ("lower", floors, alternative_dates)
    return lower


def _upper(ceiling_values: list[Sym], upper_dates: tuple[_Leaf, ...]) -> Test:
    """The upper bound left per request (a closed window): a ``start`` bound is a date not
    after the window's last day; an open window (no last day) needs none."""
    ceilings = tuple(_direct_until(v) for v in ceiling_values)

    def upper(f: DecisionInput, i: Any) -> bool:
        variables = f.operation.variables
        last = None
        for name, read, day, years, month_day in ceilings:
            if name is not None:
                v = variables[name]
                if type(v) is not str or len(v) != 10 or not _date_text(v):
                    continue
                day = v if not years and month_day is None else _shifted_day(v, years, month_day)
            elif read is not None:
                day = read(f, i)
            if day is not None and (last is None or day > last):
                last = day
        if last is None:
            return True
        for name, v in upper_dates:
            if name is not None:
                v = variables[name]
            if type(v) is str and len(v) == 10 and v <= last and _date_text(v):
                return True
        return False

    SHAPES[upper] = ("upper", ceilings, upper_dates)
    return upper


def _window_partial(
    shared: dict[Any, Test],
    where_sym: SymGetter,
    floor_syms: list[SymGetter],
    ceiling_syms: list[SymGetter],
    end: str,
    start: str | None,
    bounds: frozenset[str],
    test: Test,
) -> Partial:
    """``date_window`` evaluated against a plan's where filter: its structure (the ``or``
    alternatives, which bound ``end`` with which operator, where ``start`` is bounded) is
    the plan's, so only the dates that come from variables, and the window's first and
    last day, are left per request. The same answer as ``test``: an alternative list
    passes when each of its dates is ``{eq: null}`` or a date on or after the first day;
    the filter passes when one list passes and (closed window) a ``start`` bound is a
    date not after the last day."""

    def alternatives(alts: Any) -> list[tuple[str | None, Any]] | None:
        """The dates a list of alternatives must have on or after the first day (None:
        it never passes)."""
        alts = _structure(alts)
        if type(alts) is not list or not alts:
            return None
        dates: list[tuple[str | None, Any]] = []
        for alt in alts:
            alt = _structure(alt)
            if type(alt) is not dict or len(alt) != 1:
                return None
            ops = _structure(alt.get(end))
            if type(ops) is not dict or not ops:
                return None
            for op, v in ops.items():
                if op not in bounds:
                    return None  # not eq (eq bounds): never {eq: null} either
                if type(v) is Var:
                    dates.append((v.name, op == "eq"))
                elif v is None and op == "eq":
                    continue
                elif not _valid_date(v):
                    return None  # a list, a mapping, no date: never on or after a day
                else:
                    dates.append((None, v))
        return dates

    def partial(op: OperationFacts, item: Any) -> Residual:
        s = where_sym(op, item)
        where = s.value
        if where is UNKNOWN:
            return test
        if type(where) is not dict:
            return False
        try:
            found = [where.get("or")] if where.get("or") is not None else []
            conj = _structure(where.get("and"))
            parts = [_structure(p) for p in conj] if type(conj) is list else []
            found += [p["or"] for p in parts if type(p) is dict and "or" in p]
            lists = [a for a in map(alternatives, found) if a is not None]
            uppers: list[_Leaf] = []
            if start is not None:
                for ops in [where.get(start)] + [p.get(start) for p in parts if type(p) is dict]:
                    ops = _structure(ops)
                    if type(ops) is dict:
                        uppers += [_leaf(ops.get(o)) for o in ("ngt", "lte", "lt") if o in ops]
        except _Shapeless:
            return test
        if not lists:
            return False
        floor_values = [g(op, item) for g in floor_syms]
        ceiling_values = [g(op, item) for g in ceiling_syms]
        alternative_dates = tuple(tuple(a) for a in lists)
        # What is left reads only the variables, the literals and the getters named in
        # the keys below: windows with the same lower bound (every nested list of a
        # template) share one test, those with the same upper bound too (the
        # specificaties' and regiehouders', the contacts'), and the engine runs each
        # shared test once per request (CompiledPolicy._residual).
        lower_key = ("from", tuple(v.key for v in floor_values), alternative_dates)
        lower = _shared(
            shared, lower_key, lambda: _lower(floor_values, alternative_dates), floor_values
        )
        if start is None:
            return lower
        upper_dates = tuple(uppers)
        upper_key = ("until", tuple(v.key for v in ceiling_values), upper_dates)
        upper = _shared(
            shared, upper_key, lambda: _upper(ceiling_values, upper_dates), ceiling_values
        )
        both = (lower_key, upper_key)
        return _shared(
            shared, both, lambda: all_residual([lower, upper]), [*floor_values, *ceiling_values]
        )

    return partial
