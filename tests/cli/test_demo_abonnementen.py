"""The README's subscription curls, pasted into one shell against the real demo: subscribe
at zorgkantoor 5151 (its example server answers ``createAbonnement``), list it, a voluntary
notification with the ``abonnementId`` passes, unsubscribe, the same notification is
refused. The demo's store is a fresh SQLite file (``--data-dir``)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from tests.cli.test_demo_registers import start_demo, stop
from tests.fixtures.demo import read_until_printed
from tests.fixtures.docs import REPO, commands

SECTION = "### Abonnementen"


def documented() -> list[str]:
    """The commands of the README's Abonnementen section, in order."""
    readme = REPO / "README.md"
    text = readme.read_text(encoding="utf-8")
    start = text.count("\n", 0, text.index(SECTION)) + 1
    # The section ends at the next heading (## or ###).
    end = text.count("\n", 0, text.index("\n#", text.index(SECTION) + len(SECTION))) + 1
    return [c.text for c in commands(readme) if start < c.line < end]


def test_the_readme_subscription_curls_run_as_written(tmp_path: Path) -> None:
    lines = documented()
    assert len(lines) == 8  # 3 tokens + subscribe, list, notify, unsubscribe, notify again
    proc, base = start_demo("--data-dir", str(tmp_path / "data"))
    try:
        read_until_printed(proc, "# 3.")
        script = "\n".join(c.replace("http://127.0.0.1:8080", base) + "\necho" for c in lines)
        result = subprocess.run(
            ["bash", "-ec", script], cwd=REPO, capture_output=True, text=True, timeout=60
        )
    finally:
        stop(proc)
    assert result.returncode == 0, result.stderr
    listed, allowed, deleted, refused = (
        json.loads(line) for line in result.stdout.splitlines() if line.strip()
    )
    [subscription] = listed
    assert subscription["abonnementTypeId"] == "GEWIJZIGDE_DOSSIERHOUDER_CZT_VOOR_ZORGAANBIEDER"
    assert subscription["bronhouder"] == {"idType": "UZOVI", "id": "5151"}
    assert allowed["data"]["zendNotificatie"]["notificatieID"]
    assert deleted == {"data": {"deleteAbonnement": True}}
    [error] = refused["errors"]
    assert error["message"] == "ZendNotificatie mutation: ontvangerKenmerk is not valid"
    assert error["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
