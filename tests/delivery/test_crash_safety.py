"""Crash safety (issue 15): ``kill -9`` of a real gateway under load, a restart on the same
store, and every notification answered ``202`` arrives exactly once per Idempotency-Key
(``tests/delivery/crash.py``; ``make crash-test`` runs it 20 times in a row)."""

from __future__ import annotations

from pathlib import Path

from tests.delivery.crash import crash_run


async def test_a_killed_gateway_loses_nothing_it_accepted_and_delivers_each_once(
    tmp_path: Path,
) -> None:
    report = await crash_run(tmp_path / "run")
    assert report.accepted > 0
    assert report.processed >= report.accepted
