"""What ``serve`` does before it listens: no module that only a mistake, a file watch or
delivery needs, the garbage collector back on and the start-up heap frozen once serving."""

from __future__ import annotations

import contextlib
import gc
import json
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.cli import main
from tests.fixtures.serve import REPO, write_serve_config

PROBE = """
import asyncio, gc, json, sys
from pathlib import Path

gc.disable()  # as gateway.cli.main leaves it for serve
from gateway.config.loader import load_config
from gateway.serving.lifecycle import start_gateway

config = load_config(Path(sys.argv[1]))

async def serve_once():
    runners = await start_gateway(config, "127.0.0.1", 0)
    state = {"collecting": gc.isenabled(), "frozen": gc.get_freeze_count()}
    for runner in reversed(runners):
        await runner.cleanup()
    return state

state = asyncio.run(serve_once())
state["imported"] = sorted(m for m in ("jsonschema", "watchfiles", "tenacity") if m in sys.modules)
print(json.dumps(state))
"""


def test_serving_starts_without_the_modules_only_mistakes_watching_or_delivery_need(
    tmp_path: Path,
) -> None:
    config = write_serve_config(tmp_path, 0, "http://127.0.0.1:9/graphql")
    result = subprocess.run(
        [sys.executable, "-c", PROBE, str(config)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    state = json.loads(result.stdout.strip().splitlines()[-1])
    assert state["imported"] == []  # policy files without mistakes, no watch, no delivery
    assert state["collecting"] is True  # switched back on once serving
    assert state["frozen"] > 10_000  # the start-up heap, out of every later collection


def test_a_policy_mistake_is_still_reported_at_start_with_its_place(tmp_path: Path) -> None:
    # The fast schema check only says yes; a file it rejects is worded by jsonschema.
    policies = tmp_path / "policies"
    policies.mkdir()
    (policies / "broken.yaml").write_text(
        "policy: broken\nrules:\n  - effect: allow\n    when: 3\n    colour: red\n",
        encoding="utf-8",
    )
    config = write_serve_config(tmp_path, 0, "http://127.0.0.1:9/graphql")
    data = json.loads(config.read_text(encoding="utf-8"))
    data["routes"][0]["policies"] = [str(policies)]
    config.write_text(json.dumps(data), encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "serve", "--config", str(config)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 2
    broken = policies / "broken.yaml"
    assert "error: 2 errors in policy set:" in result.stderr, result.stderr
    assert f"{broken}:1:1: missing required key 'applies_to' in the file" in result.stderr
    assert f"{broken}:2:1: unknown key 'rules' in the file (expected one of:" in result.stderr


@pytest.mark.parametrize("argv", [["serve", "--config", "absent.yaml"], ["keys", "--help"]])
def test_the_command_gives_an_in_process_caller_its_collector_back(argv: list[str]) -> None:
    assert gc.isenabled()
    with contextlib.suppress(SystemExit):  # --help
        main(argv)
    assert gc.isenabled()
