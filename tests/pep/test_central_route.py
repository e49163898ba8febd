"""Issue 14, items 6 and 7 through the real app over HTTP: the adresboek (loaded, checked
against its JSON Schema, served at ``GET /adresboek``, reloaded with the last good kept) and
the central notification route ``POST /notificaties/graphql`` that forwards an allowed
notification to the recipient's endpoint in the adresboek, in front of two recording
upstreams (one per recipient)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestServer
from prometheus_client.parser import text_string_to_metric_families

from gateway.adresboek import AdresboekError, AdresboekSource, load_adresboek
from gateway.app import create_app
from gateway.appkeys import KEYSTORE
from gateway.authserver.tokens import issue_token
from gateway.config.errors import ConfigError
from gateway.config.loader import load_config
from gateway.observability.logs import flush_pending
from gateway.pep import PEP
from gateway.serving.demo import start_example_servers
from tests.fixtures.gateway import (
    ZK_5151,
    Gateway,
    GatewayFactory,
    Received,
    RecordingObserver,
    RecordingUpstream,
    gateway_yaml,
    seed_notification,
    upstream_app,
    write_config,
)

DEMO_URL = "http://127.0.0.1:8080"
"""The demo's public URL: the demo clients may ask for /adresboek's audience there."""
CENTRAL = "/notificaties/graphql"
NOTIFICATIE_ZK = "organisaties/zorgkantoor/notificaties/notificatie:create"
NOTIFICATIE_ZA = "organisaties/zorgaanbieder/notificaties/notificatie:create"
ONTVANGERS = {
    "UZOVI": {"kind": "zorgkantoor"},
    "AGB": {"kind": "zorgaanbieder"},
    "KVK": {"kind": "onderneming", "organisaties": {"62253778": "CIZ"}},
}
RECIPIENT = {"id_type": "notificatieInput.ontvangerIDType", "id": "notificatieInput.ontvangerID"}


def service(dienst: str, endpoint: str, rol: str = "NOTIFICATIE_INDICATIE") -> dict[str, Any]:
    """One electronicServices entry of the interim adresboek format."""
    return {
        "description": f"Notificaties voor {dienst}",
        "gegevensdienstId": dienst,
        "weergavenaam": dienst,
        "authorizationEndpoint": {"authorizationEndpointuri": "https://pep.test/"},
        "tokenEndpoint": {"tokenEndpointuri": "https://auth.test/token"},
        "systeemrollen": [
            {"systeemrolcode": rol, "resourceEndpoint": {"resourceEndpointuri": endpoint}}
        ],
    }


@pytest.fixture
async def other_upstream() -> AsyncIterator[RecordingUpstream]:
    """A second recording resource server: the zorgaanbieder's."""
    received: list[Received] = []
    server = TestServer(upstream_app(received), host="127.0.0.1")
    await server.start_server()
    yield RecordingUpstream(url=str(server.make_url("")).rstrip("/"), received=received)
    await server.close()


def write_adresboek(path: Path, zorgkantoor: str, zorgaanbieder: str) -> Path:
    """An adresboek for UZOVI 5151 and AGB 12345678 (and a register entry: not a recipient)."""
    document = {
        "_comment": "test adresboek",
        "electronicServices": [
            service("5151_NOTIFICATIE_TST", zorgkantoor),
            service("12345678_NOTIFICATIE_TST", zorgaanbieder, "NOTIFICATIE_BEMIDDELING"),
            service("5152_NOTIFICATIE_PRD", zorgkantoor),
            service("5152_REGISTER_TST", zorgkantoor, "REGISTER"),
        ],
    }
    path.write_text(json.dumps(document, indent=2), encoding="utf-8")
    return path


@pytest.fixture
async def central(
    make_gateway: GatewayFactory,
    tmp_path: Path,
    upstream: RecordingUpstream,
    other_upstream: RecordingUpstream,
) -> Gateway:
    """The test gateway with the adresboek and the central route: UZOVI 5151 receives at the
    standard recording upstream, AGB 12345678 at *other_upstream*."""
    book = write_adresboek(
        tmp_path / "adresboek.json", f"{upstream.url}/graphql", f"{other_upstream.url}/graphql"
    )
    return await make_gateway(**central_sections(book))


def central_sections(book: Path, **adresboek: Any) -> dict[str, Any]:
    """The ``adresboek`` and ``notificaties`` sections of gateway.yaml for *book*."""
    return {
        "public_url": DEMO_URL,
        "issuer": DEMO_URL,
        "adresboek": {
            "file": str(book),
            "environment": "TST",
            "systeemrollen": ["NOTIFICATIE_INDICATIE", "NOTIFICATIE_BEMIDDELING"],
            "ontvangers": ONTVANGERS,
            **adresboek,
        },
        "notificaties": {
            "policies": [str(Path(__file__).parents[2] / "policies" / "iwlz")],
            "recipient": RECIPIENT,
        },
    }


def token(gateway: Gateway, client_id: str, scopes: list[str], path: str = CENTRAL) -> str:
    return issue_token(
        gateway.config, gateway.client.app[KEYSTORE], client_id, scopes, DEMO_URL + path
    )


def to_zorgaanbieder(**overrides: str) -> dict[str, Any]:
    """Zorgkantoor 5151 notifies zorgaanbieder AGB 12345678 (a verplicht type)."""
    return seed_notification(
        afzenderIDType="UZOVI",
        afzenderID="5151",
        ontvangerIDType="AGB",
        ontvangerID="12345678",
        eventType="NIEUWE_REGIEHOUDER_ZORGAANBIEDER",
        **overrides,
    )


def log_events(capsys: pytest.CaptureFixture[str], event: str) -> list[dict[str, Any]]:
    """The JSON log lines written since the last read whose event is *event*."""
    flush_pending()
    lines = [
        json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")
    ]
    return [line for line in lines if line.get("event") == event]


async def refusal(response: Any) -> dict[str, Any]:
    body = await response.json(content_type=None)
    error: dict[str, Any] = body["errors"][0]
    return error


# -- the central route ------------------------------------------------------------------------
async def test_an_allowed_notification_goes_to_the_recipients_endpoint_only(
    central: Gateway, other_upstream: RecordingUpstream
) -> None:
    traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    body = seed_notification()  # the CIZ (KVK 62253778) notifies zorgkantoor UZOVI 5151
    sent = json.dumps(body).encode()
    ciz = token(central, "ciz", [NOTIFICATIE_ZK])
    response = await central.post(
        CENTRAL,
        data=sent,
        token=ciz,
        headers={"Content-Type": "application/json", "traceparent": traceparent},
    )
    assert response.status == 200, await response.text()
    [received] = central.upstream.received
    assert other_upstream.received == []
    assert received.path == "/graphql"
    assert received.body == sent
    assert json.loads(received.headers["claims"])["client_id"] == "ciz"
    assert received.headers["traceparent"].split("-")[1] == "0af7651916cd43dd8448eb211c80319c"
    assert "Authorization" not in received.headers

    zorgkantoor = token(central, "zorgkantoor-5151", [NOTIFICATIE_ZA])
    response = await central.post(CENTRAL, to_zorgaanbieder(), token=zorgkantoor)
    assert response.status == 200, await response.text()
    [received] = other_upstream.received
    assert json.loads(received.body)["variables"]["ontvangerID"] == "12345678"
    assert json.loads(received.headers["claims"])["client_id"] == "zorgkantoor-5151"
    assert len(central.upstream.received) == 1


@pytest.mark.parametrize(
    ("id_type", "ident"),
    [
        ("UZOVI", "5152"),  # a valid recipient the adresboek lists only for PRD and REGISTER
        ("BSN", "999999999"),  # an identifier type the adresboek cannot find
    ],
)
async def test_an_unknown_recipient_is_400_and_never_forwarded(
    central: Gateway, other_upstream: RecordingUpstream, id_type: str, ident: str
) -> None:
    ciz = token(central, "ciz", [NOTIFICATIE_ZK])
    body = seed_notification(ontvangerIDType=id_type, ontvangerID=ident)
    response = await central.post(CENTRAL, body, token=ciz)
    assert response.status == 400
    error = await refusal(response)
    assert error["message"] == "ZendNotificatie mutation: ontvanger is not valid"
    assert error["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    assert error["extensions"]["reason"] == "ontvanger is not valid"
    assert central.upstream.received == [] and other_upstream.received == []
    assert central.observer.decisions[-1].outcome == "deny"


async def test_a_notification_the_policy_refuses_is_never_forwarded(
    central: Gateway, other_upstream: RecordingUpstream
) -> None:
    ciz = token(central, "ciz", [NOTIFICATIE_ZK])
    response = await central.post(CENTRAL, seed_notification(afzenderID="11111111"), token=ciz)
    assert response.status == 400
    error = await refusal(response)
    assert error["message"] == "ZendNotificatie mutation: afzender_id is not valid"
    assert central.upstream.received == [] and other_upstream.received == []


async def test_a_token_for_another_audience_is_401(
    central: Gateway, other_upstream: RecordingUpstream
) -> None:
    route_token = token(central, "ciz", [NOTIFICATIE_ZK], ZK_5151)
    response = await central.post(CENTRAL, seed_notification(), token=route_token)
    assert response.status == 401
    assert (await refusal(response))["extensions"]["code"] == "UNAUTHENTICATED"
    assert central.upstream.received == [] and other_upstream.received == []


async def test_scopes_must_name_the_kind_of_the_bodys_recipient(
    central: Gateway, other_upstream: RecordingUpstream
) -> None:
    # A zorgaanbieder scope does not reach a zorgkantoor recipient (and vice versa).
    ciz = token(central, "ciz", [NOTIFICATIE_ZA])
    response = await central.post(CENTRAL, seed_notification(), token=ciz)
    assert response.status == 403
    assert (await refusal(response))["message"] == "Request Does Not Match Scopes"
    assert NOTIFICATIE_ZK in response.headers["WWW-Authenticate"]
    zorgkantoor = token(central, "zorgkantoor-5151", [NOTIFICATIE_ZK])
    response = await central.post(CENTRAL, to_zorgaanbieder(), token=zorgkantoor)
    assert response.status == 403
    assert central.upstream.received == [] and other_upstream.received == []


# -- GET /adresboek ---------------------------------------------------------------------------
async def test_the_adresboek_is_served_as_loaded_to_a_token_for_its_audience(
    central: Gateway, tmp_path: Path
) -> None:
    reader = token(central, "zorgaanbieder-12345678", [NOTIFICATIE_ZK], "/adresboek")
    response = await central.client.get("/adresboek", headers={"Authorization": f"Bearer {reader}"})
    assert response.status == 200, await response.text()
    assert await response.json() == json.loads((tmp_path / "adresboek.json").read_text())


async def test_the_adresboek_refuses_a_missing_token_and_a_route_audience(central: Gateway) -> None:
    missing = await central.client.get("/adresboek")
    assert missing.status == 401
    assert missing.headers["WWW-Authenticate"].startswith("Bearer")
    other = token(central, "ciz", [NOTIFICATIE_ZK], CENTRAL)
    wrong = await central.client.get("/adresboek", headers={"Authorization": f"Bearer {other}"})
    assert wrong.status == 401
    assert (await refusal(wrong))["extensions"]["code"] == "UNAUTHENTICATED"


# -- loading, validating, reloading -----------------------------------------------------------
def test_schema_errors_are_reported_at_file_line_col(tmp_path: Path) -> None:
    book = write_adresboek(tmp_path / "adresboek.json", "http://a.test/graphql", "http://b.test/x")
    document = json.loads(book.read_text())
    document["electronicServices"][1]["gegevensdienstId"] = "12345678-NOTIFICATIE-TST"
    del document["electronicServices"][2]["tokenEndpoint"]
    document["electronicServices"][3]["systeemrollen"][0]["systeemrolcode"] = "NOTIFICATIE"
    book.write_text(json.dumps(document, indent=2))
    with pytest.raises(AdresboekError) as caught:
        load_adresboek(book, "TST")
    lines = book.read_text().splitlines()
    errors = caught.value.errors
    assert len(errors) == 3, errors
    dienst = next(n for n, text in enumerate(lines, 1) if "12345678-NOTIFICATIE-TST" in text)
    assert errors[0].startswith(f"{book}:{dienst}:")
    assert (
        "$.electronicServices[1].gegevensdienstId: '12345678-NOTIFICATIE-TST' does not match"
        in errors[0]
    )
    assert "$.electronicServices[2]: 'tokenEndpoint' is a required property" in errors[1]
    assert (
        "$.electronicServices[3].systeemrollen[0].systeemrolcode: 'NOTIFICATIE' is not one of"
        in errors[2]
    )


def test_broken_json_and_duplicate_services_are_refused_where_they_are(tmp_path: Path) -> None:
    book = tmp_path / "adresboek.json"
    book.write_text('{"electronicServices": [\n  {"description": "x",}\n]}\n')
    with pytest.raises(AdresboekError) as caught:
        load_adresboek(book, "TST")
    assert caught.value.errors[0].startswith(f"{book}:2:")
    assert "invalid JSON" in caught.value.errors[0]
    write_adresboek(book, "http://a.test/graphql", "http://b.test/graphql")
    document = json.loads(book.read_text())
    document["electronicServices"].append(document["electronicServices"][0])
    book.write_text(json.dumps(document, indent=2))
    with pytest.raises(AdresboekError, match="duplicate gegevensdienstId '5151_NOTIFICATIE_TST'"):
        load_adresboek(book, "TST")


async def test_a_gateway_with_a_broken_adresboek_does_not_start(
    tmp_path: Path, upstream: RecordingUpstream
) -> None:
    book = tmp_path / "adresboek.json"
    book.write_text('{"electronicServices": [{"gegevensdienstId": "5151_NOTIFICATIE_TST"}]}')
    config = write_config(
        tmp_path, gateway_yaml(upstream.url, upstream.url, **central_sections(book))
    )
    with pytest.raises(AdresboekError, match="'description' is a required property"):
        await create_app(config, observer=RecordingObserver())


def test_the_central_route_needs_an_adresboek(tmp_path: Path, upstream: RecordingUpstream) -> None:
    book = write_adresboek(tmp_path / "adresboek.json", "http://a.test/", "http://b.test/")
    sections = central_sections(book)
    del sections["adresboek"]
    with pytest.raises(ConfigError, match="notificaties needs adresboek"):
        write_config(tmp_path, gateway_yaml(upstream.url, upstream.url, **sections))


async def test_a_broken_reload_keeps_the_last_good_adresboek_and_a_good_one_moves_routing(
    central: Gateway,
    other_upstream: RecordingUpstream,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    source = central.client.app[PEP].adresboek
    assert source is not None
    book = tmp_path / "adresboek.json"
    good = book.read_text()
    book.write_text(good.replace('"5151_NOTIFICATIE_TST"', '"5151_NOTIFICATIE"'))
    capsys.readouterr()
    central.client.app[PEP].reload_policies()  # what the SIGHUP handler calls
    [refused] = log_events(capsys, "adresboek_reload_refused")
    assert refused["kept_version"] == source.active.version
    assert refused["errors"][0].startswith(f"{book}:6:")
    reader = token(central, "ciz", [NOTIFICATIE_ZK], "/adresboek")
    served = await central.client.get("/adresboek", headers={"Authorization": f"Bearer {reader}"})
    assert await served.json() == json.loads(good)
    ciz = token(central, "ciz", [NOTIFICATIE_ZK])
    assert (await central.post(CENTRAL, seed_notification(), token=ciz)).status == 200
    assert len(central.upstream.received) == 1

    # Zorgkantoor 5151 now receives at the zorgaanbieder's server.
    write_adresboek(book, f"{other_upstream.url}/graphql", f"{other_upstream.url}/graphql")
    central.client.app[PEP].reload_policies()
    assert source.active.version != refused["kept_version"]
    served = await central.client.get("/adresboek", headers={"Authorization": f"Bearer {reader}"})
    assert await served.json() == json.loads(book.read_text())
    assert (await central.post(CENTRAL, seed_notification(), token=ciz)).status == 200
    assert len(central.upstream.received) == 1 and len(other_upstream.received) == 1


async def test_a_changed_adresboek_file_is_picked_up_by_the_watcher(
    make_gateway: GatewayFactory, tmp_path: Path, upstream: RecordingUpstream
) -> None:
    book = write_adresboek(
        tmp_path / "adresboek.json", f"{upstream.url}/graphql", "http://b.test/g"
    )
    gateway = await make_gateway(
        **central_sections(book), policy={"watch": True, "watch_interval": 0.1}
    )
    source = gateway.client.app[PEP].adresboek
    assert source is not None
    before = source.active.version
    await asyncio.sleep(0.3)  # the watcher is running
    write_adresboek(book, f"{upstream.url}/graphql", "http://c.test/g")
    for _ in range(100):
        if source.active.version != before:
            break
        await asyncio.sleep(0.1)
    found = source.resolve("AGB", "12345678")
    assert found is not None and found.endpoint == "http://c.test/g"


def test_every_route_audience_includes_the_central_route(
    tmp_path: Path, upstream: RecordingUpstream
) -> None:
    book = write_adresboek(tmp_path / "adresboek.json", "http://a.test/", "http://b.test/")
    client = {
        "client_id": "bronhouder",
        "auth_method": "client_secret_post",
        "secret": "bronhouder-secret",
        "allowed_audiences": ["*routes*"],
    }
    authserver = {"signing": {"keys_dir": "keys"}, "clients": [client]}
    data = gateway_yaml(upstream.url, upstream.url, **central_sections(book), authserver=authserver)
    config = write_config(tmp_path, data)
    assert config.notificaties is not None and config.authserver is not None
    assert config.notificaties.audience == DEMO_URL + CENTRAL
    [only_routes] = config.authserver.clients
    assert DEMO_URL + CENTRAL in only_routes.allowed_audiences
    assert DEMO_URL + "/adresboek" not in only_routes.allowed_audiences


def test_serve_with_a_broken_adresboek_says_where_and_exits_2(
    tmp_path: Path, upstream: RecordingUpstream
) -> None:
    book = write_adresboek(tmp_path / "adresboek.json", "http://a.test/", "http://b.test/")
    book.write_text(book.read_text().replace('"tokenEndpoint"', '"tokenEndpunt"', 1))
    write_config(tmp_path, gateway_yaml(upstream.url, upstream.url, **central_sections(book)))
    serve = ["serve", "--config", str(tmp_path / "gateway.yaml"), "--port", "0"]
    result = subprocess.run(
        [sys.executable, "-m", "gateway.cli", *serve],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2, result.stderr
    line = next(n for n, text in enumerate(book.read_text().splitlines(), 1) if "Endpunt" in text)
    assert f"error: 2 errors in adresboek:\n{book}:" in result.stderr
    assert f"{book}:{line}:" in result.stderr  # the unknown key, where it is
    assert "Traceback" not in result.stderr


async def test_the_demo_adresboek_follows_the_example_servers_and_upstream() -> None:
    demo = Path(__file__).parents[2] / "config" / "demo" / "gateway.yaml"
    config, runners = await start_example_servers(load_config(demo))
    try:
        assert config.adresboek is not None
        source = AdresboekSource(config.adresboek)
        graphql = [r for r in config.routes if r.rest is None and r.deelnemer is not None]
        served = {r.deelnemer.id: r.upstream for r in graphql if r.deelnemer is not None}
        for id_type, ident in (("UZOVI", "5151"), ("AGB", "12345678"), ("KVK", "62253778")):
            found = source.resolve(id_type, ident)
            assert found is not None and found.endpoint == served[ident], (id_type, ident)
    finally:
        for runner in runners:
            await runner.cleanup()
    upstream = load_config(demo, upstream="http://127.0.0.1:9999/graphql").adresboek
    assert upstream is not None
    found = AdresboekSource(upstream).resolve("UZOVI", "5152")
    assert found is not None and found.endpoint == "http://127.0.0.1:9999/graphql"


async def test_adresboek_reloads_are_counted_applied_and_refused(
    tmp_path: Path, upstream: RecordingUpstream, aiohttp_client: Any
) -> None:
    """``nid_gateway_adresboek_reloads_total`` by outcome, scraped from the real /metrics."""
    book = write_adresboek(tmp_path / "adresboek.json", f"{upstream.url}/graphql", "http://b/")
    config = write_config(
        tmp_path, gateway_yaml(upstream.url, upstream.url, **central_sections(book))
    )
    client = await aiohttp_client(await create_app(config))

    async def counted() -> dict[str, float]:
        text = await (await client.get("/metrics")).text()
        return {
            sample.labels["outcome"]: sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
            if sample.name == "nid_gateway_adresboek_reloads_total"
        }

    assert await counted() == {"applied": 0.0, "refused": 0.0}
    good = book.read_text()
    book.write_text(good.replace('"5151_NOTIFICATIE_TST"', '"5151_NOTIFICATIE"'))
    client.app[PEP].reload_policies()  # what the SIGHUP handler calls
    assert await counted() == {"applied": 0.0, "refused": 1.0}
    write_adresboek(book, f"{upstream.url}/graphql", "http://c/")
    client.app[PEP].reload_policies()
    assert await counted() == {"applied": 1.0, "refused": 1.0}
