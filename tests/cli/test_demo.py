"""What ``nid-gateway demo`` prints is the files under ``config/demo/``: the curl text is
``curls.txt`` filled in, the allowed request is seed 003's example exactly, the refused one
differs only in ``afzenderID``; pasted into a shell, the printed curls get those answers."""

from __future__ import annotations

import itertools
import json
import re
import shlex
import signal
import subprocess
from pathlib import Path
from typing import Any

import pytest

from gateway.config.loader import load_config
from gateway.serving.demo import (
    DemoFileError,
    demo_instructions,
    load_demo_request,
    load_demo_texts,
)
from tests.fixtures.demo import read_until_printed, seed_003_example, start_demo

REPO = Path(__file__).resolve().parents[2]
DEMO_DIR = REPO / "config" / "demo"
EXAMPLES = REPO / "gateway" / "examples"
BASE = "http://127.0.0.1:8080"


def printed_bodies(text: str) -> list[Any]:
    """The JSON bodies (``-d '{...}'``) of the curls in *text*, in order."""
    bodies = []
    for line in text.splitlines():
        words = shlex.split(line.rstrip(" \\"), comments=True)
        bodies += [
            json.loads(value)
            for flag, value in itertools.pairwise(words)
            if flag == "-d" and value.startswith("{")
        ]
    return bodies


def demo_text() -> str:
    config = load_config(DEMO_DIR / "gateway.yaml", port=8080, upstream="http://127.0.0.1:9/")
    return demo_instructions(config, load_demo_texts(DEMO_DIR))


def test_the_demo_prints_seed_003_as_allowed_and_another_afzender_as_refused() -> None:
    allowed, refused = printed_bodies(demo_text())
    assert allowed == seed_003_example()
    assert refused == seed_003_example(afzenderID="99999999")


def test_every_line_of_curls_txt_is_printed_with_the_base_url_filled_in() -> None:
    printed = demo_text().splitlines()
    template = (DEMO_DIR / "curls.txt").read_text(encoding="utf-8").splitlines()
    for line in template:
        if not any(f"{{{name}}}" in line for name in ("routes", "allowed", "refused")):
            assert line.replace("{base}", BASE) in printed


def test_a_request_file_without_its_query_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "allowed.json"
    path.write_text('{"operationName": "zendNotificatie"}', encoding="utf-8")
    with pytest.raises(DemoFileError, match=re.escape("allowed.json: query_file is required")):
        load_demo_request(path)


def test_a_request_file_with_an_unknown_key_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "refused.json"
    path.write_text('{"query": "{ x }", "operationName": "x"}', encoding="utf-8")
    with pytest.raises(DemoFileError, match=re.escape("refused.json: expected an object")):
        load_demo_request(path)


def test_the_printed_curls_pasted_into_a_shell_are_allowed_and_refused() -> None:
    proc, _port = start_demo()
    try:
        text = read_until_printed(proc, "# 3.")
        # Paragraphs: the token command, then the allowed and the refused request.
        token, allowed, refused = text[text.index("TOKEN=$(") :].strip().split("\n\n")
        answers = [
            subprocess.run(
                ["bash", "-c", f"{token}\n{command}\n"],
                capture_output=True,
                text=True,
                timeout=30,
                check=True,
            ).stdout
            for command in (allowed, refused)
        ]
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=20)
    assert proc.returncode == 0
    assert json.loads(answers[0])["data"]["zendNotificatie"]["notificatieID"]
    (error,) = json.loads(answers[1])["errors"]
    assert error["extensions"]["reason"] == "afzender_id is not valid"
