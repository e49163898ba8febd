"""The demo's REST routes (seeds 000 and 004): the curls of docs/rest.md, pasted into a
shell against ``nid-gateway demo``, are each allowed or refused as the page says."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

from aiohttp.test_utils import unused_port

from tests.fixtures.demo import read_until_printed
from tests.fixtures.docs import REPO, commands

DEMO_URL = "http://127.0.0.1:8080"


def run(base: str, tok: str, command: str) -> str:
    return subprocess.run(
        ["bash", "-ec", f"{tok}\n{command}".replace(DEMO_URL, base)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout


def test_the_documented_rest_curls_run_as_written(tmp_path: Path) -> None:
    tok, *curls = (c.text for c in commands(REPO / "docs" / "rest.md"))
    assert tok.startswith("tok() {") and len(curls) == 12  # 6 exchanges, allowed + refused
    port = unused_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gateway.cli",
            "demo",
            *("--port", str(port)),
            "--data-dir",
            str(tmp_path),
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        read_until_printed(proc, "# 3.")
        answers = [run(f"http://127.0.0.1:{port}", tok, curl) for curl in curls]
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=20)
    *ketenindex, allowed_ki, refused_ki = answers
    decoded = [json.loads(a) for a in ketenindex]
    allowed, refused = decoded[0::2], decoded[1::2]
    assert allowed[0]["overlegId"] == "ovl-2026-0002"  # published
    assert [e["type"] for e in allowed[1]] == ["UITKOMST_OVERLEG_BESCHIKBAAR_GEDEELD"]
    assert allowed[2]["overlegId"] == "ovl-2026-0001"  # the uitkomst itself
    assert [a["type"] for a in allowed[3:]] == ["INZAGE_VERZOEK_GEDAAN", "INZAGE_VERZOEK_GELEVERD"]
    assert [r["error"]["reason"] for r in refused] == [
        "only the voorzitter of the overleg shares its uitkomst",
        "the caller takes no part in this overleg",
        "only a deelnemer of the overleg has inzage in its uitkomst",
        "only a deelnemer of the overleg reports this event",
        "only the voorzitter of the overleg reports this event",
    ]
    assert allowed_ki.startswith("HTTP/1.1 200")
    assert refused_ki.startswith("HTTP/1.1 404")
    for answer in (allowed_ki, refused_ki):
        assert "Deprecation: @1704067200" in answer
        assert "Sunset: Thu, 31 Dec 2026 23:59:59 GMT" in answer
