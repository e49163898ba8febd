"""The demo's register routes: ``nid-gateway demo`` serves both example registers behind
their routes, and the README's raadpleging curls, pasted into a shell, are allowed and
refused.

The README test runs the demo with a stand-in policy on the register routes
(``tests/examples/policies/``, via the demo's ``--config``), so that it checks the
commands, the routes, the schemas and the example registers on their own; what the real
matrices allow is tested with the matrices.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import yaml
from aiohttp.test_utils import unused_port

from tests.fixtures.demo import read_until_printed, run_shell
from tests.fixtures.docs import REPO, commands
from tests.fixtures.registers import (
    BEMIDDELING_READ,
    BEMIDDELINGEN,
    INDICATIE_READ,
    INDICATIES,
    TEMPLATES,
    template,
)

DEMO = REPO / "config" / "demo"
STAND_IN = REPO / "tests" / "examples" / "policies"
S1 = "51000000-0000-4000-8000-000000000001"


def start_demo(*args: str) -> tuple[subprocess.Popen[str], str]:
    """``nid-gateway demo`` on a free port; the process and the base URL."""
    port = unused_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "gateway.cli", "demo", "--port", str(port), *args],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    return proc, f"http://127.0.0.1:{port}"


def stop(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=20)


def post(
    url: str, body: Any, headers: dict[str, str] | None = None, data: bytes | None = None
) -> tuple[int, Any]:
    """POST JSON (or form *data*); the status and the decoded answer."""
    sent = json.dumps(body).encode() if data is None else data
    request = urllib.request.Request(url, data=sent, headers=headers or {}, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def raadpleging(base: str, name: str, field: str = "zzpCode", **variables: Any) -> tuple[int, Any]:
    """Template *name* (its ``zzpCode`` selected as *field*) as the zorgaanbieder AGB
    12345678, to the Bemiddelingsregister."""
    form = (
        f"grant_type=client_credentials&scope={BEMIDDELING_READ}&audience={base}{BEMIDDELINGEN}"
    ).encode()
    status, answer = post(
        f"{base}/auth/token",
        None,
        data=form,
        headers={
            "Authorization": "Basic " + _basic("zorgaanbieder-12345678"),
            "Content-Type": "application/x-www-form-urlencoded",
        },
    )
    assert status == 200, answer
    example = json.loads((TEMPLATES / f"{name}.variables.json").read_text(encoding="utf-8"))
    query = (TEMPLATES / f"{name}.graphql").read_text(encoding="utf-8")
    body = {"query": query.replace("zzpCode", field), "variables": {**example, **variables}}
    return post(
        base + BEMIDDELINGEN,
        body,
        {"Authorization": f"Bearer {answer['access_token']}", "Content-Type": "application/json"},
    )


def _basic(client_id: str) -> str:
    import base64

    return base64.b64encode(f"{client_id}:{client_id}-demo-secret".encode()).decode()


def test_the_demo_serves_the_register_routes_validated_against_the_register_schemas() -> None:
    proc, base = start_demo()
    try:
        printed = read_until_printed(proc, "# 3.")
        unknown_field = raadpleging(base, "QBR-0001-ZA", field="geheimVeld")
        refused = raadpleging(base, "QBR-0001-ZA", instelling="87654321")
    finally:
        stop(proc)
    assert f"  {BEMIDDELINGEN} -> http://127.0.0.1:" in printed
    assert "  /registers/indicatieregister/graphql -> http://127.0.0.1:" in printed
    status, answer = unknown_field
    assert status == 400
    assert answer["errors"][0]["extensions"]["reason"] == (
        "Cannot query field 'geheimVeld' on type 'Bemiddelingspecificatie'."
    )
    status, answer = refused
    assert status == 403  # another zorgaanbieder's binding: never forwarded
    assert answer["errors"][0]["extensions"]["code"] == "FORBIDDEN"


def stand_in_config(tmp_path: Path) -> Path:
    """The demo's ``gateway.yaml`` with the stand-in policy on its register routes."""
    data = yaml.safe_load((DEMO / "gateway.yaml").read_text(encoding="utf-8"))
    data["authserver"]["clients_file"] = str(DEMO / "clients.yaml")
    data["authserver"]["signing"]["keys_dir"] = str(tmp_path / "keys")
    # Its own store: the demo's relative data_dir would land beside every test run's tmp
    # folder, shared with other checkouts (whose migrations may be newer).
    data["data_dir"] = str(tmp_path / "data")
    for route in data["routes"]:
        route["policies"] = [str((DEMO / p).resolve()) for p in route["policies"]]
        if "openapi" in route.get("rest", {}):
            route["rest"]["openapi"] = str((DEMO / route["rest"]["openapi"]).resolve())
        if "schema" in route:
            route["schema"] = str((DEMO / route["schema"]).resolve())
            route["policies"] = [str(STAND_IN)]
    data["adresboek"]["file"] = str(DEMO / data["adresboek"]["file"])
    central = data["notificaties"]
    central["policies"] = [str((DEMO / p).resolve()) for p in central["policies"]]
    path = tmp_path / "gateway.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def test_the_readme_raadpleging_curls_run_as_written(tmp_path: Path) -> None:
    documented = [
        c.text
        for c in commands(REPO / "README.md")
        if "zorgaanbieder-12345678:" in c.text or "$BODY" in c.text or c.text.startswith("BODY=")
    ]
    assert len(documented) == 4  # the token, the body builder, allowed, refused
    # Its own store: the default data_dir beside a tmp config is shared by every test run.
    proc, base = start_demo(
        "--config", str(stand_in_config(tmp_path)), "--data-dir", str(tmp_path / "data")
    )
    try:
        read_until_printed(proc, "# 3.")
        token, body, *requests = (c.replace("http://127.0.0.1:8080", base) for c in documented)
        allowed, refused = (run_shell(f"{token}\n{body}\n{request}", base) for request in requests)
    finally:
        stop(proc)
    (found,) = json.loads(allowed)["data"]["bemiddelingspecificatie"]
    assert found["bemiddelingspecificatieID"] == S1
    (error,) = json.loads(refused)["errors"]
    assert error["extensions"]["code"] == "FORBIDDEN"
    assert error["extensions"]["reason"] == "instelling is not the caller's own AGB"


# The templates decided on facts of the policy information point, each by the demo client
# of templates/README.md: the gateway asks the demo's example Bemiddelingsregister first.
PIP_TEMPLATES = {
    "QBR-0012-ZKu": ("zorgkantoor-5151", BEMIDDELINGEN, "bemiddelingspecificatie"),
    "QBR-0013-ZKu": ("zorgkantoor-5151", BEMIDDELINGEN, "regiehouder"),
    "QIR-0002-ZA": ("zorgaanbieder-12345678", INDICATIES, "wlzIndicatie"),
    "QIR-0003-ZKn": ("zorgkantoor-5152", INDICATIES, "wlzIndicatie"),
    "QIR-0004-ZKu": ("zorgkantoor-5152", INDICATIES, "wlzIndicatie"),
}


def send(base: str, client: str, path: str, body: dict[str, Any]) -> tuple[int, Any]:
    """*body* to *path* with a token of the demo client *client*."""
    scope = BEMIDDELING_READ if path == BEMIDDELINGEN else INDICATIE_READ
    form = f"grant_type=client_credentials&scope={scope}&audience={base}{path}".encode()
    status, answer = post(
        f"{base}/auth/token",
        None,
        data=form,
        headers={
            "Authorization": "Basic " + _basic(client),
            "Content-Type": "application/x-www-form-urlencoded",
        },
    )
    assert status == 200, answer
    headers = {"Authorization": f"Bearer {answer['access_token']}"}
    return post(base + path, body, {**headers, "Content-Type": "application/json"})


def test_the_templates_decided_on_looked_up_facts_pass_through_the_demo_unchanged() -> None:
    proc, base = start_demo()
    try:
        read_until_printed(proc, "# 3.")
        answers = {
            name: send(base, client, path, template(name))
            for name, (client, path, _root) in PIP_TEMPLATES.items()
        }
        # zorgkantoor 5152's own S2 ended 2025-12-31: its access to S1 ended 2026-05-31.
        late = send(
            base,
            "zorgkantoor-5152",
            BEMIDDELINGEN,
            template("QBR-0012-ZKu", bemiddelingspecificatieID=S1),
        )
    finally:
        stop(proc)
    for name, (status, answer) in answers.items():
        assert status == 200, (name, answer)
        assert answer["data"][PIP_TEMPLATES[name][2]], (name, answer)
    status, answer = late
    assert status == 403
    assert answer["errors"][0]["extensions"]["code"] == "FORBIDDEN"
