"""The per-plan partial evaluation decides exactly as the full evaluation.

A decision on facts built by a query plan runs the checks left once the plan's part is
decided (``CompiledPolicy._residual``); the same facts without their plan are evaluated in
full. Every published raadpleging template, sent with varied variables (dates moved inside
and outside the window, identifiers equal or not to the caller's, values null, missing or
not dates) by varied callers through one cached analyser (one plan per template, so the
residual built for one request decides the next ones), gets the same decision, reason,
message and ``policy explain`` trace both ways. A new policy version never runs the
residual of the old one.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.config.model import GraphQLLimits, default_claim_mapping
from gateway.facts import DecisionInput, RouteFacts
from gateway.graphql import GraphQLRequest
from gateway.graphql.analyser import Analyser
from gateway.graphql.schema import BUNDLED_SCHEMA, load_schema
from gateway.policy import Decision, PolicySet, load_policy_set
from gateway.policy.conditions import SHAPES
from gateway.policy.engine import NO_RESIDUAL
from gateway.policy.source import read_source
from gateway.policy.tooling import (
    _case_schema,
    _request,
    described_route_facts,
    is_rest_request,
    wanted_extra,
)
from gateway.policy.tooling import (
    tests_of as policy_test_files,
)
from gateway.refusals import Refusal
from gateway.tokens.claims import map_claims
from tests.fixtures.policy import IWLZ, REPO

S = TypeVar("S")
"""What a case's policy folders are loaded as (see :func:`shipped_case_facts`)."""
TEMPLATES = IWLZ / "raadplegingen" / "templates"
NAMES = sorted(p.stem for p in TEMPLATES.glob("*.graphql"))
SCHEMAS = {
    "QBR": REPO / "config" / "schemas" / "bemiddelingsregister.graphql",
    "QIR": REPO / "config" / "schemas" / "indicatieregister.graphql",
}
PATHS = {
    "QBR": "/registers/bemiddelingsregister/graphql",
    "QIR": "/registers/indicatieregister/graphql",
}
SCOPE = (
    "registers/wlzbemiddelingsregister/bemiddelingen/bemiddeling:read "
    "registers/wlzindicatieregister/indicaties/indicatie:read"
)
CALLERS = [
    {"instantie_type": "Zorgaanbieder", "agb": "12345678"},
    {"instantie_type": "Zorgaanbieder", "agb": "87654321"},
    {"instantie_type": "Zorgkantoor", "uzovi": "5151"},
    {"instantie_type": "Zorgkantoor", "uzovi": "5152"},
    {"instantie_type": "Onderneming", "kvk": "62253778"},
]
IDENTIFIERS = ["12345678", "87654321", "5151", "5152", "62253778"]
MISSING = object()

POLICIES = load_policy_set([IWLZ])
ANALYSERS = {
    kind: Analyser(GraphQLLimits(), schema=load_schema(path)) for kind, path in SCHEMAS.items()
}


def _template(name: str) -> tuple[str, dict[str, Any]]:
    query = (TEMPLATES / f"{name}.graphql").read_text()
    variables_file = TEMPLATES / f"{name}.variables.json"
    variables = json.loads(variables_file.read_text()) if variables_file.is_file() else {}
    return query, variables


def _shifted(value: str, days: int) -> str:
    day = dt.date.fromisoformat(value[:10]) + dt.timedelta(days=days)
    return day.isoformat() + value[10:]


@st.composite
def _value(draw: st.DrawFn, example: Any) -> Any:
    """A variable's value: the example, a date moved (inside or outside the window), an
    identifier (the caller's or another's), null, missing, or not a date at all."""
    kinds = ["example", "null", "missing", "text", "identifier"]
    is_date = isinstance(example, str) and len(example) >= 10 and example[4:5] == "-"
    if is_date:
        kinds += ["shift", "shift", "shift", "day"]
    kind = draw(st.sampled_from(kinds))
    if kind == "example":
        return example
    if kind == "null":
        return None
    if kind == "missing":
        return MISSING
    if kind == "text":
        return draw(st.sampled_from(["", "x", "2025-02-30", "2025-1-1", "2025-01-01T25:00:00Z"]))
    if kind == "identifier":
        return draw(st.sampled_from(IDENTIFIERS))
    if kind == "day":  # a date-time's own day, or a date as a date-time
        return example[:10] if len(example) > 10 else example + "T00:00:00Z"
    return _shifted(example, draw(st.integers(-800, 800)))


@st.composite
def _requests(draw: st.DrawFn) -> tuple[str, dict[str, Any], dict[str, Any]]:
    name = draw(st.sampled_from(NAMES))
    _query, example = _template(name)
    variables: dict[str, Any] = {}
    for key, value in example.items():
        # Most requests keep most values, so the allowed path is decided often too.
        new = draw(st.one_of(st.just(value), st.just(value), _value(value)))
        if new is not MISSING:
            variables[key] = new
    return name, variables, draw(st.sampled_from(CALLERS))


def _facts(name: str, variables: dict[str, Any], claims: dict[str, Any]) -> DecisionInput | None:
    query, _example = _template(name)
    kind = name[:3]
    try:
        operation = ANALYSERS[kind].analyse(GraphQLRequest(query, variables, None))
    except Refusal:
        return None  # refused before any policy (a required variable null or missing)
    token = map_claims({**claims, "scope": SCOPE}, default_claim_mapping())
    path = PATHS[kind]
    route = RouteFacts(
        path=path, audience=path, deelnemer_id_type="", deelnemer_id="", deelnemer_kind=""
    )
    return DecisionInput(token, operation, route)


def _full(facts: DecisionInput) -> DecisionInput:
    """The same facts without their plan: the engine evaluates every check in full."""
    return dataclasses.replace(facts, operation=dataclasses.replace(facts.operation, plan=None))


def _same(policy_set: PolicySet, facts: DecisionInput) -> Decision:
    partial = policy_set.decide(facts)
    full = policy_set.decide(_full(facts))
    assert partial == full
    assert (partial.reason, partial.message, partial.audit) == (
        full.reason,
        full.message,
        full.audit,
    )
    assert policy_set.decide(facts, explain=True) == policy_set.decide(_full(facts), explain=True)
    # The audit values are the request's own, also when the audited decision is shared.
    op = facts.operation
    policy = policy_set.policy_for(op.operation_type, op.root_field)
    if policy is not None and policy.audit is not None:
        assert partial.audit == policy.audit(facts)
    assert partial.audit == policy_set.decide(facts, explain=True).audit
    return partial


@settings(
    max_examples=400,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
@given(_requests())
def test_partial_evaluation_decides_as_the_full_evaluation(
    request: tuple[str, dict[str, Any], dict[str, Any]],
) -> None:
    name, variables, claims = request
    facts = _facts(name, variables, claims)
    if facts is None:
        return
    assert facts.operation.plan is not None, "built by a plan: the partial evaluation applies"
    _same(POLICIES, facts)


def test_every_template_as_published_decides_the_same_and_is_partially_evaluated() -> None:
    """Each template's example, by every caller, twice (the second time on the residual
    built by the first), decides as in full; the allowed ones run a residual plan."""
    allowed = 0
    for name in NAMES:
        _query, example = _template(name)
        for claims in CALLERS:
            for _ in range(2):
                built = _facts(name, example, claims)
                assert built is not None, name
                decision = _same(POLICIES, built)
            allowed += decision.allow
            assert built is not None
            op = built.operation
            policy = POLICIES.policy_for(op.operation_type, op.root_field)
            if decision.allow and policy is not None:
                per_plan = policy.residuals_of(op.plan)
                assert per_plan, name
                assert all(left is not NO_RESIDUAL for left in per_plan.values()), name
    assert allowed >= 12  # the others need a lookup's facts: test_every_test_case_...


def shipped_case_facts(
    load: Callable[[list[Path]], S], policies: Callable[[S], PolicySet]
) -> Iterator[tuple[S, DecisionInput]]:
    """The facts of every case of the shipped ``*.test.yaml`` files that analyses (lookups'
    facts included; environment overlays left to the suite itself), each twice through one
    cached analyser per schema, with what *load* made of the case's policy folders (once
    per folder list; *policies* picks the set that describes the route and the extras)."""
    analysers: dict[Any, Analyser] = {}
    loaded: dict[tuple[str, ...], S] = {}
    for file in policy_test_files([REPO / "policies"]):
        source, issues = read_source(file)
        assert not issues
        doc = source.data
        if doc.get("environment") or any("environment" in c for c in doc["cases"]):
            continue
        paths = tuple(str((file.parent / p).resolve()) for p in doc.get("policies") or ["."])
        if paths not in loaded:
            loaded[paths] = load([Path(p) for p in paths])
        made = loaded[paths]
        policy_set = policies(made)
        schema = _case_schema(source, file)
        analyser = analysers.setdefault(
            id(schema),
            Analyser(GraphQLLimits(), schema=schema),  # type: ignore[arg-type]
        )
        for case in doc["cases"]:
            request = _request(case["request"], doc.get("requests") or {}, file.parent)
            if is_rest_request(request):
                continue
            caller = case["caller"]
            claims = (doc.get("callers") or {}).get(caller, caller)
            token = map_claims(claims, default_claim_mapping())
            route = described_route_facts(policy_set, case["route"])
            for _ in range(2):
                try:
                    operation = analyser.analyse(
                        GraphQLRequest(
                            request["query"], request["variables"], request["operationName"]
                        )
                    )
                except Refusal:
                    break
                facts = DecisionInput(token, operation, route)
                if case.get("extra"):
                    extra = wanted_extra(policy_set, facts, case["extra"])
                    facts = DecisionInput(token, operation, route, extra)
                yield made, facts


def test_every_test_case_of_the_policies_decides_the_same() -> None:
    """Every case of the shipped ``*.test.yaml`` files (lookups' facts included), through
    one cached analyser per schema and decided twice, decides as in full."""
    decided = 0
    for policy_set, facts in shipped_case_facts(load_policy_set, lambda s: s):
        _same(policy_set, facts)
        decided += 1
    assert decided > 200


def test_the_date_windows_of_one_request_are_decided_once() -> None:
    """QBR-0002-ZA's five nested windows read the same variables: what is left of them is
    two tests (the specificaties' and regiehouders' 31 May, the contacts' two years)."""
    policies = load_policy_set([IWLZ])
    facts = _facts("QBR-0002-ZA", _template("QBR-0002-ZA")[1], CALLERS[0])
    assert facts is not None
    assert policies.decide(facts).allow
    policy = policies.policy_for("query", "bemiddelingspecificatie")
    assert policy is not None
    per_plan = policy.residuals_of(facts.operation.plan)
    assert per_plan is not None
    (left,) = per_plan.values()
    rules = [check.rule.split("/")[1] for _when, _require, check in left.plan]
    assert [r for r in rules if r.startswith("venster-")] == [
        "venster-bemiddelingspecificatie",
        "venster-contactpersoon",
    ]


def test_a_window_date_outside_the_window_refuses_on_the_residual() -> None:
    """The residual reads the variables: a request of the same plan with a nested date
    before the window is refused with the window's reason, as in full."""
    name = "QBR-0002-ZA"
    example = _template(name)[1]
    assert _same(POLICIES, _facts(name, example, CALLERS[0])).allow  # type: ignore[arg-type]
    early = {**example, "dagVaststellingMoment": _shifted(example["toewijzingIngangsdatum"], -30)}
    early["vaststellingMoment"] = _shifted(example["vaststellingMoment"], 0)
    facts = _facts(name, early, CALLERS[0])
    assert facts is not None
    decision = _same(POLICIES, facts)
    assert not decision.allow
    assert str(decision.rule).endswith("/venster-bemiddelingspecificatie"), decision.rule


def test_a_new_policy_version_never_runs_the_old_residual(tmp_path: Path) -> None:
    """A hot reload loads a new set: the same plan object (the route's plan cache keeps it)
    is decided by the new policy's checks, not by the residual the old version built."""
    folder = tmp_path / "iwlz"
    shutil.copytree(IWLZ, folder)
    old = load_policy_set([folder])
    name = "QBR-0002-ZA"
    facts = _facts(name, _template(name)[1], CALLERS[0])
    assert facts is not None
    assert old.decide(facts).allow
    policy_file = folder / "raadplegingen" / "bemiddelingspecificatie.yaml"
    text = policy_file.read_text()
    # The new version binds the zorgaanbieder's filter to a KVK number instead of its AGB.
    assert text.count("- {fact: token.identifier_type, equals: AGB}") == 1
    policy_file.write_text(
        text.replace(
            "- {fact: token.identifier_type, equals: AGB}",
            "- {fact: token.identifier_type, equals: KVK}",
        )
    )
    new = load_policy_set([folder])
    assert new.version != old.version
    again = _facts(name, _template(name)[1], CALLERS[0])
    assert again is not None and again.operation.plan is facts.operation.plan
    assert old.decide(again).allow
    decision = _same(new, again)
    assert not decision.allow
    assert str(decision.rule).endswith("/BRA0001-instelling"), decision.rule
    assert decision.policy_version == new.version
    assert old.decide(again).allow  # and the old set keeps its own


def test_audited_decisions_are_shared_per_caller_and_route_and_per_version(
    tmp_path: Path,
) -> None:
    """The raadplegingen record only the token and the route: a caller's decisions on one
    route share one audited decision, another caller gets its own values, and a new policy
    version starts with none."""
    folder = tmp_path / "iwlz"
    shutil.copytree(IWLZ, folder)
    policy_set = load_policy_set([folder])
    name = "QBR-0001-ZA"
    one, two = (_facts(name, _template(name)[1], claims) for claims in CALLERS[:2])
    assert one is not None and two is not None
    first, again, other = (_same(policy_set, f) for f in (one, one, two))
    assert first.allow and not other.allow  # the example binds the first caller
    assert again is first
    assert other.audit != first.audit and other is not first
    op = one.operation
    policy = policy_set.policy_for(op.operation_type, op.root_field)
    assert policy is not None and policy._audited
    changed = folder / "raadplegingen" / "overdracht.yaml"
    changed.write_text(changed.read_text() + "\n# changed\n")
    reloaded = load_policy_set([folder])
    fresh = reloaded.policy_for(op.operation_type, op.root_field)
    assert fresh is not None and fresh._audited == {}
    decided = reloaded.decide(one)
    assert decided.policy_version == reloaded.version != policy_set.version
    assert decided is not first and decided.audit == first.audit
    # Notifications record their input's values: no sharing there.
    notificatie = policy_set.policy_for("mutation", "zendNotificatie")
    assert notificatie is not None and notificatie.audit is not None
    assert notificatie._audited is None


NOTIFICATION = (REPO / "tests" / "graphql" / "fixtures" / "seed_003_example.graphql").read_text()
NOTIFICATION_VARIABLES = json.loads(
    (REPO / "tests" / "graphql" / "fixtures" / "seed_003_variables.json").read_text()
)
NETWORK = Analyser(GraphQLLimits(), schema=load_schema(BUNDLED_SCHEMA))
ROW_VALUES = {
    "afzenderIDType": ["KVK", "UZOVI", "AGB"],
    "afzenderID": ["62253778", "5151", "12345678"],
    "eventType": [
        "NIEUWE_INDICATIE_ZORGKANTOOR",
        "NIEUWE_INDICATIE_ZORGAANBIEDER",
        "MUTATIE_CLIENT",
        "ONBEKEND",
    ],
    "ontvangerIDType": ["UZOVI", "AGB", "KVK"],
    "ontvangerID": ["5151", "5152", "12345678"],
}
ROUTES = [
    RouteFacts("/deelnemers/uzovi/5151/graphql", "a", "UZOVI", "5151", "zorgkantoor"),
    RouteFacts("/deelnemers/agb/12345678/graphql", "a", "AGB", "12345678", "zorgaanbieder"),
]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.fixed_dictionaries({name: st.sampled_from(values) for name, values in ROW_VALUES.items()}),
    st.sampled_from(CALLERS),
    st.sampled_from(ROUTES),
)
def test_row_lookups_decide_on_the_residual_as_in_full(
    values: dict[str, str], claims: dict[str, Any], route: RouteFacts
) -> None:
    """The notification's ``row:`` checks (the sender's id types, event types per sender
    and recipient, bound senders) read variables, token and route facts: narrowed per plan
    to the rows that match what the plan fixes, they decide as the full test, for every
    mix of event type, sender, recipient, caller and route."""
    operation = NETWORK.analyse(
        GraphQLRequest(NOTIFICATION, {**NOTIFICATION_VARIABLES, **values}, "zendNotificatie")
    )
    assert operation.plan is not None
    scope = "organisaties/zorgkantoor/notificaties/notificatie:create"
    token = map_claims({**claims, "scope": scope}, default_claim_mapping())
    _same(POLICIES, DecisionInput(token, operation, route))


def test_the_notifications_row_checks_run_in_place() -> None:
    """Per plan, a ``row:`` check is a lookup of the open columns in the matching rows (one
    column: an ``in:`` test), which the generated function writes in place: no check of the
    seed notification is left to call as a whole test."""
    policies = load_policy_set([IWLZ])
    operation = NETWORK.analyse(
        GraphQLRequest(NOTIFICATION, NOTIFICATION_VARIABLES, "zendNotificatie")
    )
    token = map_claims(
        {"instantie_type": "Onderneming", "kvk": "62253778", "scope": ""},
        default_claim_mapping(),
    )
    assert _same(policies, DecisionInput(token, operation, ROUTES[0])).allow
    policy = policies.policy_for("mutation", "zendNotificatie")
    assert policy is not None
    per_plan = policy.residuals_of(operation.plan)
    assert per_plan is not None
    (left,) = per_plan.values()
    rows = [check for _when, _require, check in left.plan if "row" in check.require.text]
    assert len(rows) >= 4
    tests = [t for when, require, _check in left.plan for t in (when, require) if t is not None]
    assert all(SHAPES.get(t) is not None for t in tests)
