"""``nid-gateway serve`` starts without importing the other commands' modules."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from gateway.cli import build_parser

REPO = Path(__file__).resolve().parents[2]
OTHER_COMMANDS = (
    "gateway.policy.cli",
    "gateway.authserver.cli",
    "gateway.delivery.cli",
    "gateway.serving.demo",
)


def test_serve_imports_none_of_the_other_commands_modules() -> None:
    # Through the CLI's entry point (a config that does not exist: serve stops with 2 after
    # parsing and trying to load it).
    probe = (
        "import sys\n"
        "from gateway.cli import main\n"
        "code = main(['serve', '--config', '/nonexistent/gateway.yaml'])\n"
        f"print(code, [m for m in {OTHER_COMMANDS!r} if m in sys.modules])\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "2 []"


def test_the_help_without_a_command_lists_every_command() -> None:
    usage = build_parser(None).format_help()
    for command in ("serve", "demo", "policy", "token", "keys", "outbox"):
        assert f"    {command} " in usage
