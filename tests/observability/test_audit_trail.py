"""The append-only JSON-lines audit file: records, rotation, fsync policies."""

from __future__ import annotations

import datetime as dt
import json
import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from pytest_aiohttp import AiohttpClient

from gateway.appkeys import OBSERVER
from gateway.config.model import AuditConfig, GatewayConfig
from gateway.observability.audit_trail import AuditWriter
from gateway.observability.events import TokenEvent
from tests.fixtures.observability import decision, observability_app


def read_records(*paths: Path) -> list[dict[str, object]]:
    return [json.loads(line) for p in paths for line in p.read_text().splitlines()]


def test_records_are_json_lines_readable_before_close(tmp_path: Path) -> None:
    writer = AuditWriter(AuditConfig(path=tmp_path / "audit.jsonl", fsync="never"))
    writer.write({"n": 1})
    writer.write({"n": 2})
    # Written with write(2) at once: a crash of the process after this point loses nothing.
    assert read_records(tmp_path / "audit.jsonl") == [{"n": 1}, {"n": 2}]
    writer.close()


def test_size_rotation_never_loses_or_splits_a_record(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    writer = AuditWriter(AuditConfig(path=path, max_bytes=1024, fsync="always"))
    for n in range(200):
        writer.write({"n": n, "pad": "x" * 40})
    writer.close()
    rotated = writer.rotated_files()
    assert len(rotated) >= 5
    for p in [*rotated, path]:
        assert p.stat().st_size <= 1024
    records = read_records(*rotated, path)
    assert [r["n"] for r in records] == list(range(200))


def test_date_rotation_starts_a_new_file_per_utc_day(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    day1 = dt.datetime(2026, 11, 22, 23, 59, 59, tzinfo=dt.UTC).timestamp()
    day2 = dt.datetime(2026, 11, 23, 0, 0, 1, tzinfo=dt.UTC).timestamp()
    # A file left by an earlier run on day 1: it belongs to the day it was last written.
    path.write_text(json.dumps({"n": 1}) + "\n")
    os.utime(path, (day1, day1))
    writer = AuditWriter(AuditConfig(path=path, fsync="never"))
    writer.write({"n": 2}, now=day1)
    writer.write({"n": 3}, now=day2)
    writer.close()
    assert [p.name for p in writer.rotated_files()] == ["audit.2026-11-22.1.jsonl"]
    assert read_records(tmp_path / "audit.2026-11-22.1.jsonl") == [{"n": 1}, {"n": 2}]
    assert read_records(path) == [{"n": 3}]


def test_reopening_appends_to_the_existing_file(tmp_path: Path) -> None:
    config = AuditConfig(path=tmp_path / "audit.jsonl", fsync="always", rotate_daily=False)
    first = AuditWriter(config)
    first.write({"n": 1})
    first.close()
    second = AuditWriter(config)
    second.write({"n": 2})
    second.close()
    assert read_records(config.path) == [{"n": 1}, {"n": 2}]


def test_interval_mode_syncs_in_the_background(tmp_path: Path) -> None:
    writer = AuditWriter(
        AuditConfig(path=tmp_path / "audit.jsonl", fsync="interval", fsync_interval=0.05)
    )
    writer.write({"n": 1})
    assert writer._dirty
    assert writer._thread is not None and writer._thread.is_alive()
    deadline = time.monotonic() + 5
    while writer._dirty and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not writer._dirty  # the sync thread flushed it
    writer.close()
    assert writer._thread is None


@pytest.mark.parametrize("mode", ["always", "interval", "never"])
def test_every_fsync_mode_keeps_every_record_and_close_is_idempotent(
    tmp_path: Path, mode: str
) -> None:
    writer = AuditWriter(AuditConfig(path=tmp_path / "a.jsonl", fsync=mode))  # type: ignore[arg-type]
    for n in range(10):
        writer.write({"n": n})
    writer.close()
    writer.close()
    assert [r["n"] for r in read_records(tmp_path / "a.jsonl")] == list(range(10))
    with pytest.raises(RuntimeError):
        writer.write({"n": 10})


async def test_app_audits_decisions_and_tokens_even_with_decision_log_off(
    tmp_path: Path,
    aiohttp_client: AiohttpClient,
    write_config: Callable[..., GatewayConfig],
) -> None:
    audit_path = tmp_path / "audit" / "audit.jsonl"
    config = write_config(decision_log=False, audit={"path": str(audit_path), "fsync": "always"})
    app = observability_app(config)
    await aiohttp_client(app)
    app[OBSERVER].decision(decision())
    app[OBSERVER].decision(decision(outcome="deny", status=403, operation_name="eyJa.eyJb.sig"))
    app[OBSERVER].token(TokenEvent(outcome="issued", client_id="ciz", jti="j1"))
    first, second, token = read_records(audit_path)
    # Every field of the event, in order, after the timestamp and the record type.
    expected = json.loads(json.dumps(decision().fields()))
    assert list(first) == ["timestamp", "type", *expected]
    assert {k: v for k, v in first.items() if k not in ("timestamp", "type")} == expected
    assert list(second) == list(first)
    assert first["type"] == "decision" and first["outcome"] == "allow"
    assert first["afzender"] == "KVK:62253778"
    assert str(first["timestamp"]).endswith("Z")
    assert second["operation_name"] == "[REDACTED]"
    assert token["type"] == "token" and token["jti"] == "j1"
