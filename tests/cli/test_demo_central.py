"""The demo's central notification route and adresboek: the README's curls, pasted into a
shell against ``nid-gateway demo``, reach zorgkantoor 5151's example server through the
demo adresboek, refuse a recipient it does not list, and read the adresboek back."""

from __future__ import annotations

import json
import signal
import subprocess

from tests.fixtures.demo import read_until_printed, start_demo
from tests.fixtures.docs import REPO, commands

DEMO_URL = "http://127.0.0.1:8080"


def test_the_readme_central_route_curls_run_as_written() -> None:
    documented = [
        c.text
        for c in commands(REPO / "README.md")
        if "NOTIFICATIE" in c.text
        or "ADRESBOEK_TOKEN" in c.text
        or "/notificaties/graphql" in c.text
    ]
    assert len(documented) == 6  # two tokens, the body builder, allowed, refused, adresboek
    token, builder, allowed, refused, book_token, book = documented
    proc, port = start_demo()
    base = f"http://127.0.0.1:{port}"
    try:
        read_until_printed(proc, "# 3.")
        setup = f"{token}\n{builder}\n{book_token}\n".replace(DEMO_URL, base)
        answers = [
            subprocess.run(
                ["bash", "-ec", setup + request.replace(DEMO_URL, base)],
                cwd=REPO,
                capture_output=True,
                text=True,
                timeout=30,
                check=True,
            ).stdout
            for request in (allowed, refused, book)
        ]
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=20)
    # The bundled example server of zorgkantoor 5151 answered (a notificatieID of its own).
    assert json.loads(answers[0])["data"]["zendNotificatie"]["notificatieID"]
    (error,) = json.loads(answers[1])["errors"]
    assert error["message"] == "ZendNotificatie mutation: ontvanger is not valid"
    assert error["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    services = json.loads(answers[2])["electronicServices"]
    assert "5151_NOTIFICATIE_TST" in {s["gegevensdienstId"] for s in services}
