"""The whole gateway (``create_app`` with the demo configuration) over real HTTP: one decision
line per PEP request, and not one secret or token in ANY output of the session."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from pytest_aiohttp import AiohttpServer

from gateway.app import create_app
from gateway.config.loader import load_config
from tests.fixtures.observability import REPO, json_lines

DEMO = REPO / "config" / "demo" / "gateway.yaml"
ROUTE = "/deelnemers/uzovi/5151/graphql"
AUDIENCE = "http://127.0.0.1:8080" + ROUTE
SCOPE = "organisaties/zorgkantoor/notificaties/notificatie:create"
SECRETS = [
    "ciz-demo-secret",
    "zorgkantoor-5151-demo-secret",
    "zorgkantoor-5152-demo-secret",
    "zorgaanbieder-12345678-demo-secret",
    "no-instantie-demo-secret",
]
QUERY = (
    "mutation zendNotificatie($notificatieInput: NotificatieInput!) "
    "{ zendNotificatie(notificatieInput: $notificatieInput) { notificatieID } }"
)


def notification(afzender_type: str, afzender_id: str) -> dict[str, Any]:
    return {
        "query": QUERY,
        "operationName": "zendNotificatie",
        "variables": {
            "notificatieInput": {
                "timestamp": "2026-11-23T10:00:00Z",
                "afzenderIDType": afzender_type,
                "afzenderID": afzender_id,
                "ontvangerIDType": "UZOVI",
                "ontvangerID": "5151",
                "eventType": "NIEUWE_INDICATIE_ZORGKANTOOR",
                "subjectList": [{"subject": "Client", "recordID": "rec-42"}],
            }
        },
    }


async def upstream_app(received: list[bytes]) -> web.Application:
    async def graphql(request: web.Request) -> web.Response:
        received.append(await request.read())
        return web.json_response({"data": {"zendNotificatie": {"notificatieID": "n-1"}}})

    app = web.Application()
    app.router.add_post("/graphql", graphql)
    return app


async def test_full_session_logs_decisions_and_never_a_secret_or_token(
    aiohttp_server: AiohttpServer,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    received: list[bytes] = []
    upstream = await aiohttp_server(await upstream_app(received))
    demo = load_config(DEMO, upstream=str(upstream.make_url("/graphql")))
    # The demo logs for humans (console); operators' deployments log JSON lines.
    observability = demo.observability.model_copy(update={"log_format": "json"})
    config = demo.model_copy(update={"observability": observability})
    # aiohttp's default access log (request line with query string) on purpose: the
    # redaction processor, not the access log format, must keep credentials out.
    gateway = await aiohttp_server(await create_app(config))
    url = gateway.make_url
    tokens: list[str] = []
    statuses: dict[str, int] = {}
    async with aiohttp.ClientSession() as http:

        async def token(client_id: str, secret: str, *, basic: bool) -> dict[str, Any]:
            form = {"grant_type": "client_credentials", "scope": SCOPE, "audience": AUDIENCE}
            headers = {}
            if basic:
                raw = f"{client_id}:{secret}".encode()
                headers["Authorization"] = "Basic " + base64.b64encode(raw).decode()
            else:
                form |= {"client_id": client_id, "client_secret": secret}
            async with http.post(url("/auth/token"), data=form, headers=headers) as r:
                body: dict[str, Any] = await r.json()
                statuses[f"token:{client_id}:{basic}"] = r.status
                if "access_token" in body:
                    tokens.append(body["access_token"])
                return body

        ciz = (await token("ciz", "ciz-demo-secret", basic=False))["access_token"]
        zk = (await token("zorgkantoor-5151", "zorgkantoor-5151-demo-secret", basic=True))[
            "access_token"
        ]
        await token("ciz", "wrong-secret-value", basic=False)

        async def pep(name: str, body: Any, bearer: str | None) -> None:
            headers = {"Authorization": f"Bearer {bearer}"} if bearer else {}
            async with http.post(url(ROUTE), json=body, headers=headers) as r:
                statuses[name] = r.status
                await r.read()

        await pep("allow", notification("KVK", "62253778"), ciz)
        await pep("deny-afzender", notification("UZOVI", "5151"), zk)
        forged = ciz.rsplit(".", 1)[0] + ".AAAAsignature"
        await pep("deny-bad-signature", notification("KVK", "62253778"), forged)
        await pep("deny-parse", {"query": f"mutation {{ {ciz} }}"}, ciz)
        await pep("deny-no-token", notification("KVK", "62253778"), None)
        await pep(
            "deny-token-as-operation",
            {**notification("KVK", "62253778"), "operationName": ciz},
            ciz,
        )
        async with http.get(url(f"/healthz?access_token={ciz}")) as r:
            statuses["healthz"] = r.status
        await upstream.close()
        await pep("error-upstream", notification("KVK", "62253778"), ciz)

    captured = capsys.readouterr()
    output = captured.out + captured.err
    assert statuses["allow"] == 200
    assert statuses["deny-afzender"] == 400
    assert statuses["deny-bad-signature"] == 401
    assert statuses["deny-parse"] == 400
    assert statuses["deny-no-token"] == 401
    assert statuses["error-upstream"] == 502
    assert len(received) == 1  # the allowed notification; no refused one reached it

    # Not one secret, token, token fragment or Basic credential in any output.
    for secret in [*SECRETS, "wrong-secret-value"]:
        assert secret not in output
    for tok in tokens:
        _header, payload, signature = tok.split(".")
        assert payload not in output and signature not in output
    assert "eyJ" not in output
    assert base64.b64encode(b"zorgkantoor-5151:").decode()[:16] not in output

    lines = json_lines(captured.out)
    decisions = [x for x in lines if x.get("event") == "decision"]
    by_status = {(d["outcome"], d["status"]) for d in decisions}
    assert len(decisions) == 7
    assert {("allow", 200), ("deny", 400), ("deny", 401), ("error", 502)} <= by_status
    allowed = next(d for d in decisions if d["outcome"] == "allow")
    assert allowed["client_id"] == "ciz"
    assert allowed["afzender"] == "KVK:62253778"
    assert allowed["ontvanger"] == "UZOVI:5151"
    assert allowed["event_type"] == "NIEUWE_INDICATIE_ZORGKANTOOR"
    assert allowed["route"] == ROUTE
    assert allowed["trace_id"]
    assert allowed["upstream_ms"] is not None
    failed = next(d for d in decisions if d["outcome"] == "error")
    assert failed["upstream_error"]
    issued = [x for x in lines if x.get("event") == "token" and x["outcome"] == "issued"]
    assert {t["client_id"] for t in issued} == {"ciz", "zorgkantoor-5151"}
    assert all(t["jti"] for t in issued)
    # Every line is one log event (json_lines has already refused a line that is not JSON).
    assert [
        x for x in lines if not (isinstance(x, dict) and x.get("event") and x.get("level"))
    ] == []
