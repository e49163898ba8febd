"""The residual checks of a plan run as one generated function (gateway/policy/fused.py).

The function decides as the loop over the residual tests does (allowed, or the same
refusing check with the same reason and message) on every published template with
generated variables and callers, and on every ``*.test.yaml`` case; and its source names
nothing of the policies' domain: variable names, claims, identifiers, list values and
dates reach it only as constants of its namespace.
"""

from __future__ import annotations

import ast
import dataclasses
import gc
import re
from collections.abc import Iterator
from dataclasses import fields
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.config.model import GraphQLLimits, default_claim_mapping
from gateway.facts import DecisionInput, OperationFacts, RouteFacts, TokenFacts
from gateway.graphql import GraphQLRequest
from gateway.graphql.analyser import Analyser
from gateway.graphql.schema import load_schema
from gateway.policy import PolicySet, engine, load_policy_set
from gateway.policy.decision import Decision
from gateway.policy.engine import NO_RESIDUAL, Residual
from gateway.policy.fused import HELPERS
from gateway.tokens.claims import map_claims
from tests.fixtures.policy import IWLZ
from tests.policy.test_partial_evaluation import (
    CALLERS,
    NAMES,
    NETWORK,
    NOTIFICATION,
    NOTIFICATION_VARIABLES,
    PATHS,
    ROUTES,
    ROW_VALUES,
    SCHEMAS,
    SCOPE,
    _facts,
    _full,
    _requests,
    _template,
    shipped_case_facts,
)

FUSED = load_policy_set([IWLZ])
LOOPED = load_policy_set([IWLZ])
"""The same policies, their residuals run test by test (built with engine.FUSE off)."""
SCHEMA = SCHEMAS["QBR"]
ROUTE = RouteFacts(PATHS["QBR"], PATHS["QBR"], "", "", "")
NAME = re.compile(r"_[kt]\d+")
"""The function's constants (``_k0``..) and temporaries (``_t1``..)."""


def _looped(policy_set: PolicySet, facts: DecisionInput) -> Any:
    engine.FUSE = False
    try:
        return policy_set.decide(facts)
    finally:
        engine.FUSE = True


def _same(fused_set: PolicySet, looped_set: PolicySet, facts: DecisionInput) -> None:
    fused = fused_set.decide(facts)
    looped = _looped(looped_set, facts)
    assert fused == looped
    assert (fused.allow, fused.rule, fused.reason, fused.message, fused.audit) == (
        looped.allow,
        looped.rule,
        looped.reason,
        looped.message,
        looped.audit,
    )


def _same_in_full(facts: DecisionInput) -> Decision:
    """*facts* decided fused, looped and in full (no plan): one answer, audit values
    included."""
    _same(FUSED, LOOPED, facts)
    fused, full = FUSED.decide(facts), FUSED.decide(_full(facts))
    assert (fused, fused.audit) == (full, full.audit)
    return fused


def _residuals(policy_set: PolicySet) -> Iterator[Residual]:
    for policy in policy_set.policies:
        for _plan, per_plan in policy._residuals.values():
            for left in per_plan.values():
                if left is not NO_RESIDUAL:
                    yield left


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
@given(_requests())
def test_the_fused_function_decides_as_the_residual_tests_one_by_one(
    sent: tuple[str, dict[str, Any], dict[str, Any]],
) -> None:
    name, variables, claims = sent
    facts = _facts(name, variables, claims)
    if facts is None:
        return
    _same(FUSED, LOOPED, facts)


def test_every_template_decides_the_same_fused_and_runs_a_fused_function() -> None:
    for name in NAMES:
        _query, example = _template(name)
        for claims in CALLERS:
            for _ in range(2):
                facts = _facts(name, example, claims)
                assert facts is not None
                _same(FUSED, LOOPED, facts)
    fused = list(_residuals(FUSED))
    assert len(fused) >= len(NAMES)
    assert all(left.source.startswith("def residual(f") for left in fused)
    assert all(not left.source for left in _residuals(LOOPED))


def test_every_test_case_of_the_policies_decides_the_same_fused() -> None:
    """Every ``*.test.yaml`` case (lookups' facts included) through one cached analyser,
    twice, decided fused and test by test: the same decision, rule, reason and message."""
    decided = 0
    loaded: list[PolicySet] = []

    def load(folders: list[Path]) -> tuple[PolicySet, PolicySet]:
        pair = (load_policy_set(folders), load_policy_set(folders))
        loaded.append(pair[0])
        return pair

    for (fused_set, looped_set), facts in shipped_case_facts(load, lambda pair: pair[0]):
        _same(fused_set, looped_set, facts)
        decided += 1
    assert decided > 200
    assert any(True for s in loaded for _left in _residuals(s))


def _domain_texts(policy_set: PolicySet) -> set[str]:
    """Texts of the policies' domain a source could leak: every variable name sent, every
    string constant the functions were given."""
    texts: set[str] = set()
    for left in _residuals(policy_set):
        run = left.run
        for value in run.__defaults__ or ():
            if type(value) is str and value:
                texts.add(value)
            if isinstance(value, frozenset):
                texts.update(v for v in value if type(v) is str and v)
    return texts


LAYOUT = {
    *(f.name for c in (DecisionInput, TokenFacts, OperationFacts, RouteFacts) for f in fields(c)),
    *(f.name for f in fields(Decision)),
    "variables",
    "get",
    "append",
    "__class__",
}
"""The attributes a source may read or set: the facts' and the decision's fixed layout
(engine names, no policy's), a dict's ``get`` and a list's ``append``."""


def test_the_generated_source_names_no_domain_value() -> None:
    """Parsed, the source holds only the engine's names (``f``, ``v``, ``_k<n>`` constants,
    ``_t<n>`` temporaries, its helpers, ``type``, ``len``, ``id``, the attributes of the
    facts' and the decision's layout, a dict's ``get``) and no literal but None, the
    booleans, check numbers, ``10`` (a date's length), the empty string and ``:`` (an
    audit pair's ``TYPE:ID``)."""
    for name in NAMES:
        for claims in CALLERS:
            facts = _facts(name, _template(name)[1], claims)
            assert facts is not None
            FUSED.decide(facts)
    allowed_names = {"f", "v", "type", "len", "str", "id", *HELPERS}
    texts = _domain_texts(FUSED)
    assert {"toewijzingIngangsdatum", "Zorgaanbieder"} <= texts  # the constants are there
    checked = 0
    for left in _residuals(FUSED):
        tree = ast.parse(left.source)
        for node in ast.walk(tree):
            if isinstance(node, ast.Name):
                assert node.id in allowed_names or NAME.fullmatch(node.id), node.id
            elif isinstance(node, ast.arg):
                assert node.arg == "f" or NAME.fullmatch(node.arg) or node.arg in HELPERS
            elif isinstance(node, ast.Constant):
                value = node.value
                assert (
                    value is None
                    or type(value) is bool
                    or value in ("", ":")
                    or ((type(value) is int and -1 <= value <= len(left.plan)) or value == 10)
                ), value
            elif isinstance(node, ast.Attribute):
                assert node.attr in LAYOUT, node.attr
        for text in texts:
            assert text not in left.source, text
        checked += 1
    assert checked >= len(NAMES)


def test_a_plans_residuals_are_dropped_with_the_plan() -> None:
    """The residuals are kept per plan by id with a weak reference: once the route's plan
    cache lets the plan go, its entry goes too (no id reused for another plan's checks)."""
    policy_set = load_policy_set([IWLZ])
    policy = policy_set.policy_for("query", "bemiddelingspecificatie")
    assert policy is not None
    query, example = _template("QBR-0001-ZA")
    analyser = Analyser(GraphQLLimits(), schema=load_schema(SCHEMA))
    claims = {**CALLERS[0], "scope": SCOPE}
    facts = DecisionInput(
        map_claims(claims, default_claim_mapping()),
        analyser.analyse(GraphQLRequest(query, example, None)),
        ROUTE,
    )
    assert policy_set.decide(facts).allow
    plan = facts.operation.plan
    assert policy.residuals_of(plan)
    assert len(policy._residuals) == 1
    del facts, analyser, plan
    gc.collect()
    assert policy._residuals == {}


STRICT_ROUTES = [dataclasses.replace(route, strict_input=True) for route in ROUTES]
ALL_ROUTES = [*ROUTES, *STRICT_ROUTES]
TEXTS = st.sampled_from(["", "WlzIndicatie/1", "WlzIndicatie/2", "x"])
ROW_CHOICES = {name: st.sampled_from(values) for name, values in ROW_VALUES.items()}


SEED_SENDER = {"instantie_type": "Onderneming", "kvk": "62253778"}
"""The seed notification's sender (the CIZ): with the seed's values, allowed."""


@st.composite
def _notifications(draw: st.DrawFn) -> tuple[dict[str, Any], dict[str, Any], RouteFacts, Any]:
    """A zendNotificatie's variables, a caller, a route (strict or not) and the looked-up
    facts (none, or a subscription): half of them the seed's sender, values and recipient
    (allowed unless the subject list or timestamp is not), the others any mix of senders,
    recipients and event types. Subject lists of zero to three items, empty texts among
    them."""
    seed = draw(st.booleans())
    values = {} if seed else draw(st.fixed_dictionaries(ROW_CHOICES))
    item = st.fixed_dictionaries({"subject": TEXTS, "recordID": TEXTS})
    subjects = draw(st.lists(item, max_size=3))
    timestamp = draw(st.sampled_from(["2024-07-02T00:00:00Z", "2024-07-02T10:11:12+02:00"]))
    variables = {
        **NOTIFICATION_VARIABLES,
        **values,
        "subjectList": subjects,
        "timestamp": timestamp,
    }
    claims = SEED_SENDER if seed else draw(st.sampled_from(CALLERS))
    route = draw(st.sampled_from([ROUTES[0], STRICT_ROUTES[0]] if seed else ALL_ROUTES))
    event = variables["eventType"]
    extra = draw(st.sampled_from([{}, {"abonnement": {"active": True, "type": event}}]))
    return variables, claims, route, extra


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_notifications())
def test_a_notification_decides_and_audits_the_same_fused_looped_and_in_full(
    sent: tuple[dict[str, Any], dict[str, Any], RouteFacts, Any],
) -> None:
    """The generated function answers an allowed notification's decision itself, audit
    values included: the same decision, reason, message and audit values as the residual
    tests one by one and as the full evaluation (no plan), on strict routes (count:,
    every: in place) and others, for every mix of sender, recipient, event type, caller,
    subject list and looked-up facts."""
    variables, claims, route, extra = sent
    operation = NETWORK.analyse(GraphQLRequest(NOTIFICATION, variables, "zendNotificatie"))
    assert operation.plan is not None
    scope = "organisaties/zorgkantoor/notificaties/notificatie:create"
    token = map_claims({**claims, "scope": scope}, default_claim_mapping())
    fused = _same_in_full(DecisionInput(token, operation, route, extra))
    policy = FUSED.policy_for("mutation", "zendNotificatie")
    assert policy is not None and policy.audit is not None
    assert fused.audit == policy.audit(DecisionInput(token, operation, route, extra))
    ALLOWED.append(fused.allow)


ALLOWED: list[bool] = []
"""What the property test above decided (the next test checks it saw both answers)."""


def test_the_notification_property_saw_allowed_and_refused_requests() -> None:
    if not ALLOWED:  # run alone: the property test first
        test_a_notification_decides_and_audits_the_same_fused_looped_and_in_full()
    assert True in ALLOWED and False in ALLOWED


def test_an_allowed_notification_is_answered_by_the_generated_function() -> None:
    """The seed notification on a strict route: the generated function returns the allowed
    decision with its audit values, and checks count: and every: in place."""
    operation = NETWORK.analyse(
        GraphQLRequest(NOTIFICATION, NOTIFICATION_VARIABLES, "zendNotificatie")
    )
    token = map_claims(
        {"instantie_type": "Onderneming", "kvk": "62253778", "scope": ""},
        default_claim_mapping(),
    )
    facts = DecisionInput(token, operation, STRICT_ROUTES[0])
    decided = FUSED.decide(facts)
    assert decided.allow
    policy = FUSED.policy_for("mutation", "zendNotificatie")
    assert policy is not None
    per_plan = policy.residuals_of(operation.plan)
    assert per_plan is not None
    (left,) = per_plan.values()
    answer = left.run(facts)
    assert isinstance(answer, Decision) and answer == decided
    assert answer.audit == {
        "event_type": "NIEUWE_INDICATIE_ZORGKANTOOR",
        "afzender": "KVK:62253778",
        "ontvanger": "UZOVI:5151",
        "subjects": ("WlzIndicatie/ef88ce35-58fa-4e6d-ac7a-6e298dd211d6",),
        "records": ("WlzIndicatie/ef88ce35-58fa-4e6d-ac7a-6e298dd211d6",),
    }
    assert "for " in left.source and "len(" in left.source


LITERAL_NOTIFICATION = """
mutation zendNotificatie($afzenderID: String!, $subject: String!, $timestamp: DateTime!) {
  zendNotificatie(notificatieInput: {
    afzenderID: $afzenderID, afzenderIDType: KVK, eventType: "NIEUWE_INDICATIE_ZORGKANTOOR",
    ontvangerID: "5151", ontvangerIDType: UZOVI, timestamp: $timestamp,
    subjectList: [{subject: $subject, recordID: "WlzIndicatie/1"}]
  }) { notificatieID }
}
"""


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(["62253778", "5151"]),
    TEXTS,
    st.sampled_from(ALL_ROUTES[:1] + STRICT_ROUTES[:1]),
)
def test_audit_values_of_literals_and_lists_with_variables_inside_are_the_full_ones(
    afzender: str, subject: str, route: RouteFacts
) -> None:
    """An input object written with literals (read from the plan as constants) and a list
    with a variable inside (read from the request): the same decision and audit values
    fused, looped and in full."""
    variables = {"afzenderID": afzender, "subject": subject, "timestamp": "2024-07-02T00:00:00Z"}
    operation = NETWORK.analyse(GraphQLRequest(LITERAL_NOTIFICATION, variables, "zendNotificatie"))
    assert operation.plan is not None
    token = map_claims({**SEED_SENDER, "scope": ""}, default_claim_mapping())
    fused = _same_in_full(DecisionInput(token, operation, route))
    assert fused.audit is not None and fused.audit["event_type"] == "NIEUWE_INDICATIE_ZORGKANTOOR"
