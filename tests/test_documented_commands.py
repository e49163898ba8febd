"""Every command README.md and ``docs/`` tell people to run is run by a test, as written.

Each documented command (read from the Markdown's shell blocks by ``tests/fixtures/docs.py``)
matches one entry of ``HOW``: run here as written (in the repository, or against the demo
that the documented ``make run`` starts), run by a named test that reads it from the
Markdown too, or, for the one that cannot run inside the suite, the reason. A command added
to the docs without an entry fails ``test_every_documented_command_has_a_test``.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiohttp.test_utils import unused_port

from tests.fixtures.demo import read_until_printed
from tests.fixtures.docs import REPO, Command, documented_commands

DEMO_URL = "http://127.0.0.1:8080"


@dataclass(frozen=True)
class How:
    """How a documented command is tested: ``kind`` is ``repo`` (run here, in the
    repository, exit 0), ``demo`` (run here against the running demo), ``test`` (run by the
    test ``detail`` names, ``file::function``) or ``suite`` (``detail`` says why not here)."""

    pattern: str
    kind: str
    detail: str = ""


HOW = (
    How(r"make run", "demo", "started by the `demo` fixture, as written"),
    How(r"make test", "suite", "this suite: `make test` is what runs it (and `.ci/run`)"),
    How(
        r"\.venv/bin/nid-gateway policy (check|test) (--no-tests )?policies(/iwlz)?"
        r"|\.venv/bin/nid-gateway policy check policies/iwlz/catalogus/notificatietypen\.yaml"
        r"|\.venv/bin/nid-gateway policy explain --config config/demo/gateway\.yaml .*",
        "repo",
    ),
    How(r"curl -s -u ciz:ciz-demo-secret http://127\.0\.0\.1:8080/auth/token .*", "demo"),
    How(
        r"\.venv/bin/nid-gateway serve --config config/example/deelnemer-minimal\.yaml",
        "test",
        "tests/cli/test_first_run.py::test_the_deelnemers_minimal_config_serves_an_nid_token",
    ),
    How(
        r"mkdir deploy( && cp -r config/example/\. deploy/|/tls)"
        r"|\.venv/bin/nid-gateway keys generate --out deploy/keys"
        r"|sudo chown -R 10001:10001 deploy/keys deploy/tls"
        r"|sudo setpriv .* keys generate --out deploy/keys",
        "test",
        "tests/cli/test_first_run.py::test_keys_made_as_documented_are_readable_by_the_images_user",
    ),
    How(
        r"docker (build|run) .*",
        "test",
        "tests/cli/test_first_run.py::test_the_documented_docker_run_fits_the_image_and_the_example",
    ),
    How(
        r"TOKEN=\$\(curl -s -u zorgaanbieder-12345678:.*|BODY='import json,sys; .*"
        r"|python3 -c \"\$BODY\" QBR-0001-ZA .*",
        "test",
        "tests/cli/test_demo_registers.py::test_the_readme_raadpleging_curls_run_as_written",
    ),
    How(
        r"(ZA|LIST)=\$\(curl -s http://127\.0\.0\.1:8080/auth/token .*"
        r"|(ABONNEMENT=\$\()?curl -s http://127\.0\.0\.1:8080/deelnemers/.* -H \"Authorization: .*"
        r"|curl -s http://127\.0\.0\.1:8080/abonnementen .*"
        r"|ZK=\$\(curl -s -u zorgkantoor-5151:.*",
        "test",
        "tests/cli/test_demo_abonnementen.py::test_the_readme_subscription_curls_run_as_written",
    ),
    How(
        r"tok\(\) \{ curl -s -u .*|curl -si? '?http://127\.0\.0\.1:8080/"
        r"(ketenindex|voorzitter|klantinteracties)/.*",
        "test",
        "tests/cli/test_demo_rest.py::test_the_documented_rest_curls_run_as_written",
    ),
    How(
        r"TOKEN=\$\(curl -s -u zorgkantoor-5152:.*"
        r"|curl -s http://127\.0\.0\.1:8080/access/v1/evaluation .*"
        r"|curl -s http://127\.0\.0\.1:8080/\.well-known/authzen-configuration",
        "test",
        "tests/cli/test_demo_authzen.py::test_the_authzen_curls_run_as_written_against_the_demo",
    ),
    How(
        r"TOKEN=\$\(curl -s -u ciz:ciz-demo-secret .*/notificaties/graphql .*"
        r"|NOTIFICATIE='import json,sys; .*|python3 -c \"\$NOTIFICATIE\" .*"
        r"|ADRESBOEK_TOKEN=.*|curl -s http://127\.0\.0\.1:8080/adresboek .*",
        "test",
        "tests/cli/test_demo_central.py::test_the_readme_central_route_curls_run_as_written",
    ),
    How(
        r"make lock",
        "suite",
        "needs PyPI; tests/test_lock.py fails, naming `make lock`, "
        "when pyproject.toml and the lock disagree",
    ),
    How(
        r"DATA=var/demo|ID=\$\(\.venv/bin/nid-gateway outbox list .*"
        r"|\.venv/bin/nid-gateway outbox (list|show|replay|purge) --config config/demo/.*",
        "test",
        "tests/delivery/test_outbox_cli.py::test_the_documented_outbox_commands_run_as_written",
    ),
    How(
        r"docker compose up --build|TOKEN=\$\(curl -s -u ciz:ciz-compose-secret .*"
        r"|curl -s http://localhost:8080/deelnemers/uzovi/5151/graphql .*",
        "test",
        "tests/test_container.py::test_the_compose_services_run_as_written_and_pass_a_notification",
    ),
)
COMMANDS = documented_commands()


def how(command: Command) -> How:
    matches = [h for h in HOW if re.fullmatch(h.pattern, command.text)]
    assert len(matches) == 1, f"{command}: matches {len(matches)} entries of HOW, expected 1"
    return matches[0]


def of_kind(kind: str) -> list[Command]:
    """The commands tested as *kind* (one without an entry is reported by the test below)."""
    return [c for c in COMMANDS for h in HOW if re.fullmatch(h.pattern, c.text) and h.kind == kind]


def test_every_documented_command_has_a_test() -> None:
    assert len(COMMANDS) >= 10  # the extraction finds the docs' commands at all
    for command in COMMANDS:
        entry = how(command)
        assert entry.kind in ("repo", "demo", "test", "suite"), entry
        if entry.kind == "test":
            path, function = entry.detail.split("::")
            source = (REPO / path).read_text(encoding="utf-8")
            assert f"def {function}(" in source, f"{command}: no test {entry.detail}"
            # That test reads the command from the Markdown, so the two cannot drift.
            assert "tests.fixtures.docs import" in source, entry.detail
    used = {how(c).pattern for c in COMMANDS}
    assert [h.pattern for h in HOW if h.pattern not in used] == []  # no stale entries


@pytest.mark.parametrize("command", of_kind("repo"), ids=str)
def test_documented_command_runs_as_written(command: Command) -> None:
    result = subprocess.run(
        ["bash", "-ec", command.text],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, f"{command}\n{result.stdout}\n{result.stderr}"


@pytest.fixture(scope="module")
def demo() -> Iterator[str]:
    """The documented ``make run``, as written, on a free port (the Makefile's ``PORT``
    from the environment); the base URL it prints."""
    port = unused_port()
    proc = subprocess.Popen(
        ["bash", "-ec", "make run"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
        env={**os.environ, "PORT": str(port)},
    )
    try:
        text = read_until_printed(proc, "# 3.")
        assert f"nid-gateway demo on http://127.0.0.1:{port} " in text
        yield f"http://127.0.0.1:{port}"
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        proc.communicate(timeout=30)


@pytest.mark.parametrize("command", [c for c in of_kind("demo") if c.text != "make run"], ids=str)
def test_documented_command_gets_its_answer_from_the_demo(command: Command, demo: str) -> None:
    """The command as written, its demo URL pointed at the port the test's demo bound."""
    assert DEMO_URL in command.text
    result = subprocess.run(
        ["bash", "-ec", command.text.replace(DEMO_URL, demo)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert answer["token_type"] == "Bearer" and answer["access_token"].count(".") == 2


def test_the_readme_names_the_port_variable_make_run_reads() -> None:
    makefile = (REPO / "Makefile").read_text(encoding="utf-8")
    assert re.search(r"^PORT \?= 8080$", makefile, re.M)
    assert "demo --port $(PORT)" in makefile


def test_a_command_with_a_comment_is_read_without_it(tmp_path: Path) -> None:
    from tests.fixtures.docs import commands

    page = tmp_path / "page.md"
    page.write_text(
        "```sh\nmake run   # starts the demo\necho '#not a comment' \\\n  two\n```\n",
        encoding="utf-8",
    )
    assert [(c.line, c.text) for c in commands(page)] == [
        (2, "make run"),
        (3, "echo '#not a comment' two"),
    ]
