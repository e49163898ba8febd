"""REST routes through the real running gateway (seeds 000 and 004, contract section *REST
routes*): each seed 000 exchange allowed and refused, the OpenAPI gate, the scope gate, the
JSON refusals, the "upstream executes what was analysed" rules and the deprecation headers
of Klantinteracties. The upstream is the bundled example app on a real port, recording
every request: a refusal test checks it saw nothing (the Ketenindex lookup aside).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestServer, unused_port

from gateway.examples.rest_apis import RECEIVED, create_rest_apis_app
from tests.fixtures.gateway import PUBLIC_URL, REPO, Gateway, GatewayFactory

OPENAPI = REPO / "config" / "openapi"
FIXTURE = REPO / "config" / "demo" / "ketenindex.yaml"
KI = "/klantinteracties/api/v1"
EVENTS = "/ketenindex/gebeurtenissen"
WRITE = "ketenindex/gebeurtenissen:write"
READ = "ketenindex/gebeurtenissen:read"
INZAGE = "uitkomstoverleg/uitkomsten:read"
VOORZITTER = "zorgkantoor-5151"
DEELNEMER = "zorgaanbieder-12345678"
BUITENSTAANDER = "zorgkantoor-5152"
QUERY = f"{EVENTS}?hoofdbetrokkene=999993653&overleg=ovl-2026-0001"
LOOKUP = {"name": "overleg", "route": "/ketenindex", "path": "/ketenindex/overleggen/{key}"}


def rest_routes(url: str, ketenindex_url: str | None = None) -> list[dict[str, Any]]:
    """The demo's three REST routes in front of *url* (the Ketenindex at *ketenindex_url*)."""
    return [
        {
            "path": "/ketenindex",
            "upstream": ketenindex_url or url,
            "policies": [str(REPO / "policies" / "ketenindex")],
            "rest": {
                "read_scope": READ,
                "write_scope": WRITE,
                "openapi": str(OPENAPI / "ketenindex.yaml"),
                "lookups": [{**LOOKUP, "key": ["body.overlegId", "query.overleg"]}],
            },
        },
        {
            "path": "/voorzitter/uitkomsten",
            "upstream": url,
            "deelnemer": {"id_type": "UZOVI", "id": "5151", "kind": "zorgkantoor"},
            "policies": [str(REPO / "policies" / "ketenindex")],
            "rest": {
                "read_scope": INZAGE,
                "openapi": str(OPENAPI / "uitkomstoverleg.yaml"),
                "lookups": [{**LOOKUP, "key": ["params.id"]}],
            },
        },
        {
            "path": KI,
            "upstream": url,
            "policies": [str(REPO / "policies" / "klantinteracties")],
            "rest": {
                "read_scope": "klantinteracties:read",
                "write_scope": "klantinteracties:write",
                "openapi": str(OPENAPI / "klantinteracties.yaml"),
                "deprecation": {
                    "deprecated_since": "2024-01-01T00:00:00Z",
                    "sunset": "2026-12-31T23:59:59Z",
                },
            },
        },
    ]


@pytest.fixture
async def apis() -> AsyncIterator[TestServer]:
    server = TestServer(create_rest_apis_app(FIXTURE), host="127.0.0.1")
    await server.start_server()
    yield server
    await server.close()


@pytest.fixture
async def gateway(make_gateway: GatewayFactory, apis: TestServer) -> Gateway:
    return await make_gateway(routes=rest_routes(str(apis.make_url("")).rstrip("/")))


def seen(apis: TestServer, prefix: str = "") -> list[dict[str, Any]]:
    """What the upstream received on *prefix*, the Ketenindex lookups left out."""
    return [
        r
        for r in apis.app[RECEIVED]
        if r["path_qs"].startswith(prefix) and not r["path_qs"].startswith("/ketenindex/overl")
    ]


async def call(
    gw: Gateway,
    method: str,
    path: str,
    *,
    client: str,
    scopes: list[str],
    audience: str,
    body: Any = None,
    data: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> Any:
    token = gw.token(client, scopes, audience)
    sent = {"Authorization": f"Bearer {token}", **(headers or {})}
    if body is not None:
        data = json.dumps(body).encode()
    if data is not None:
        sent.setdefault("Content-Type", "application/json")
    return await gw.client.request(method, path, data=data, headers=sent)


def event(kind: str, afzender: tuple[str, str], **more: Any) -> dict[str, Any]:
    return {
        "type": kind,
        "overlegId": "ovl-2026-0001",
        "hoofdbetrokkene": "999993653",
        "afzender": {"idType": afzender[0], "id": afzender[1]},
        "tijdstip": "2026-12-01T11:00:00Z",
        **more,
    }


def beschikbaar(overleg: str, voorzitter: tuple[str, str]) -> dict[str, Any]:
    party = {"idType": voorzitter[0], "id": voorzitter[1]}
    return event(
        "UITKOMST_OVERLEG_BESCHIKBAAR_GEDEELD",
        voorzitter,
        overlegId=overleg,
        voorzitter=party,
        deelnemers=[{"idType": "AGB", "id": "12345678"}],
        inzageUri=f"{PUBLIC_URL}/voorzitter/uitkomsten/{overleg}",
    )


async def refusal(response: Any) -> dict[str, Any]:
    assert response.content_type == "application/json"
    body = await response.json()
    assert set(body["error"]) == {"code", "reason", "decision_id"}
    assert body["error"]["decision_id"]
    error: dict[str, Any] = body["error"]
    return error


# ------------------------------------------------------------------ seed 000, uitwisseling 1
async def test_the_voorzitter_shares_an_uitkomst_and_the_body_arrives_unchanged(
    gateway: Gateway, apis: TestServer
) -> None:
    data = json.dumps(beschikbaar("ovl-2026-0002", ("UZOVI", "5151")), indent=1).encode()
    response = await call(
        gateway,
        "POST",
        EVENTS,
        client=VOORZITTER,
        scopes=[WRITE],
        audience="/ketenindex",
        data=data,
    )
    assert response.status == 201, await response.text()
    (received,) = seen(apis, EVENTS)
    assert (received["method"], received["path_qs"], received["body"]) == ("POST", EVENTS, data)
    assert json.loads(received["headers"]["claims"])["client_id"] == VOORZITTER


async def test_only_the_voorzitter_of_an_overleg_shares_its_uitkomst(
    gateway: Gateway, apis: TestServer
) -> None:
    # The deelnemer names itself voorzitter of ovl-2026-0001, chaired by zorgkantoor 5151.
    response = await call(
        gateway,
        "POST",
        EVENTS,
        client=DEELNEMER,
        scopes=[WRITE],
        audience="/ketenindex",
        body=beschikbaar("ovl-2026-0001", ("AGB", "12345678")),
    )
    assert response.status == 403
    error = await refusal(response)
    assert error == {**error, "code": "FORBIDDEN"}
    assert error["reason"] == "only the voorzitter of the overleg shares its uitkomst"
    assert seen(apis, EVENTS) == []


# ------------------------------------------------------------------ seed 000, uitwisseling 2
async def test_a_deelnemer_queries_the_events_of_its_overleg(
    gateway: Gateway, apis: TestServer
) -> None:
    response = await call(
        gateway, "GET", QUERY, client=DEELNEMER, scopes=[READ], audience="/ketenindex"
    )
    assert response.status == 200
    (published,) = await response.json()
    assert published["type"] == "UITKOMST_OVERLEG_BESCHIKBAAR_GEDEELD"
    assert [r["path_qs"] for r in seen(apis)] == [QUERY]


async def test_an_organisation_outside_the_overleg_cannot_query_its_events(
    gateway: Gateway, apis: TestServer
) -> None:
    response = await call(
        gateway, "GET", QUERY, client=BUITENSTAANDER, scopes=[READ], audience="/ketenindex"
    )
    assert response.status == 403
    assert (await refusal(response))["reason"] == "the caller takes no part in this overleg"
    assert seen(apis) == []
    assert gateway.observer.decisions[-1].rule == "ketenindex-opvragen/neemt-deel"


# ------------------------------------------------------------------ seed 000, uitwisseling 3
async def test_a_deelnemer_gets_inzage_at_the_voorzitter(
    gateway: Gateway, apis: TestServer
) -> None:
    path = "/voorzitter/uitkomsten/ovl-2026-0001"
    response = await call(
        gateway, "GET", path, client=DEELNEMER, scopes=[INZAGE], audience="/voorzitter/uitkomsten"
    )
    assert response.status == 200
    assert (await response.json())["overlegId"] == "ovl-2026-0001"
    assert [r["path_qs"] for r in seen(apis)] == [path]


async def test_inzage_is_refused_to_a_non_deelnemer(gateway: Gateway, apis: TestServer) -> None:
    response = await call(
        gateway,
        "GET",
        "/voorzitter/uitkomsten/ovl-2026-0001",
        client=BUITENSTAANDER,
        scopes=[INZAGE],
        audience="/voorzitter/uitkomsten",
    )
    assert response.status == 403
    reason = (await refusal(response))["reason"]
    assert reason == "only a deelnemer of the overleg has inzage in its uitkomst"
    assert seen(apis) == []


async def test_inzage_verzoek_events_come_only_from_the_matching_party(
    gateway: Gateway, apis: TestServer
) -> None:
    gedaan = event("INZAGE_VERZOEK_GEDAAN", ("AGB", "12345678"))
    geleverd = event("INZAGE_VERZOEK_GELEVERD", ("UZOVI", "5151"))
    write: dict[str, Any] = {"scopes": [WRITE], "audience": "/ketenindex"}
    ok_gedaan = await call(gateway, "POST", EVENTS, client=DEELNEMER, body=gedaan, **write)
    ok_geleverd = await call(gateway, "POST", EVENTS, client=VOORZITTER, body=geleverd, **write)
    assert (ok_gedaan.status, ok_geleverd.status) == (201, 201)
    assert len(seen(apis, EVENTS)) == 2
    wrong_gedaan = event("INZAGE_VERZOEK_GEDAAN", ("UZOVI", "5151"))
    wrong_geleverd = event("INZAGE_VERZOEK_GELEVERD", ("AGB", "12345678"))
    refused = [
        await call(gateway, "POST", EVENTS, client=VOORZITTER, body=wrong_gedaan, **write),
        await call(gateway, "POST", EVENTS, client=DEELNEMER, body=wrong_geleverd, **write),
    ]
    assert [r.status for r in refused] == [403, 403]
    assert [(await refusal(r))["reason"] for r in refused] == [
        "only a deelnemer of the overleg reports this event",
        "only the voorzitter of the overleg reports this event",
    ]
    assert len(seen(apis, EVENTS)) == 2


async def test_an_unanswered_ketenindex_lookup_refuses_with_503(
    make_gateway: GatewayFactory, apis: TestServer
) -> None:
    url = str(apis.make_url("")).rstrip("/")
    gw = await make_gateway(routes=rest_routes(url, f"http://127.0.0.1:{unused_port()}"))
    response = await call(
        gw,
        "GET",
        "/voorzitter/uitkomsten/ovl-2026-0001",
        client=DEELNEMER,
        scopes=[INZAGE],
        audience="/voorzitter/uitkomsten",
    )
    assert response.status == 503
    assert (await refusal(response))["reason"].startswith("facts unavailable: overleg")
    assert seen(apis) == []


# ------------------------------------------------------------------ the route's gates
async def test_a_token_without_the_methods_scope_is_403_insufficient_scope(
    gateway: Gateway, apis: TestServer
) -> None:
    # A read scope does not write.
    response = await call(
        gateway,
        "POST",
        EVENTS,
        client=VOORZITTER,
        scopes=[READ],
        audience="/ketenindex",
        body=beschikbaar("ovl-2026-0003", ("UZOVI", "5151")),
    )
    assert response.status == 403
    assert (await refusal(response))["code"] == "insufficient_scope"
    assert 'error="insufficient_scope"' in response.headers["WWW-Authenticate"]
    assert f'scope="{WRITE}"' in response.headers["WWW-Authenticate"]
    assert seen(apis) == []


async def test_a_token_for_another_route_is_401(gateway: Gateway, apis: TestServer) -> None:
    response = await call(
        gateway, "GET", QUERY, client=DEELNEMER, scopes=[READ], audience="/voorzitter/uitkomsten"
    )
    assert response.status == 401
    assert (await refusal(response))["code"] == "UNAUTHENTICATED"
    assert seen(apis) == []


@pytest.mark.parametrize(
    ("method", "path", "status", "reason"),
    [
        ("GET", f"{KI}/medewerkers", 404, "unknown_path"),
        ("GET", "/ketenindex/overleggen/ovl-2026-0001", 404, "unknown_path"),
        ("GET", f"{KI}/klanten?page=0", 400, "invalid_parameter"),
        ("GET", f"{KI}/klanten?page=1&page=2", 400, "duplicate_parameter"),
        ("GET", f"{KI}/klanten?expand=alles", 400, "unknown_parameter"),
        ("GET", f"{KI}/klanten/niet-een-uuid", 400, "invalid_parameter"),
        ("GET", f"{KI}/klanten/a%2Fb", 400, "ambiguous_path"),
    ],
)
async def test_operations_outside_the_openapi_document_are_refused_before_any_policy(
    gateway: Gateway, apis: TestServer, method: str, path: str, status: int, reason: str
) -> None:
    audience = "/ketenindex" if path.startswith("/ketenindex") else KI
    scopes = [READ] if path.startswith("/ketenindex") else ["klantinteracties:read"]
    response = await call(
        gateway, method, path, client=VOORZITTER, scopes=scopes, audience=audience
    )
    assert response.status == status
    assert (await refusal(response))["reason"] == reason
    assert gateway.observer.decisions[-1].rule is None  # no policy was asked
    assert seen(apis) == []


async def test_a_method_outside_the_document_is_405_with_allow(
    gateway: Gateway, apis: TestServer
) -> None:
    response = await call(
        gateway,
        "DELETE",
        f"{KI}/contactmomenten/0b7c4a52-46a1-4a8d-a1c8-111111111111",
        client=VOORZITTER,
        scopes=["klantinteracties:write"],
        audience=KI,
    )
    assert response.status == 405
    assert response.headers["Allow"] == "GET"
    assert (await refusal(response))["code"] == "METHOD_NOT_ALLOWED"
    assert seen(apis) == []


@pytest.mark.parametrize(
    ("data", "content_type", "status", "reason"),
    [
        (
            b'{"bronorganisatie": "123456789", "bronorganisatie": "999999999"}',
            None,
            400,
            "duplicate_member",
        ),
        (b'{"bronorganisatie": "12"}', None, 400, "invalid_body"),
        (b'{"bronorganisatie": "123456789", "extra": 1}', None, 400, "invalid_body"),
        (b"{not json", None, 400, "invalid_json"),
        (
            b"bronorganisatie=123456789",
            "application/x-www-form-urlencoded",
            415,
            "unsupported_media_type",
        ),
        (b"", None, 400, "missing_body"),
    ],
)
async def test_bodies_are_validated_and_never_forwarded_when_refused(
    gateway: Gateway,
    apis: TestServer,
    data: bytes,
    content_type: str | None,
    status: int,
    reason: str,
) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    response = await call(
        gateway,
        "POST",
        f"{KI}/klanten",
        client=VOORZITTER,
        scopes=["klantinteracties:write"],
        audience=KI,
        data=data,
        headers=headers,
    )
    assert response.status == status
    assert (await refusal(response))["reason"] == reason
    assert seen(apis) == []


async def test_a_body_over_the_limit_is_413(gateway: Gateway, apis: TestServer) -> None:
    data = json.dumps({"bronorganisatie": "123456789", "voornaam": "x" * 70_000}).encode()
    response = await call(
        gateway,
        "POST",
        f"{KI}/klanten",
        client=VOORZITTER,
        scopes=["klantinteracties:write"],
        audience=KI,
        data=data,
    )
    assert response.status == 413
    assert seen(apis) == []


# ------------------------------------------------------------------ Klantinteracties (004)
async def test_klantinteracties_forwards_method_path_and_query_as_received(
    gateway: Gateway, apis: TestServer
) -> None:
    data = b'{"bronorganisatie":"123456789","kanaal":"telefoon"}'
    created = await call(
        gateway,
        "POST",
        f"{KI}/contactmomenten",
        client=VOORZITTER,
        scopes=["klantinteracties:write"],
        audience=KI,
        data=data,
    )
    assert created.status == 201
    listed = await call(
        gateway,
        "GET",
        f"{KI}/contactmomenten?page=1",
        client=VOORZITTER,
        scopes=["klantinteracties:read"],
        audience=KI,
    )
    assert (await listed.json())["count"] == 1
    assert [(r["method"], r["path_qs"], r["body"]) for r in seen(apis)] == [
        ("POST", f"{KI}/contactmomenten", data),
        ("GET", f"{KI}/contactmomenten?page=1", b""),
    ]


async def test_every_klantinteracties_answer_carries_deprecation_and_sunset(
    gateway: Gateway, apis: TestServer
) -> None:
    token = gateway.token(VOORZITTER, ["klantinteracties:read"], KI)
    auth = {"Authorization": f"Bearer {token}"}
    answers = [
        await gateway.client.get(f"{KI}/verzoeken", headers=auth),  # allowed
        await gateway.client.get(f"{KI}/verzoeken"),  # 401
        await gateway.client.get(f"{KI}/medewerkers", headers=auth),  # 404
        await gateway.client.put(f"{KI}/verzoeken", headers=auth),  # 405
    ]
    assert [a.status for a in answers] == [200, 401, 404, 405]
    for answer in answers:
        assert answer.headers["Deprecation"] == "@1704067200"
        assert answer.headers["Sunset"] == "Thu, 31 Dec 2026 23:59:59 GMT"
    other = await call(
        gateway, "GET", QUERY, client=DEELNEMER, scopes=[READ], audience="/ketenindex"
    )
    assert "Deprecation" not in other.headers


async def test_a_rest_route_forwards_to_its_upstreams_origin_plus_the_path_as_received(
    make_gateway: GatewayFactory, apis: TestServer
) -> None:
    # As with `demo --upstream URL`: the URL's own path plays no part on a REST route.
    url = str(apis.make_url("")).rstrip("/")
    gw = await make_gateway(routes=rest_routes(f"{url}/graphql", f"{url}/graphql"))
    path = f"{KI}/klanten?page=1&subjectType=vestiging"
    response = await call(
        gw, "GET", path, client=VOORZITTER, scopes=["klantinteracties:read"], audience=KI
    )
    assert response.status == 200
    assert [r["path_qs"] for r in seen(apis)] == [path]
