"""One structured ``decision`` log event per request, with every DecisionEvent field."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from gateway.appkeys import OBSERVER
from gateway.config.model import GatewayConfig
from gateway.observability.events import DECISION_LOG_KEYS
from tests.fixtures.observability import ROUTE, decision, json_lines, observability_app

ALL_FIELDS = DECISION_LOG_KEYS | {"event_type", "afzender", "ontvanger", "subjects", "records"}


def decision_lines(out: str) -> list[dict[str, Any]]:
    return [line for line in json_lines(out) if line.get("event") == "decision"]


def test_allow_logs_one_decision_event_with_every_field(
    write_config: Callable[..., GatewayConfig], capsys: pytest.CaptureFixture[str]
) -> None:
    app = observability_app(write_config())
    capsys.readouterr()
    app[OBSERVER].decision(decision())
    (line,) = decision_lines(capsys.readouterr().out)
    assert set(line) >= ALL_FIELDS
    assert line["level"] == "info"
    assert line["logger"] == "gateway.decision"
    assert line["timestamp"].endswith("Z")
    assert line["outcome"] == "allow"
    assert line["status"] == 200
    assert line["client_id"] == "ciz"
    assert line["afzender"] == "KVK:62253778"
    assert line["ontvanger"] == "UZOVI:5151"
    assert line["event_type"] == "NIEUWE_INDICATIE_ZORGKANTOOR"
    assert line["subjects"] == ["Client"]
    assert line["records"] == ["rec-1"]
    assert line["trace_id"] == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert line["upstream_ms"] == 3.2
    assert line["total_ms"] == 4.1


DENIALS = [
    pytest.param(
        {"status": 401, "code": "UNAUTHENTICATED", "reason": "token expired"},
        id="unauthenticated",
    ),
    pytest.param(
        {"status": 403, "code": "FORBIDDEN", "reason": "Request Does Not Match Scopes"},
        id="scope",
    ),
    pytest.param(
        {"status": 400, "code": "GRAPHQL_PARSE_FAILED", "reason": "Invalid Query Syntax"},
        id="parse",
    ),
    pytest.param(
        {
            "status": 400,
            "code": "BAD_REQUEST",
            "reason": "Only one operation at the time is supported.",
        },
        id="bad-request",
    ),
    pytest.param(
        {
            "status": 400,
            "code": "GRAPHQL_VALIDATION_FAILED",
            "reason": "afzender_id is not valid",
            "rule": "afzender_id",
            "location": "policies/iwlz/notificatie.yaml:42",
        },
        id="policy-reason",
    ),
    pytest.param(
        {"status": 403, "code": "FORBIDDEN", "reason": "Policy Access Denied"},
        id="policy-access-denied",
    ),
    pytest.param(
        {"status": 413, "code": "PAYLOAD_TOO_LARGE", "reason": "payload too large"},
        id="too-large",
    ),
]


@pytest.mark.parametrize("deny", DENIALS)
def test_each_deny_kind_logs_status_code_reason_and_rule(
    deny: dict[str, Any],
    write_config: Callable[..., GatewayConfig],
    capsys: pytest.CaptureFixture[str],
) -> None:
    app = observability_app(write_config())
    capsys.readouterr()
    app[OBSERVER].decision(decision(outcome="deny", upstream_ms=None, **deny))
    (line,) = decision_lines(capsys.readouterr().out)
    assert line["outcome"] == "deny"
    assert line["upstream_ms"] is None
    for key, value in deny.items():
        assert line[key] == value


@pytest.mark.parametrize(
    ("status", "code", "kind"),
    [(502, "BAD_GATEWAY", "refused"), (504, "GATEWAY_TIMEOUT", "timeout")],
)
def test_upstream_failure_logs_an_error_decision_at_warning_level(
    status: int,
    code: str,
    kind: str,
    write_config: Callable[..., GatewayConfig],
    capsys: pytest.CaptureFixture[str],
) -> None:
    app = observability_app(write_config())
    capsys.readouterr()
    app[OBSERVER].decision(
        decision(outcome="error", status=status, code=code, upstream_error=kind, upstream_ms=None)
    )
    (line,) = decision_lines(capsys.readouterr().out)
    assert line["level"] == "warning"
    assert (line["outcome"], line["status"], line["code"]) == ("error", status, code)
    assert line["upstream_error"] == kind


def test_decision_log_off_writes_no_decision_line_but_still_counts(
    write_config: Callable[..., GatewayConfig], capsys: pytest.CaptureFixture[str]
) -> None:
    from gateway.observability.http import METRICS_KEY

    app = observability_app(write_config(decision_log=False))
    capsys.readouterr()
    app[OBSERVER].decision(decision())
    assert decision_lines(capsys.readouterr().out) == []
    value = app[METRICS_KEY].registry.get_sample_value(
        "nid_gateway_decisions_total",
        {"outcome": "allow", "route": ROUTE, "code": "none", "rule": "none"},
    )
    assert value == 1.0


def test_token_event_is_logged_without_token_or_secret(
    write_config: Callable[..., GatewayConfig], capsys: pytest.CaptureFixture[str]
) -> None:
    from gateway.observability.events import TokenEvent

    app = observability_app(write_config())
    capsys.readouterr()
    app[OBSERVER].token(
        TokenEvent(
            outcome="issued",
            client_id="ciz",
            auth_method="client_secret_basic",
            scopes=("organisaties/zorgkantoor/notificaties/notificatie:create",),
            audience="http://127.0.0.1:8080" + ROUTE,
            jti="jti-1",
        )
    )
    (line,) = [x for x in json_lines(capsys.readouterr().out) if x["event"] == "token"]
    assert line["client_id"] == "ciz"
    assert line["jti"] == "jti-1"
    assert line["scopes"] == ["organisaties/zorgkantoor/notificaties/notificatie:create"]
    assert line["outcome"] == "issued"


def test_an_audit_name_like_a_secret_is_redacted_in_the_decision_line(
    write_config: Callable[..., GatewayConfig], capsys: pytest.CaptureFixture[str]
) -> None:
    # The decision log's own keys are checked once; the audit names, which policies choose,
    # are checked per line.
    app = observability_app(write_config())
    event = decision()
    event.audit = {**event.audit, "api_key": "plain-value"}
    capsys.readouterr()
    app[OBSERVER].decision(event)
    (line,) = decision_lines(capsys.readouterr().out)
    assert line["api_key"] == "[REDACTED]"
    assert "plain-value" not in capsys.readouterr().out
