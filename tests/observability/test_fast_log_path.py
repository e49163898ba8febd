"""The decision log's short path renders exactly what the structlog chain would, or defers.

``emit_json_event`` is on the per-request path; these tests hold it to the full chain:
same keys in the same order, same level filter, and every value that could carry a secret
sent through redaction.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.observability.events import TokenEvent
from gateway.observability.logs import (
    as_record,
    configure_logging,
    could_hold_secret,
    emit_json_event,
    flush_pending,
    get_logger,
    iso_timestamp,
)
from gateway.observability.redact import REDACTED, redact_text
from tests.fixtures.observability import JWT, decision


@pytest.fixture
def json_info() -> Iterator[None]:
    configure_logging("json", "info")
    yield
    configure_logging("json", "info")


def lines(capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    flush_pending()
    return [json.loads(line) for line in capsys.readouterr().out.splitlines() if line]


def test_short_path_line_equals_the_structlog_line(
    json_info: None, capsys: pytest.CaptureFixture[str]
) -> None:
    event = TokenEvent(outcome="issued", client_id="ciz", scopes=("a", "b"))
    record = as_record(event)
    capsys.readouterr()
    emit_json_event("gateway.decision", "info", "decision", event)  # the dataclass itself
    emit_json_event("gateway.decision", "info", "decision", record)  # or a mapping
    get_logger("gateway.decision").info("decision", **record)
    from_event, from_record, full = lines(capsys)
    assert list(from_event) == list(from_record) == list(full)  # same keys, same order
    for line in (from_event, from_record, full):
        line.pop("timestamp")
    assert from_event == from_record == full
    assert from_event["scopes"] == ["a", "b"] and from_event["level"] == "info"


def test_short_path_line_of_a_decision_equals_the_structlog_line(
    json_info: None, capsys: pytest.CaptureFixture[str]
) -> None:
    record = decision().fields()
    capsys.readouterr()
    emit_json_event("gateway.decision", "info", "decision", record)
    get_logger("gateway.decision").info("decision", **record)
    short, full = lines(capsys)
    assert list(short) == list(full)  # same keys, same order
    short.pop("timestamp"), full.pop("timestamp")
    assert short == full and short["subjects"] == ["Client"]


def test_an_event_with_no_fields_is_one_valid_line(
    json_info: None, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    emit_json_event("gateway.decision", "info", "decision", {})
    (line,) = lines(capsys)
    assert list(line) == ["logger", "event", "level", "timestamp"]


def test_a_value_orjson_cannot_render_is_logged_as_text(
    json_info: None, capsys: pytest.CaptureFixture[str]
) -> None:
    class Odd:
        def __str__(self) -> str:
            return f"odd {JWT}"

    capsys.readouterr()
    emit_json_event("gateway.decision", "info", "decision", {"value": Odd()})
    (line,) = lines(capsys)
    assert line["value"] == f"odd {REDACTED}"


def test_a_sensitive_key_is_redacted(json_info: None, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    emit_json_event("gateway.token", "info", "token", {"client_secret": "ciz-demo-secret"})
    (line,) = lines(capsys)
    assert line["client_secret"] == REDACTED


@pytest.mark.parametrize(
    "overrides",
    [
        {"reason": f"Syntax Error: Unexpected Name '{JWT}'."},
        {"operation_name": f"Bearer {JWT}"},
        {"subjects": ("Client", JWT)},
        {"records": ("rec-1", f"password=hunter2-{JWT}")},
        {"reason": 'client said "token": "hunter2"'},
        {"reason": "password\t=\thunter2"},
        {"operation_name": "bEaReR\u2003hunter2"},
        {"afzender": "token=hunter2"},
    ],
    ids=[
        "reason",
        "operation-name",
        "in-a-tuple",
        "pair-in-a-tuple",
        "json-pair",
        "tabs",
        "unicode-space",
        "pair",
    ],
)
def test_a_value_that_may_hold_a_secret_is_redacted(
    json_info: None, capsys: pytest.CaptureFixture[str], overrides: dict[str, Any]
) -> None:
    capsys.readouterr()
    emit_json_event("gateway.decision", "info", "decision", decision(**overrides).fields())
    (line,) = lines(capsys)
    text = json.dumps(line)
    assert "eyJzdWIi" not in text and "hunter2" not in text
    assert REDACTED in text
    assert line["client_id"] == "ciz"  # the rest of the event is kept


def test_a_nested_mapping_takes_the_full_chain(
    json_info: None, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    emit_json_event(
        "gateway.decision",
        "info",
        "decision",
        {"detail": {"client_secret": "ciz-demo-secret", "kept": "UZOVI:5151"}},
    )
    (line,) = lines(capsys)
    assert line["detail"] == {"client_secret": REDACTED, "kept": "UZOVI:5151"}


def test_level_filter_applies(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("json", "warning")
    try:
        capsys.readouterr()
        emit_json_event("gateway.decision", "info", "decision", {"outcome": "allow"})
        emit_json_event("gateway.decision", "warning", "decision", {"outcome": "error"})
        (line,) = lines(capsys)
    finally:
        configure_logging("json", "info")
    assert line["outcome"] == "error" and line["level"] == "warning"


def test_console_format_is_honoured(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("console", "info")
    try:
        capsys.readouterr()
        emit_json_event("gateway.decision", "info", "decision", {"outcome": "allow"})
        flush_pending()
        out = capsys.readouterr().out
    finally:
        configure_logging("json", "info")
    assert "decision" in out and "outcome=allow" in out
    assert not out.lstrip().startswith("{")


def test_iso_timestamp_is_utc_with_microseconds() -> None:
    moment = dt.datetime(2026, 11, 29, 23, 59, 59, 120034, tzinfo=dt.UTC).timestamp()
    assert iso_timestamp(moment) == "2026-11-29T23:59:59.120034Z"
    assert iso_timestamp(moment + 1) == "2026-11-30T00:00:00.120034Z"  # next second, new day
    assert iso_timestamp(float(int(moment))) == "2026-11-29T23:59:59.000000Z"
    # A fraction that rounds up to a whole second stays in its second.
    assert iso_timestamp(float(int(moment)) + 0.9999997) == "2026-11-29T23:59:59.999999Z"
    now = dt.datetime.now(dt.UTC)
    parsed = dt.datetime.fromisoformat(iso_timestamp())
    assert abs((parsed - now).total_seconds()) < 5


_PIECES = st.sampled_from(
    [
        "eyJ",
        "eyJhbGciOiJub25lIn0",
        ".",
        "Bearer",
        "bEaReR",
        "basic",
        "dpop",
        "token",
        "secret",
        "password",
        "=",
        '"',
        "'",
        ":",
        " ",
        "\t",
        "\n",
        "\u2003",
        "\xa0",
        "\x1c",
        "{",
        "}",
        "x",
        "KVK:62253778",
        "-",
        "_",
        "J",
    ]
)
_VALUES = st.lists(st.one_of(_PIECES, st.text(max_size=3)), max_size=10).map("".join)


@given(
    st.dictionaries(
        st.sampled_from(["reason", "afzender", "request_id", "operation_name"]),
        st.one_of(_VALUES, st.lists(_VALUES, max_size=3).map(tuple)),
        max_size=4,
    )
)
def test_the_byte_check_never_passes_a_value_redaction_would_change(
    fields: dict[str, Any],
) -> None:
    def changed(value: Any) -> bool:
        if isinstance(value, tuple):
            return any(changed(item) for item in value)
        return bool(redact_text(value) != value)

    if any(changed(value) for value in fields.values()):
        assert could_hold_secret(orjson.dumps(fields))
