"""request_trace(): the PEP's ids and trace headers in one call, the same as TraceContext's.

Each request gets its own decision id, span and (when the caller sent none) trace and
request id; an incoming ``traceparent`` or B3 trace is continued; and the ``Name: value``
lines the upstream gets are the trace headers the caller gets, in the same order.
"""

from __future__ import annotations

import os
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from multidict import CIMultiDict, CIMultiDictProxy

from gateway.pep.trace import TraceContext, request_trace

HEX32 = re.compile(r"^[0-9a-f]{32}$")
HEX16 = re.compile(r"^[0-9a-f]{16}$")
TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-(0[01])$")
CALLER_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN = "00f067aa0ba902b7"


def headers(*pairs: tuple[str, str]) -> CIMultiDictProxy[str]:
    return CIMultiDictProxy(CIMultiDict(pairs))


def test_ids_are_unique_per_request() -> None:
    traces = [request_trace(headers()) for _ in range(500)]
    for index in range(3):  # decision id, trace id, request id
        assert len({trace[index] for trace in traces}) == 500
    assert len({trace[3]["X-B3-SpanId"] for trace in traces}) == 500


def test_a_new_trace_has_the_header_formats() -> None:
    decision_id, trace_id, request_id, trace_headers, lines = request_trace(headers())
    assert HEX32.match(decision_id)
    assert HEX32.match(request_id)
    match = TRACEPARENT.match(trace_headers["traceparent"])
    assert match is not None
    assert match.group(1) == trace_id
    assert match.group(3) == "01"  # sampled unless the caller said otherwise
    assert trace_headers["X-B3-TraceId"] == trace_id
    assert trace_headers["X-B3-SpanId"] == match.group(2)
    assert HEX16.match(trace_headers["X-B3-SpanId"])
    assert trace_headers["X-Request-ID"] == request_id
    assert "X-B3-ParentSpanId" not in trace_headers  # nothing to continue
    assert lines == [f"{name}: {value}" for name, value in trace_headers.items()]


def test_an_incoming_traceparent_is_continued() -> None:
    incoming = headers(("traceparent", f"00-{CALLER_TRACE}-{CALLER_SPAN}-00"))
    _decision_id, trace_id, _request_id, trace_headers, lines = request_trace(incoming)
    assert trace_id == CALLER_TRACE
    match = TRACEPARENT.match(trace_headers["traceparent"])
    assert match is not None
    assert match.group(1) == CALLER_TRACE
    assert match.group(2) != CALLER_SPAN  # the gateway's own span
    assert match.group(3) == "00"  # the caller's flags
    assert trace_headers["X-B3-TraceId"] == CALLER_TRACE
    assert trace_headers["X-B3-ParentSpanId"] == CALLER_SPAN
    assert lines[-1] == f"X-B3-ParentSpanId: {CALLER_SPAN}"
    assert lines == [f"{name}: {value}" for name, value in trace_headers.items()]


def test_a_sane_request_id_is_kept_and_another_replaced() -> None:
    assert request_trace(headers(("X-Request-ID", "abc-123")))[2] == "abc-123"
    replaced = request_trace(headers(("X-Request-ID", "no spaces allowed")))[2]
    assert HEX32.match(replaced)


_TRACE_VALUES = st.sampled_from(
    [
        f"00-{CALLER_TRACE}-{CALLER_SPAN}-01",
        f" 00-{CALLER_TRACE.upper()}-{CALLER_SPAN}-00 ",
        f"ff-{CALLER_TRACE}-{CALLER_SPAN}-01",
        f"00-{'0' * 32}-{CALLER_SPAN}-01",
        "garbage",
    ]
)
_B3_TRACES = st.sampled_from([CALLER_TRACE, CALLER_TRACE[:16], "0" * 16, "xyz"])
_SPANS = st.sampled_from([CALLER_SPAN, "short", ""])
_SAMPLED = st.sampled_from(["0", "1", " 0 "])
_REQUEST_IDS = st.sampled_from(["req-1", "", "a b", "x" * 129])


@settings(max_examples=300, deadline=None)
@given(
    st.fixed_dictionaries(
        {},
        optional={
            "traceparent": _TRACE_VALUES,
            "X-B3-TraceId": _B3_TRACES,
            "X-B3-SpanId": _SPANS,
            "X-B3-Sampled": _SAMPLED,
            "X-Request-ID": _REQUEST_IDS,
        },
    )
)
def test_request_trace_is_trace_context(incoming: dict[str, str]) -> None:
    """Whatever the caller sends, the ids and headers are TraceContext's (the REST and
    AuthZEN endpoints still use it), and the lines are those headers."""
    received = headers(*incoming.items())
    with pytest.MonkeyPatch.context() as patch:
        # The same random bytes for both calls, so their fresh ids are comparable.
        patch.setattr(os, "urandom", lambda n: bytes(range(1, n + 1)))
        context = TraceContext.from_headers(received)
        decision_id, trace_id, request_id, trace_headers, lines = request_trace(received)
    assert (decision_id, trace_id, request_id) == (
        context.decision_id,
        context.trace_id,
        context.request_id,
    )
    assert list(trace_headers.items()) == list(context.headers().items())
    assert lines == [": ".join(item) for item in context.headers().items()]
