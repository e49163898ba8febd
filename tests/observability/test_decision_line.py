"""The decision line from remembered fragments is the generic render, byte for byte.

``DecisionLine`` renders the decision log's line from one fragment of its fixed values,
cached by those values, and the per-request values rendered; these tests hold it to
``orjson.dumps(event.fields())`` and to the observer's generic line (whose bytes
tests/observability/test_fast_log_path.py holds to the structlog chain), and prove that no
fragment crosses to other values and no secret reaches a line.
"""

from __future__ import annotations

import io
import time
from contextlib import redirect_stdout
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.observability.events import DecisionEvent
from gateway.observability.logs import configure_logging, flush_pending
from gateway.observability.metrics import GatewayMetrics
from gateway.observability.observer import DecisionLine, GatewayObserver
from tests.fixtures.observability import JWT, ROUTE, decision

_TEXT = st.one_of(
    st.none(),
    st.text(max_size=12),
    st.sampled_from(
        [JWT, "Bearer abc", "token=abc", 'a"b', "x\\y", "é", "{}", "eyJ", "\x00\n\t", "\u2028"]
    ),
)
_NUMBER = st.one_of(st.none(), st.floats(allow_nan=False, allow_infinity=False), st.integers())
_AUDIT = st.dictionaries(
    st.sampled_from(["afzender", "ontvanger", "records", "api_key", "status", "x"]),
    st.one_of(_TEXT, st.lists(_TEXT, max_size=3).map(tuple)),
    max_size=4,
)
_KEYS = {
    "decision_id": st.text(max_size=8),
    "outcome": st.sampled_from(["allow", "deny", "error"]),
    "status": st.one_of(st.sampled_from([200, 403, 502]), st.booleans(), st.floats(0, 600)),
    "route": st.sampled_from([ROUTE, "/b", 'r"t']),
    "reason": _TEXT,
    "code": _TEXT,
    "rule": _TEXT,
    "location": _TEXT,
    "client_id": _TEXT,
    "sub": _TEXT,
    "identifier": _TEXT,
    "actor": _TEXT,
    "operation_name": _TEXT,
    "root_field": st.text(max_size=8),
    "policy_version": _TEXT,
    "upstream_ms": _NUMBER,
    "policy_ms": _NUMBER,
    "total_ms": st.floats(allow_nan=False, allow_infinity=False),
    "trace_id": _TEXT,
    "request_id": _TEXT,
    "upstream_error": _TEXT,
}
_EVENTS = st.builds(
    lambda overrides, audit, bare: _bare(decision(**overrides), bare, audit),
    st.fixed_dictionaries({}, optional=_KEYS),
    _AUDIT,
    st.sets(st.sampled_from(["token", "operation", "decision"])),
)


def _bare(event: DecisionEvent, bare: set[str], audit: dict[str, Any]) -> DecisionEvent:
    for name in bare:
        setattr(event, name, None)
    event.audit = audit
    return event


@settings(max_examples=300)
@given(st.lists(_EVENTS, min_size=1, max_size=4))
def test_the_fragment_line_is_the_generic_render(events: list[DecisionEvent]) -> None:
    # One renderer for the whole list: fragments of an earlier event must not leak.
    line = DecisionLine()
    for event in events:
        body = line.render(event)
        if body is not None:
            assert body == orjson.dumps(event.fields())


@settings(max_examples=200, deadline=None)
@given(st.lists(_EVENTS, min_size=1, max_size=4))
def test_the_observer_line_is_the_generic_line_for_any_values(
    events: list[DecisionEvent],
) -> None:
    # One observer for the whole list: a fragment of an earlier event must not reach a
    # later line; each line is the one the generic path (structlog's chain when a value
    # needs redaction) writes at the same moment.
    configure_logging("json", "info")
    fast = GatewayObserver(GatewayMetrics(routes=frozenset({ROUTE})))
    generic = GatewayObserver(GatewayMetrics(routes=frozenset({ROUTE})))
    generic._line = _NoFragments()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(time, "time", lambda: 1764867600.123456)
        for event in events:
            try:
                expected = _written(generic, event)
            except TypeError:  # an integer beyond 64 bits: neither path can write it
                with pytest.raises(TypeError):
                    _written(fast, event)
                continue
            assert _written(fast, event) == expected


class _NoFragments(DecisionLine):
    """Sends every event the generic way."""

    def pieces(self, event: DecisionEvent) -> None:
        return None


_SECRETS = st.sampled_from([JWT, "Bearer " + JWT, "access_token=" + JWT])
_PER_REQUEST = ["decision_id", "trace_id", "request_id", "afzender", "records", "reason"]


@settings(max_examples=100, deadline=None)
@given(st.sampled_from(_PER_REQUEST), _SECRETS, st.text(max_size=6))
def test_a_secret_in_any_per_request_field_never_reaches_the_line(
    key: str, secret: str, around: str
) -> None:
    configure_logging("json", "info")
    observer = GatewayObserver(GatewayMetrics(routes=frozenset({ROUTE})))
    observer.decision(decision())  # the fixed fragment is remembered clean
    value = around + secret + around
    line = _written(observer, decision(**{key: (value,) if key == "records" else value}))
    assert JWT not in line and '"event":"decision"' in line


def test_a_remembered_fragment_never_reaches_a_line_with_other_values() -> None:
    configure_logging("json", "info")
    observer = GatewayObserver(GatewayMetrics(routes=frozenset({ROUTE})))
    first = _written(observer, decision(client_id="ciz", reason="first-reason", actor="a1"))
    later = _written(observer, decision(client_id="zk", reason="other", actor=None))
    assert "first-reason" in first and "first-reason" not in later
    assert '"client_id":"zk"' in later and '"actor":null' in later


def test_a_typical_decision_takes_the_fragment_line() -> None:
    line = DecisionLine()
    event = decision()
    assert line.render(event) == line.render(event) == orjson.dumps(event.fields())


@pytest.mark.parametrize(
    "event",
    [
        pytest.param(decision(status=True), id="status-not-int"),
        pytest.param(_bare(decision(), set(), {"api_key": "k"}), id="audit-name-like-a-secret"),
        pytest.param(_bare(decision(), set(), {"status": 1}), id="audit-name-like-a-log-key"),
        pytest.param(_bare(decision(), set(), {"x": object()}), id="value-orjson-cannot-render"),
    ],
)
def test_what_the_fragment_line_cannot_prove_goes_the_generic_way(event: DecisionEvent) -> None:
    assert DecisionLine().render(event) is None


def test_no_fragment_crosses_tokens_operations_or_routes() -> None:
    line = DecisionLine()
    first = decision(client_id="ciz", sub="ciz", root_field="zendNotificatie")
    line.render(first)
    other = decision(
        client_id="zk", sub="zk", identifier="5151", route="/other", root_field="other"
    )
    rendered = orjson.loads(line.render(other) or b"{}")
    assert (rendered["client_id"], rendered["sub"], rendered["identifier"]) == ("zk", "zk", "5151")
    assert (rendered["route"], rendered["root_field"]) == ("/other", "other")
    assert line.render(first) == orjson.dumps(first.fields())


def _written(observer: GatewayObserver, event: DecisionEvent) -> str:
    out = io.StringIO()
    with redirect_stdout(out):
        observer.decision(event)
        flush_pending()
    return out.getvalue()


@pytest.mark.parametrize(
    "overrides",
    [{}, {"reason": JWT, "outcome": "deny", "status": 403}, {"afzender": "Bearer " + JWT}],
    ids=["allow", "jwt-reason", "secret-audit-value"],
)
def test_the_observer_line_is_the_generic_line(
    overrides: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    configure_logging("json", "info")
    # One moment for both lines (the direct line and structlog's chain read the clock).
    monkeypatch.setattr(time, "time", lambda: 1764867600.000001)
    observer = GatewayObserver(GatewayMetrics(routes=frozenset({ROUTE})))
    fast = _written(observer, decision(**overrides))
    monkeypatch.setattr(DecisionLine, "pieces", lambda self, event: None)
    assert fast == _written(observer, decision(**overrides))
    assert JWT not in fast


def test_the_decision_log_alone_does_not_flatten_the_event(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    configure_logging("json", "info")
    flattened: list[DecisionEvent] = []
    generic = DecisionEvent.fields

    def counted(self: DecisionEvent) -> dict[str, Any]:
        flattened.append(self)
        return generic(self)

    monkeypatch.setattr(DecisionEvent, "fields", counted)
    observer = GatewayObserver(GatewayMetrics(routes=frozenset({ROUTE})))
    assert '"event":"decision"' in _written(observer, decision())
    assert flattened == []
