"""docs/authzen.md's curls, as written, against the real ``nid-gateway demo``.

The curls are read from the Markdown (so the doc and the test cannot drift); the request file
they post is the doc's refused example, and the answer is the one the doc shows for it.
"""

from __future__ import annotations

import json
import re
import signal
from typing import Any

from tests.fixtures.demo import read_until_printed, run_shell, start_demo
from tests.fixtures.docs import REPO, commands

DOC = REPO / "docs" / "authzen.md"
REQUEST_FILE = REPO / "config" / "demo" / "requests" / "authzen-refused.json"


def documented(kind: str, name: str) -> Any:
    """The doc's JSON block marked ``<!-- authzen KIND: NAME -->``."""
    pattern = rf"<!-- authzen {kind}: {name} -->\n```json\n(.*?)^```"
    found = re.search(pattern, DOC.read_text(encoding="utf-8"), re.M | re.S)
    assert found is not None, (kind, name)
    return json.loads(found.group(1))


def test_the_request_file_is_the_docs_refused_example() -> None:
    assert json.loads(REQUEST_FILE.read_text(encoding="utf-8")) == documented("request", "refused")


def test_the_authzen_curls_run_as_written_against_the_demo() -> None:
    token, evaluate, metadata = (c.text for c in commands(DOC))
    assert token.startswith("TOKEN=$(curl -s -u zorgkantoor-5152:")
    proc, port = start_demo()
    base = f"http://127.0.0.1:{port}"
    try:
        read_until_printed(proc, "# 3.")
        answers = [run_shell(f"{token}\n{command}", base) for command in (evaluate, metadata)]
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=20)
    assert json.loads(answers[0]) == documented("answer", "refused")
    assert json.loads(answers[1]) == {
        "policy_decision_point": base,
        "issuer": base,
        "access_evaluation_endpoint": base + "/access/v1/evaluation",
        "access_evaluations_endpoint": base + "/access/v1/evaluations",
    }
