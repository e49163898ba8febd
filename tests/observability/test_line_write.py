"""How a queued line reaches stdout: bytes straight to a plain UTF-8 wrapper's buffer (no
decode and re-encode on the per-request path), text otherwise, and always the same bytes
in the same order as ``write`` would give."""

from __future__ import annotations

import datetime as dt
import io
import json
import sys
import time
from typing import Any

import pytest

from gateway.observability.logs import (
    configure_logging,
    emit_bytes,
    emit_json_event,
    emit_line,
    flush_pending,
    iso_timestamp,
)
from gateway.observability.metrics import GatewayMetrics
from gateway.observability.observer import GatewayObserver
from tests.fixtures.observability import decision


class _Spy:
    """Records the text handed to a wrapper's ``write`` (an instance attribute shadows it)."""

    def __init__(self, out: io.TextIOWrapper) -> None:
        self.texts: list[str] = []
        self._write = out.write
        out.write = self  # type: ignore[method-assign]

    def __call__(self, text: str) -> int:
        self.texts.append(text)
        return self._write(text)


def _wrapper(encoding: str = "utf-8") -> io.TextIOWrapper:
    return io.TextIOWrapper(io.BytesIO(), encoding=encoding)


def _written(out: io.TextIOWrapper) -> bytes:
    out.flush()
    buffer = out.buffer
    assert isinstance(buffer, io.BytesIO)
    return buffer.getvalue()


def test_bytes_lines_go_to_the_buffer_after_the_text_written_before(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    out = _wrapper()
    spy = _Spy(out)
    monkeypatch.setattr(sys, "stdout", out)
    print("before é", end="\n")  # pending in the wrapper, not yet in its buffer
    emit_bytes('{"a":"é"}\n'.encode())
    emit_bytes(b'{"b":2}\n')
    flush_pending()
    print("after")
    assert _written(out) == 'before é\n{"a":"é"}\n{"b":2}\nafter\n'.encode()
    assert spy.texts == ["before é", "\n", "after", "\n"]  # the lines never went as text


def test_text_and_bytes_lines_keep_their_order(monkeypatch: pytest.MonkeyPatch) -> None:
    out = _wrapper()
    monkeypatch.setattr(sys, "stdout", out)
    flush_pending()
    import gateway.observability.logs as logs

    # Queued as on the event loop (flushed together at the end of the iteration).
    logs._pending.extend([b'{"one":1}\n', "two ü\n", b'{"three":3}\n'])
    flush_pending()
    emit_line("four")
    assert _written(out) == '{"one":1}\ntwo ü\n{"three":3}\nfour\n'.encode()


@pytest.mark.parametrize("encoding", ["latin-1", "ascii"])
def test_a_wrapper_not_encoding_utf8_gets_text(
    monkeypatch: pytest.MonkeyPatch, encoding: str
) -> None:
    out = _wrapper(encoding)
    spy = _Spy(out)
    monkeypatch.setattr(sys, "stdout", out)
    emit_bytes('{"a":"é"}\n'.encode() if encoding != "ascii" else b'{"a":1}\n')
    flush_pending()
    expected = '{"a":"é"}\n' if encoding != "ascii" else '{"a":1}\n'
    assert spy.texts == [expected]
    assert _written(out) == expected.encode(encoding)


def test_a_stream_without_buffer_gets_text(monkeypatch: pytest.MonkeyPatch) -> None:
    out = io.StringIO()
    monkeypatch.setattr(sys, "stdout", out)
    emit_bytes('{"a":"é"}\n'.encode())
    flush_pending()
    assert out.getvalue() == '{"a":"é"}\n'


def test_the_stdout_of_the_moment_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    first, second = _wrapper(), io.StringIO()
    monkeypatch.setattr(sys, "stdout", first)
    emit_bytes(b"1\n")
    monkeypatch.setattr(sys, "stdout", second)
    emit_bytes(b"2\n")
    monkeypatch.setattr(sys, "stdout", first)
    emit_bytes(b"3\n")
    assert _written(first) == b"1\n3\n" and second.getvalue() == "2\n"


def _series(metrics: GatewayMetrics) -> list[tuple[str, dict[str, str]]]:
    metrics.flush()
    return sorted(
        (sample.name, sample.labels)  # type: ignore[misc]
        for family in metrics.registry.collect()
        if family.name.startswith(("nid_gateway_policy", "nid_gateway_upstream_duration"))
        for sample in family.samples
        if sample.name.endswith("_count")
    )


def test_a_decision_without_timings_creates_no_route_timing_series() -> None:
    metrics = GatewayMetrics(routes=frozenset({"/r"}))
    observer = GatewayObserver(metrics, decision_log=False)
    untimed: Any = decision(route="/r", policy_ms=None, upstream_ms=None)
    observer.decision(untimed)
    assert _series(metrics) == []
    observer.decision(decision(route="/r", policy_ms=0.5, upstream_ms=None))
    names = [name for name, _ in _series(metrics)]
    # Both the route's series, as before (one lookup makes both), once timed.
    assert names == [
        "nid_gateway_policy_duration_seconds_count",
        "nid_gateway_upstream_duration_seconds_count",
    ]


@pytest.mark.parametrize(
    "fraction", [0.0, 0.000001, 0.120034, 0.5, 0.9999994, 0.9999996, 0.9999997, 0.999999]
)
def test_a_direct_line_carries_iso_timestamp_of_its_moment(
    monkeypatch: pytest.MonkeyPatch, fraction: float
) -> None:
    configure_logging("json", "info")
    moment = dt.datetime(2026, 11, 29, 23, 59, 59, tzinfo=dt.UTC).timestamp() + fraction
    out = io.StringIO()
    monkeypatch.setattr(sys, "stdout", out)
    monkeypatch.setattr(time, "time", lambda: moment)
    emit_json_event("gateway.decision", "info", "decision", {"outcome": "allow"})
    emit_json_event("gateway.decision", "info", "decision", {})
    flush_pending()
    monkeypatch.undo()
    stamps = [json.loads(line)["timestamp"] for line in out.getvalue().splitlines()]
    assert stamps == [iso_timestamp(moment)] * 2
