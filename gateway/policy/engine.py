"""The compiled policy set: what ``decide`` runs per request.

Everything here is built at load by :mod:`gateway.policy.loader`; a decision is a dict
lookup of the policy by (operation type, root field) and a loop over compiled checks.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from operator import attrgetter
from pathlib import Path
from string import Formatter
from typing import Any
from weakref import ReferenceType, ref

from gateway.facts import DecisionInput
from gateway.policy.audit_fields import AuditBlock
from gateway.policy.conditions import ALL_PARTS, Cond, DataCatalogue, all_residual, residual
from gateway.policy.decision import AuditValue, AuditValues, Decision, TraceStep, with_audit
from gateway.policy.factpaths import ATTRIBUTES
from gateway.policy.fused import Allowed, fuse
from gateway.policy.lookups import LookupSpec

DEFAULT_DENY_RULE = "default-deny"
SELECTION_CACHE_SIZE = 1024
"""Plans partially evaluated per selection kept per policy (query texts: bounded)."""
RESIDUALS_PER_PLAN = 64
"""Residual plans kept per query plan (one per set of variables sent: bounded)."""
REFUSAL_CACHE_SIZE = 4096
"""Refusal decisions kept per policy (operation names are chosen by callers: bounded)."""
AUDITED_CACHE_SIZE = 4096
"""Audited decisions kept per policy whose audit values read only the token and the route
(one per decision, caller and route: bounded)."""
DEFAULT_DENY_STATUS = 403
DEFAULT_DENY_CODE = "FORBIDDEN"
DEFAULT_DENY_MESSAGE = "Policy Access Denied"
TEMPLATE_FIELDS = ("Operation", "operation", "type", "reason")
FOUND = "{found}"
"""In a check's reason: what the check found at fault (the field outside the allowed
groups, the nested path that may not be nested), e.g. ``field {found} is not readable``."""
"""Placeholders of a message template: ``{Operation}`` is the operation name (else the
root field) with its first letter capitalised, ``{operation}`` as sent, ``{type}`` the
operation type, ``{reason}`` the check's reason."""


class MessageTemplate:
    """A refusal message template, split into parts at load."""

    __slots__ = ("_parts", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        parts: list[tuple[str, str | None]] = []
        for literal_text, name, _spec, _conv in Formatter().parse(text):
            parts.append((literal_text, name))
        self._parts = tuple(parts)

    @staticmethod
    def unknown_fields(text: str) -> list[str]:
        """Placeholders in *text* not in TEMPLATE_FIELDS (ValueError on bad braces)."""
        return [
            name
            for _t, name, _s, _c in Formatter().parse(text)
            if name is not None and name not in TEMPLATE_FIELDS
        ]

    def render(self, facts: DecisionInput, reason: str) -> str:
        """The message for one refused request."""
        op = facts.operation
        name = op.operation_name or op.root_field
        values = {
            "Operation": name[:1].upper() + name[1:],
            "operation": name,
            "type": op.operation_type,
            "reason": reason,
        }
        return "".join(lit + (values[field] if field else "") for lit, field in self._parts)


@dataclass(frozen=True, slots=True)
class Refusal:
    """What a failing check answers."""

    status: int
    code: str
    reason: str | None
    template: MessageTemplate | None
    """None: the message is the reason itself (or the default deny text)."""

    def message(self, facts: DecisionInput, reason: str | None = None) -> str:
        """The caller-facing message (*reason*: the reason with ``{found}`` filled in)."""
        reason = reason or self.reason
        if reason is None:
            return DEFAULT_DENY_MESSAGE
        if self.template is None:
            return reason
        return self.template.render(facts, reason)


@dataclass(frozen=True, slots=True)
class CompiledCheck:
    """One check of a policy: ``when`` (optional) selects, ``require`` must hold."""

    rule: str
    """Qualified id ``<policy>/<check>``."""
    location: str
    when: Cond | None
    require: Cond
    refusal: Refusal


def _no_plan() -> None:
    """The memo's plan before any request: no query plan is None."""
    return None


@dataclass(slots=True)
class CompiledPolicy:
    """One policy: what it applies to, its checks in order, and its allow decision."""

    policy_id: str
    location: str
    selectors: tuple[tuple[str, str], ...]
    """``(operation type, root field)`` pairs (GraphQL), ``(METHOD, path template)`` (REST)."""
    checks: tuple[CompiledCheck, ...]
    audit_block: AuditBlock | None = None
    """The compiled ``audit:`` block (None: no block)."""
    lookups: tuple[LookupSpec, ...] = ()
    """The facts gathered before this policy decides (``lookups:``, the PIP)."""
    version: str = ""
    audit: Callable[[DecisionInput], AuditValues] | None = None
    """The request's audit values under every name of the set (None: no block)."""
    _plan: tuple[tuple[Any, Any, CompiledCheck], ...] = ()
    _key: Callable[[DecisionInput], Any] | None = None
    """The fact the checks' ``when: {fact: F, equals: V}`` pick by (None: not split)."""
    _plans: dict[str, tuple[tuple[Any, Any, CompiledCheck], ...]] = field(default_factory=dict)
    _by_selection: dict[tuple[int, int], tuple[Any, Any, Any]] = field(default_factory=dict)
    """``(id(plan), id(selected paths)) -> (plan, paths, the plan for them)``: see
    :meth:`_for_selection`."""
    _residuals: dict[int, tuple[ReferenceType[Any], dict[tuple[int, tuple[str, ...]], Any]]] = (
        field(default_factory=dict)
    )
    """Per query plan (``id(plan) -> (weak reference to it, ...)``: an entry lives as long
    as its plan in the plan cache, removed when the plan is) and per set of variables sent:
    the checks left once everything the plan fixes is decided (:meth:`_fused`), or
    :data:`NO_RESIDUAL`. Per policy object, so a new policy version (a hot reload) starts
    empty. A plain dict by id, checked against the reference: cheaper per decision than a
    ``WeakKeyDictionary`` (a new weak reference per lookup)."""
    _allow: Decision | None = None
    _refusals: dict[tuple[str, str | None, str, str], Decision] = field(default_factory=dict)
    _audited: dict[tuple[Any, ...], tuple[Decision, Decision]] | None = None
    """``(id(decision), *audit values) -> (decision, the decision carrying them)`` when the
    ``audit:`` block reads only the token and the route (the raadplegingen): its values then
    come from a small set, so the audited decision is built once per set of values and
    shared (see :meth:`_with_audit`). None: every decision builds its own. Per policy
    object, so a new policy version starts empty."""
    _allowed: Allowed = None
    """What a residual's generated function answers when every check passed (see
    :data:`gateway.policy.fused.Allowed`): the allowed decision with its audit values, built
    in the function; None (the audited decisions shared per caller): -1."""
    _last: tuple[Any, ...] = (_no_plan, None, None, None)
    """``(weak reference to the query plan, checks plan, variable names, residual)`` of
    the last request decided from a query plan: a request of the same plan and names (the
    usual next one) takes the residual without looking it up. Weak, so the plan cache's
    eviction still frees the plan. Per policy object, so per policy set: a hot reload never
    runs a residual of the old set."""
    _audit_key: Callable[[DecisionInput], Any] | None = None
    """When every audit value is one token or route attribute: an ``attrgetter`` of them,
    whose answer (with the decision's id) keys ``_audited`` instead of the values."""

    def finish(self, version: str, audit_names: AuditValues) -> None:
        """Freeze the hot-path plan (called once the set's version and audit names are
        known)."""
        self.version = version
        if self.audit_block is not None:
            self.audit = self.audit_block.extractor(audit_names)
            if not self.audit_block.reads_request:
                self._audited = {}
                attributes = self.audit_block.attributes()
                if attributes:
                    self._audit_key = attrgetter(*attributes)
        self._plan = tuple(
            (c.when.test if c.when else None, c.require.test, c) for c in self.checks
        )
        self._split_by_key()
        self._allow = allow = Decision(
            allow=True,
            status=200,
            rule=self.policy_id,
            location=self.location,
            policy_version=version,
        )
        block = self.audit_block
        if block is None:
            self._allowed = ("decision", allow)
        elif self._audited is None:  # values read from the request: built per decision
            spec = block.one_input()
            names = {**audit_names, **block.blank}
            if spec is not None and list(names) == list(audit_names):
                self._allowed = ("audit", allow, spec, names, self.audit)
            else:
                self._allowed = ("extract", allow, self.audit)

    def _split_by_key(self) -> None:
        """One plan per value of the fact most ``when:`` conditions compare with a text
        (``token.instantie_type``): a request then runs only the checks for its value, with
        that comparison already done, in the same order. Same answers, fewer tests."""
        counts: dict[str, int] = {}
        for c in self.checks:
            if c.when is not None and c.when.keyed is not None:
                counts[c.when.keyed[0]] = counts.get(c.when.keyed[0], 0) + 1
        if not counts or max(counts.values()) < 2:
            return
        fact = max(counts, key=lambda k: counts[k])
        values = {
            c.when.keyed[1]
            for c in self.checks
            if c.when is not None and c.when.keyed is not None and c.when.keyed[0] == fact
        }
        plans: dict[str | None, list[tuple[Any, Any, CompiledCheck]]] = {
            v: [] for v in (*values, None)
        }
        for c in self.checks:
            keyed = c.when.keyed if c.when is not None else None
            for value, plan in plans.items():
                if keyed is None or keyed[0] != fact:
                    plan.append((c.when.test if c.when else None, c.require.test, c))
                elif keyed[1] == value:
                    plan.append((keyed[3].test if keyed[3] else None, c.require.test, c))
            if keyed is not None and keyed[0] == fact:
                self._key = _one_argument(keyed[2])
        self._plans = {v: tuple(p) for v, p in plans.items() if v is not None}
        self._plan = tuple(plans[None])

    def decide(self, facts: DecisionInput) -> Decision:
        """The first failing check refuses; all passing allows."""
        plan = self._plan
        key = self._key
        if key is not None:
            value = key(facts)
            if type(value) is str:
                plan = self._plans.get(value, plan)
        op = facts.operation
        source = op.plan
        left = None
        if source is not None:
            # The query plan built these facts: run what is left of the checks once the
            # plan's part is decided (built on its first request, see _residual).
            names = tuple(op.variables)
            last = self._last
            if last[0]() is source and last[1] is plan and last[2] == names:
                left = last[3]
            else:
                left = self._residual_for(source, plan, names, facts)
        if left is not None and left is not NO_RESIDUAL:
            # One generated function for the checks left (gateway/policy/fused.py); it
            # answers an allowed request's decision itself (audit values in) where it can.
            refused = left.run(facts)
            if type(refused) is not int:
                return refused  # type: ignore[no-any-return]
            if refused < 0:
                decision = self._allow
                assert decision is not None
            else:
                decision = self._refuse(facts, left.plan[refused][2], ())
        else:
            selected = op.selected_paths
            hit = self._by_selection.get((id(plan), id(selected)))
            if hit is not None and hit[0] is plan and hit[1] is selected:
                plan = hit[2]
            else:
                plan = self._for_selection(plan, facts)
            for when, require, check in plan:
                if when is not None and not when(facts, None):
                    continue
                if not require(facts, None):
                    decision = self._refuse(facts, check, ())
                    break
            else:
                allow = self._allow
                assert allow is not None
                decision = allow
        audit = self.audit
        if audit is None:
            return decision
        audited = self._audited
        if audited is None:
            return with_audit(decision, audit(facts))
        read = self._audit_key
        if read is None:
            return self._with_audit(audited, decision, audit(facts))
        # The values are a function of the token and route attributes they read: those
        # (one C call) key the audited decision, the values are computed on a miss only.
        audit_key = (id(decision), read(facts))
        try:
            shared = audited.get(audit_key)
        except TypeError:  # an attribute that is no text (unhashable): computed
            return with_audit(decision, audit(facts))
        if shared is not None and shared[0] is decision:
            return shared[1]
        made = with_audit(decision, audit(facts))
        if len(audited) >= AUDITED_CACHE_SIZE:
            audited.clear()
        audited[audit_key] = (decision, made)
        return made

    def _residual_for(
        self, source: Any, plan: Any, names: tuple[str, ...], facts: DecisionInput
    ) -> Any:
        """The residual of *plan* for the query plan *source* and the variable *names*
        sent (remembered per query plan, built on its first request), now the last one."""
        entry = self._residuals.get(id(source))
        if entry is None or entry[0]() is not source:
            self._track(source)
            entry = self._residuals[id(source)]
        per_plan = entry[1]
        slot = (id(plan), names)
        left = per_plan.get(slot)
        if left is None:
            if len(per_plan) >= RESIDUALS_PER_PLAN:
                per_plan.clear()
            left = per_plan[slot] = self._fused(plan, facts)
        self._last = (entry[0], plan, names, left)
        return left

    def residuals_of(self, plan: Any) -> dict[tuple[int, tuple[str, ...]], Any] | None:
        """The residuals kept for a query plan (None: none yet)."""
        entry = self._residuals.get(id(plan))
        return entry[1] if entry is not None and entry[0]() is plan else None

    def _track(self, plan: Any) -> dict[tuple[int, tuple[str, ...]], Any]:
        """A new, empty entry for *plan*, removed when the plan is collected."""
        table = self._residuals
        key = id(plan)

        def forget(ref: ReferenceType[Any]) -> None:
            entry = table.get(key)
            if entry is not None and entry[0] is ref:
                del table[key]

        per_plan: dict[tuple[int, tuple[str, ...]], Any] = {}
        table[key] = (ref(plan, forget), per_plan)
        return per_plan

    @staticmethod
    def _with_audit(
        audited: dict[tuple[Any, ...], tuple[Decision, Decision]],
        decision: Decision,
        values: AuditValues,
    ) -> Decision:
        """*decision* carrying *values*, shared by every request with the same decision and
        values (equal values, so the decision log shows the same). Keyed by the decision's
        id, checked against the decision held in the entry (held, so the id is not reused
        while the entry lives)."""
        key = (id(decision), *values.values())
        hit = audited.get(key)
        if hit is not None and hit[0] is decision:
            return hit[1]
        made = with_audit(decision, values)
        if len(audited) >= AUDITED_CACHE_SIZE:
            audited.clear()
        audited[key] = (decision, made)
        return made

    def _for_selection(self, plan: Any, facts: DecisionInput) -> Any:
        """*plan* partially evaluated for the request's selected paths (one tuple per query
        text): a ``when:`` or ``require:`` that reads ``operation.selected`` alone is decided
        here once. A check whose ``when`` is false, or whose ``require`` holds, is dropped; a
        ``when`` that holds is left out; a failing ``require`` stays (it refuses with its
        reason). The checks keep their order, so the first failing check is the same one.
        Remembered per plan and tuple (both held, so an id is never reused meanwhile)."""
        selected = facts.operation.selected_paths
        out = []
        for when, require, check in plan:
            if check.require.selected_only and check.require.test(facts, None):
                continue
            static_when = check.when is not None and check.when.selected_only
            if when is not None and static_when and when is check.when.test:
                if not when(facts, None):
                    continue
                when = None
            out.append((when, require, check))
        special = tuple(out)
        if type(selected) is tuple:
            if len(self._by_selection) >= SELECTION_CACHE_SIZE:
                self._by_selection.clear()
            self._by_selection[(id(plan), id(selected))] = (plan, selected, special)
        return special

    def _fused(self, plan: Any, facts: DecisionInput) -> Any:
        """:meth:`_residual` as one function (:class:`Residual`), or NO_RESIDUAL."""
        left = self._residual(plan, facts)
        if left is NO_RESIDUAL:
            return NO_RESIDUAL
        if not FUSE:
            return Residual(left, run=_looped(left))
        op = facts.operation
        view = op.plan.symbolic(tuple(op.variables))  # the plan's own (as _residual's)
        return Residual(left, self._allowed, view.arguments if view is not None else None)

    def _residual(self, plan: Any, facts: DecisionInput) -> Any:
        """*plan* partially evaluated for the query plan behind *facts* and the variables
        it was sent (:mod:`gateway.policy.partial`): every condition, or part of one, that
        reads only what the query plan fixes (the selection, literals, which filter keys
        and operators are written where, the names of the variables) is decided here;
        what reads a variable's value or the token is left, reading the variables
        directly. A check whose ``when`` is decided false, or whose ``require`` is
        decided true, is dropped; a ``require`` decided false refuses (with its reason,
        built from the request's facts as ever). Same order, so the same first failing
        check. NO_RESIDUAL: the query plan does not fix enough (directives on variables,
        arguments coerced by graphql-core); decide then evaluates in full."""
        op = facts.operation
        view = op.plan.symbolic(tuple(op.variables)) if op.plan is not None else None
        if view is None or view.selected_paths is not op.selected_paths:
            return NO_RESIDUAL
        out = []
        passed: dict[int, Any] = {}
        """Tests left that an earlier check always runs: reached again, they hold."""
        for when, require, check in self._for_selection(plan, facts):
            if when is not None:
                cond = _cond_of(when, check)
                if cond is not None:
                    decided = residual(cond, view, None)
                    if decided is False:
                        continue
                    when = None if decided is True else decided
            left = residual(check.require, view, None) if require is check.require.test else require
            if left is True:
                continue
            if left is not False:
                # A test (or a part of an all: test) an earlier check always runs has
                # passed when this check is reached: not run again.
                parts = ALL_PARTS.get(left, (left,))
                todo = [p for p in parts if id(p) not in passed]
                if not todo:
                    continue
                if len(todo) < len(parts):
                    left = all_residual(todo)
                if when is None:
                    passed.update((id(p), p) for p in (*todo, left))
            out.append((when, _never if left is False else left, check))
        return tuple(out)

    def _refuse(
        self, facts: DecisionInput, check: CompiledCheck, trace: tuple[TraceStep, ...]
    ) -> Decision:
        refusal = check.refusal
        reason = refusal.reason
        culprit = check.require.culprit
        reusable = not trace
        if reason is not None and FOUND in reason:
            # The reason names what was found at fault (a field, a path): not reusable.
            found = culprit(facts, None) if culprit is not None else None
            reason = reason.replace(FOUND, found or "?")
            reusable = False
        if reusable:
            # A refusal depends only on the check and the operation's name and type: reuse
            # it (building a frozen Decision costs more than the whole evaluation).
            op = facts.operation
            key = (check.rule, op.operation_name, op.root_field, op.operation_type)
            cached = self._refusals.get(key)
            if cached is not None:
                return cached
        decision = Decision(
            allow=False,
            status=refusal.status,
            code=refusal.code,
            reason=reason or DEFAULT_DENY_MESSAGE,
            message=refusal.message(facts, reason),
            rule=check.rule,
            location=check.location,
            trace=trace,
            policy_version=self.version,
        )
        if reusable and len(self._refusals) < REFUSAL_CACHE_SIZE:
            self._refusals[key] = decision
        return decision

    def explain(self, facts: DecisionInput, head: tuple[TraceStep, ...]) -> Decision:
        """Like decide, but visits every check and records what each found."""
        trace = list(head)
        trace.append(
            TraceStep(
                self.policy_id,
                self.location,
                "matched",
                "applies to " + ", ".join(f"{t} {n}" for t, n in self.selectors),
            )
        )
        first: CompiledCheck | None = None
        for check in self.checks:
            if check.when is not None and not check.when.test(facts, None):
                trace.append(
                    TraceStep(
                        check.rule,
                        check.location,
                        "skipped",
                        "when: " + check.when.explain(facts, None),
                    )
                )
                continue
            ok = check.require.test(facts, None)
            detail = check.require.explain(facts, None)
            if not ok and check.refusal.reason:
                detail += " -> " + check.refusal.reason.replace(
                    FOUND,
                    (check.require.culprit(facts, None) if check.require.culprit else None) or "?",
                )
            trace.append(
                TraceStep(check.rule, check.location, "passed" if ok else "failed", detail)
            )
            if not ok and first is None:
                first = check
        audit = self.audit(facts) if self.audit is not None else None
        if first is not None:
            return with_audit(self._refuse(facts, first, tuple(trace)), audit)
        trace.append(TraceStep(self.policy_id, self.location, "allowed", "every check passed"))
        return Decision(
            allow=True,
            status=200,
            rule=self.policy_id,
            location=self.location,
            trace=tuple(trace),
            policy_version=self.version,
            audit=audit,
        )


def _one_argument(getter: Any) -> Callable[[DecisionInput], Any]:
    """*getter* called on the facts alone: an ``attrgetter`` when it reads one attribute."""
    attribute = ATTRIBUTES.get(getter)
    if attribute is not None:
        return attrgetter(attribute)
    return lambda f: getter(f, None)


NO_RESIDUAL: Any = object()
"""Marks a query plan the partial evaluation does not apply to."""
FUSE = True
"""Whether a residual plan runs as one generated function (False: the loop over its
tests; the equivalence tests compare the two)."""


class Residual:
    """The checks left for one query plan and set of variables sent (``plan``: ``(when,
    require, check)``, in order) and the function that runs them: the index of the first
    refusing check, or -1."""

    __slots__ = ("plan", "run", "source")

    def __init__(
        self,
        plan: tuple[tuple[Any, Any, CompiledCheck], ...],
        allowed: Allowed = None,
        arguments: Mapping[str, Any] | None = None,
        run: Any = None,
    ):
        self.plan = plan
        self.source = ""
        if run is None:
            run, self.source = fuse(plan, allowed, arguments)
        self.run: Callable[[DecisionInput], Any] = run


def _looped(plan: tuple[tuple[Any, Any, CompiledCheck], ...]) -> Callable[[DecisionInput], int]:
    """*plan* run test by test (what :func:`fuse` writes as one function)."""

    def run(facts: DecisionInput) -> int:
        for n, (when, require, _check) in enumerate(plan):
            if when is not None and not when(facts, None):
                continue
            if not require(facts, None):
                return n
        return -1

    return run


def _never(_facts: DecisionInput, _item: Any) -> bool:
    """A ``require`` decided false for every request of a query plan."""
    return False


def _cond_of(when: Any, check: CompiledCheck) -> Cond | None:
    """The condition a plan entry's ``when`` test belongs to: the check's own, or the rest
    of it once the policy's key picked the plan (None: unknown, kept as it is)."""
    full = check.when
    if full is None:
        return None
    if when is full.test:
        return full
    rest = full.keyed[3] if full.keyed is not None else None
    if rest is not None and when is rest.test:
        return rest
    return None


@dataclass(slots=True)
class PolicySet:
    """A loaded, compiled, immutable set of policies with its data. Thread-safe to share."""

    version: str
    """``sha256:<hex>`` of every file's name and content, plus the environment."""
    environment: str | None
    files: tuple[Path, ...]
    policies: tuple[CompiledPolicy, ...]
    data: DataCatalogue
    environments: tuple[str, ...] = ()
    """Every environment an overlay in this set names."""
    audit_blank: AuditValues = field(default_factory=dict)
    """Every name the policies' ``audit:`` blocks use, in order of first use, with no value
    (``()`` when any policy records a list under it, else None): every decision on a route
    carries the same audit keys."""
    rest_templates: tuple[str, ...] = ()
    """The path templates of the REST policies (``applies_to: rest:``), for routes without an
    OpenAPI document to match request paths against."""
    _index: dict[tuple[str, str], CompiledPolicy] = field(default_factory=dict)
    _deny: Decision | None = None

    def __post_init__(self) -> None:
        blank: dict[str, AuditValue] = {}
        for policy in self.policies:
            for name, empty in (policy.audit_block.blank if policy.audit_block else {}).items():
                if blank.get(name) is None:
                    blank[name] = empty
        self.audit_blank = blank
        for policy in self.policies:
            policy.finish(self.version, blank)
            for selector in policy.selectors:
                self._index.setdefault(selector, policy)
        self.rest_templates = tuple(
            dict.fromkeys(path for kind, path in self._index if kind.isupper())
        )
        self._deny = Decision(
            allow=False,
            status=DEFAULT_DENY_STATUS,
            code=DEFAULT_DENY_CODE,
            reason=DEFAULT_DENY_MESSAGE,
            message=DEFAULT_DENY_MESSAGE,
            rule=DEFAULT_DENY_RULE,
            policy_version=self.version,
        )

    def policy_for(self, operation_type: str, root_field: str) -> CompiledPolicy | None:
        """The policy that decides this operation (None: default deny)."""
        return self._index.get((operation_type, root_field))

    def decide(self, facts: DecisionInput, *, explain: bool = False) -> Decision:
        """Decide on *facts*: the policy for the operation, else default deny."""
        op = facts.operation
        policy = self._index.get((op.operation_type, op.root_field))
        if policy is None:
            return self.deny(facts, explain=explain)
        if explain:
            return policy.explain(facts, self._head())
        return policy.decide(facts)

    def _head(self) -> tuple[TraceStep, ...]:
        return (TraceStep("environment", "", "matched", self.environment or "(none)"),)

    def deny(self, facts: DecisionInput, *, explain: bool = False) -> Decision:
        """The default deny of an operation no policy applies to (with its trace when
        *explain*): one shared decision otherwise."""
        deny = self._deny
        assert deny is not None
        if not explain:
            return deny
        op = facts.operation
        step = TraceStep(
            DEFAULT_DENY_RULE,
            "",
            "matched",
            f"no policy applies to {op.operation_type} {op.root_field}",
        )
        return Decision(
            allow=False,
            status=deny.status,
            code=deny.code,
            reason=deny.reason,
            message=deny.message,
            rule=deny.rule,
            trace=(*self._head(), step),
            policy_version=self.version,
        )

    def table(self, name: str) -> tuple[Mapping[str, Any], ...]:
        """A data table by name (empty when absent), e.g. for tools mapping routes to kinds."""
        return self.data.tables.get(name, ())

    def data_list(self, name: str) -> frozenset[str]:
        """A data list by name (empty when absent)."""
        return self.data.lists.get(name, frozenset())
