"""The audited copy of a decision is a plain, frozen :class:`Decision`."""

from __future__ import annotations

import dataclasses

import pytest

from gateway.policy.decision import AuditValues, Decision, TraceStep, with_audit

REFUSAL = Decision(
    allow=False,
    status=400,
    code="GRAPHQL_VALIDATION_FAILED",
    reason="afzender_id is not valid",
    message="zendNotificatie mutation: afzender_id is not valid",
    rule="afzender-geldig",
    location="notificatie.yaml:12",
    trace=(TraceStep("afzender-geldig", "notificatie.yaml:12", "failed"),),
    policy_version="sha256:abc",
)
AUDIT: AuditValues = {"afzender": "AGB:12345678", "subjects": ("s1",)}


def test_the_audited_copy_is_the_decision_with_only_its_audit_replaced() -> None:
    audited = with_audit(REFUSAL, AUDIT)
    assert type(audited) is Decision
    assert audited == dataclasses.replace(REFUSAL, audit=AUDIT)
    for field in dataclasses.fields(Decision):
        expected = AUDIT if field.name == "audit" else getattr(REFUSAL, field.name)
        assert getattr(audited, field.name) is expected
    assert REFUSAL.audit is None  # the shared decision stays as it was


def test_the_audited_copy_is_frozen_and_hashable_like_any_decision() -> None:
    audited = with_audit(REFUSAL, None)
    with pytest.raises(dataclasses.FrozenInstanceError):
        audited.allow = True  # type: ignore[misc]
    assert hash(audited) == hash(REFUSAL)
    assert repr(audited) == repr(REFUSAL)
