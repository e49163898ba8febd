"""``nid-gateway outbox`` (contract: *Reliable delivery*, operators): the commands of
``docs/delivery.md`` run as written against a store with a delivered, a dead and a pending
delivery, and the CLI's answers to mistakes."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from gateway.store.api import Attempt
from gateway.store.sqlite import SqliteStore
from tests.fixtures.docs import REPO, commands
from tests.fixtures.store import sample_delivery

DEMO_CONFIG = "config/demo/gateway.yaml"


async def fill(data: Path) -> None:
    """d-old delivered in 2026-11; d-dead dead after a 400; d-wait pending."""
    store = await SqliteStore.open(data / "nid-gateway.sqlite3")
    november = datetime(2026, 11, 1, tzinfo=UTC)
    try:
        for name in ("d-old", "d-dead", "d-wait"):
            await store.enqueue(sample_delivery(delivery_id=name, sender="ciz", created=november))
        await store.claim_due(10, 30)
        await store.mark_delivered("d-old", Attempt(november, 200, None))
        await store.mark_dead("d-dead", Attempt(november, 400, "HTTP 400"))
        await store.mark_retry("d-wait", Attempt(november, 503, "HTTP 503"), november)
    finally:
        await store.close()


def outbox(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway.cli", "outbox", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )


async def test_the_documented_outbox_commands_run_as_written(tmp_path: Path) -> None:
    await fill(tmp_path)
    block = [
        c.text
        for c in commands(REPO / "docs" / "delivery.md")
        if "outbox" in c.text or c.text.startswith("DATA=")
    ]
    assert block[0] == "DATA=var/demo"  # the one line a reader (and this test) points elsewhere
    script = "\n".join([f"DATA={tmp_path}", *block[1:]])
    result = subprocess.run(
        ["bash", "-ec", script], cwd=REPO, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout.splitlines()
    assert out[0].startswith("d-dead  dead") and "HTTP 400" in out[0]
    shown = json.loads("\n".join(out[1 : out.index("d-dead  replayed")]))
    assert shown["attemptHistory"][0]["status"] == 400
    assert shown["decisionId"] == "dec-0" and shown["decision"]["allow"] is True
    after_replay = out[out.index("d-dead  replayed") + 1 :]
    listed = [json.loads(line) for line in after_replay if line.startswith("{")]
    assert {(d["deliveryId"], d["state"]) for d in listed} == {
        ("d-old", "delivered"),
        ("d-dead", "pending"),
        ("d-wait", "pending"),
    }
    assert listed[0].keys() == {"deliveryId", "state", "attempts", "lastError"}
    assert out[-1] == "purged 1 delivered before 2026-12-01T00:00:00+00:00"


async def test_replaying_what_is_not_dead_is_an_error_naming_it(tmp_path: Path) -> None:
    await fill(tmp_path)
    result = outbox("replay", "--config", DEMO_CONFIG, "--data-dir", str(tmp_path), "d-wait")
    assert result.returncode == 1
    assert "d-wait is not dead" in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("purge", "--delivered-before", "last week"), "'last week' is not an ISO date"),
        (("show", "nope"), "no delivery nope"),
        (("list", "--state", "lost"), "invalid choice: 'lost'"),
    ],
)
async def test_outbox_mistakes_are_named(
    tmp_path: Path, args: tuple[str, ...], message: str
) -> None:
    await fill(tmp_path)
    command, *rest = args
    result = outbox(command, "--config", DEMO_CONFIG, "--data-dir", str(tmp_path), *rest)
    assert result.returncode != 0
    assert message in result.stderr


def test_a_config_without_a_store_has_no_outbox(tmp_path: Path) -> None:
    config = REPO / "config" / "example" / "deelnemer-minimal.yaml"
    result = outbox("list", "--config", str(config))
    assert result.returncode == 2
    assert "no store: section, so no outbox" in result.stderr
