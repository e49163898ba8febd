"""Trace context and request id: continued from the caller, or created.

The gateway is one span in the caller's trace. W3C ``traceparent`` keeps its trace id and
gets a new span id (ours); B3 (``X-B3-TraceId``/``X-B3-SpanId``, what nID uses) likewise, with
the caller's span as ``X-B3-ParentSpanId``. When only one format arrives, the other reuses its
trace id, so both name the same trace. ``X-Request-ID`` is continued when it is sane, else
created. The same headers go upstream and back to the caller, refusals included.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from multidict import CIMultiDictProxy, istr

_TRACEPARENT = re.compile(r"^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")
_B3_TRACE = re.compile(r"^(?:[0-9a-f]{16}|[0-9a-f]{32})$")
_B3_SPAN = re.compile(r"^[0-9a-f]{16}$")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:/+=@-]{1,128}$")
_ZERO_TRACE = "0" * 32
_ZERO_SPAN = "0" * 16
_H_TRACEPARENT = istr("traceparent")
_H_B3_TRACE = istr("X-B3-TraceId")
_H_B3_SPAN = istr("X-B3-SpanId")
_H_B3_SAMPLED = istr("X-B3-Sampled")
_H_REQUEST_ID = istr("X-Request-ID")


@dataclass(slots=True)
class TraceContext:
    """The trace identifiers of one request through the gateway (and its decision id)."""

    trace_id: str
    """32 hex digits (W3C)."""
    span_id: str
    """The gateway's own span, 16 hex digits."""
    flags: str
    b3_trace_id: str
    """16 or 32 hex digits (as the caller sent it, else the W3C trace id)."""
    b3_parent_span_id: str | None
    request_id: str
    decision_id: str
    """128 random bits naming the decision (refusal bodies, logs, audit)."""

    @classmethod
    def from_headers(cls, headers: CIMultiDictProxy[str]) -> TraceContext:
        """Continue the caller's trace (W3C and/or B3) and request id, or start new ones."""
        return cls(*_continued(headers))

    @property
    def traceparent(self) -> str:
        """The W3C header naming the gateway's span."""
        return f"00-{self.trace_id}-{self.span_id}-{self.flags}"

    def headers(self) -> dict[str, str]:
        """Trace and request-id headers, for the upstream and for the caller."""
        headers = {
            "traceparent": f"00-{self.trace_id}-{self.span_id}-{self.flags}",  # inlined property
            "X-B3-TraceId": self.b3_trace_id,
            "X-B3-SpanId": self.span_id,
            "X-Request-ID": self.request_id,
        }
        if self.b3_parent_span_id is not None:
            headers["X-B3-ParentSpanId"] = self.b3_parent_span_id
        return headers


RequestTrace = tuple[str, str, str, dict[str, str], list[str]]
"""What :func:`request_trace` returns: decision id, trace id, request id, the trace headers
(for the caller and the upstream) and the same headers as ``Name: value`` lines (for the
upstream's request head)."""


def request_trace(headers: CIMultiDictProxy[str]) -> RequestTrace:
    """The ids and trace headers of one request, continued from *headers* or new.

    The PEP's handler keeps these as locals: one call instead of a :class:`TraceContext`,
    its :meth:`~TraceContext.headers` and the header lines made from them again (issue 17).
    The headers are those :meth:`TraceContext.headers` gives, in the same order.
    """
    trace_id, span_id, flags, b3_trace_id, parent, request_id, decision_id = _continued(headers)
    traceparent = f"00-{trace_id}-{span_id}-{flags}"
    trace_headers = {
        "traceparent": traceparent,
        "X-B3-TraceId": b3_trace_id,
        "X-B3-SpanId": span_id,
        "X-Request-ID": request_id,
    }
    lines = [
        "traceparent: " + traceparent,
        "X-B3-TraceId: " + b3_trace_id,
        "X-B3-SpanId: " + span_id,
        "X-Request-ID: " + request_id,
    ]
    if parent is not None:
        trace_headers["X-B3-ParentSpanId"] = parent
        lines.append("X-B3-ParentSpanId: " + parent)
    return decision_id, trace_id, request_id, trace_headers, lines


_Ids = tuple[str, str, str, str, str | None, str, str]
"""trace id, span id, flags, B3 trace id, parent span id, request id, decision id."""


def _continued(headers: CIMultiDictProxy[str]) -> _Ids:
    """The trace identifiers of a request, continued from *headers* or new.

    On the hot path of every request (issue 17): header names are ``istr`` constants
    (multidict folds their case once, not per lookup), and a request that brings no trace
    headers takes a short path.
    """
    # One getrandom(2) call per request for every id it may need: trace (16 bytes),
    # span (8), request id (16), decision id (16).
    fresh = os.urandom(56).hex()
    get = headers.get
    traceparent = get(_H_TRACEPARENT)
    b3_header = get(_H_B3_TRACE)
    request_id = get(_H_REQUEST_ID)
    if traceparent is None and b3_header is None:
        new_trace = fresh[:32]
        return (
            new_trace,
            fresh[32:48],
            "00" if get(_H_B3_SAMPLED, "").strip() == "0" else "01",
            new_trace,
            None,
            _request_id(request_id, fresh),
            fresh[80:112],
        )
    trace_id = flags = parent = None
    b3_trace = ""
    if traceparent is not None:
        match = _TRACEPARENT.match(traceparent.strip().lower())
        if (
            match
            and match.group(1) != "ff"
            and match.group(2) != _ZERO_TRACE
            and (match.group(3) != _ZERO_SPAN)
        ):
            trace_id, parent, flags = match.group(2), match.group(3), match.group(4)
    if b3_header is not None:
        b3_trace = b3_header.strip().lower()
        b3_span = get(_H_B3_SPAN, "").strip().lower()
        if not _B3_TRACE.match(b3_trace) or set(b3_trace) == {"0"}:
            b3_trace = ""
        elif _B3_SPAN.match(b3_span):
            parent = b3_span
    if trace_id is None:
        trace_id = b3_trace.rjust(32, "0") if b3_trace else fresh[:32]
        flags = "00" if get(_H_B3_SAMPLED, "").strip() == "0" else "01"
    return (
        trace_id,
        fresh[32:48],
        flags or "01",
        b3_trace or trace_id,
        parent,
        _request_id(request_id, fresh),
        fresh[80:112],
    )


def _request_id(sent: str | None, fresh: str) -> str:
    """The caller's ``X-Request-ID`` when it is sane, else a new one from *fresh*."""
    if sent is not None:
        sent = sent.strip()
        if sent and _REQUEST_ID.match(sent):
            return sent
    return fresh[48:80]
