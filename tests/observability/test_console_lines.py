"""Console log lines (the demo's, ``log_format: console``) stay short: correlation ids and
repeated fields left out, empty fields dropped, durations rounded, long values shortened in
the middle; the reason is kept whole. JSON lines keep everything."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from gateway.observability.logs import configure_logging, emit_json_event, flush_pending
from tests.fixtures.observability import decision

LOCATION = "/home/someone/projects/nid-gateway/policies/iwlz/notificatie.yaml:4"
REASON = "afzender_id is not valid: afzenderID is not the caller's own identifier (KVK)"


@pytest.fixture
def console() -> Iterator[None]:
    configure_logging("console", "info")
    try:
        yield
    finally:
        configure_logging("json", "info")


def logged(capsys: pytest.CaptureFixture[str], **fields: object) -> str:
    capsys.readouterr()
    emit_json_event("gateway.decision", "info", "decision", decision(**fields).fields())
    flush_pending()
    (line,) = capsys.readouterr().out.splitlines()
    return line


def test_a_console_decision_line_is_short(
    console: None, capsys: pytest.CaptureFixture[str]
) -> None:
    line = logged(
        capsys,
        location=LOCATION,
        reason=REASON,
        outcome="deny",
        code=None,
        total_ms=15.537462,
        records=("WlzIndicatie/ef88ce35",),
    )
    assert "trace_id" not in line and "request_id" not in line and "records=" not in line
    assert "code=" not in line  # None
    assert "total_ms=15.5 " in line
    assert "location=/home/someone/projects/n…iwlz/notificatie.yaml:4" in line
    assert f'reason="{REASON}"' in line
    assert "decision_id=d-0001" in line  # what a caller quotes from extensions.decision_id
    assert len(line) < 620, len(line)  # before (every field whole): 826


def test_json_lines_keep_every_field(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("json", "info")
    line = logged(capsys, location=LOCATION, total_ms=15.537462)
    assert LOCATION in line and "15.537462" in line and "trace_id" in line
