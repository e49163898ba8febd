"""The upstream executes exactly what the gateway decided on (docs/security.md).

Each known parser differential is tried against an upstream that executes what it gets
with graphql-core's executor and does not validate, reading duplicated JSON members
first-wins or last-wins, behind a route that validates against the bundled schema and one
with ``schema: none``. The attack is always the same: a CIZ token sends a notification as
afzender ``99999999`` (refused by the policy) hidden behind one the policy allows. Every
attack must be refused with a 4xx and reach nothing; the honest request must be executed
with exactly the arguments the gateway decided on.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from gateway.app import create_app
from gateway.observability.logs import flush_pending
from tests.executing_upstream import (
    ALLOWED_INPUT,
    ALLOWED_LITERAL,
    REFUSED_LITERAL,
    Execution,
    Wins,
    run_http_body,
)
from tests.fixtures.gateway import (
    CIZ,
    NOTIFICATIE_5151,
    ZK_5151,
    Gateway,
    GatewayFactory,
    RecordingUpstream,
    gateway_yaml,
    route,
    write_config,
)

GOOD, BAD, GOOD_INPUT = ALLOWED_LITERAL, REFUSED_LITERAL, ALLOWED_INPUT
ONE_VARIABLE = (
    "mutation Zend($n: NotificatieInput!) "
    "{ zendNotificatie(notificatieInput: $n) { notificatieID } }"
)


def zend(literal: str, alias: str = "", extra: str = "") -> str:
    return f"{alias}zendNotificatie(notificatieInput: {literal}) {extra}{{ notificatieID }}"


def body(query: str, **members: Any) -> bytes:
    return json.dumps({"query": query, **members}).encode()


# Raw JSON texts: json.dumps cannot write a duplicated member.
def raw(text: str) -> bytes:
    return text.encode()


ATTACKS: dict[str, tuple[bytes, dict[str, str]]] = {
    # 1. Duplicate names in the document.
    "two fragments of one name": (
        body(
            "mutation Zend { ...F } "
            f"fragment F on Mutation {{ {zend(GOOD)} }} fragment F on Mutation {{ {zend(BAD)} }}"
        ),
        {},
    ),
    "two operations of one name": (
        body(
            f"mutation Zend {{ {zend(GOOD)} }} mutation Zend {{ {zend(BAD)} }}",
            operationName="Zend",
        ),
        {},
    ),
    "two operations, operationName picks the allowed one": (
        body(
            f"mutation Goed {{ {zend(GOOD)} }} mutation Fout {{ {zend(BAD)} }}",
            operationName="Goed",
        ),
        {},
    ),
    # 2. Directives and type conditions.
    "a repeated @include": (
        body(
            f"mutation Zend {{ {zend(GOOD, 'a: ')} "
            f"{zend(BAD, 'b: ', '@include(if: true) @include(if: false) ')} }}"
        ),
        {},
    ),
    "an inline fragment on Query inside a mutation": (
        body(f"mutation Zend {{ ... on Query {{ {zend(GOOD)} }} }}"),
        {},
    ),
    "a fragment spread on Query inside a mutation": (
        body(f"mutation Zend {{ ...F }} fragment F on Query {{ {zend(GOOD)} }}"),
        {},
    ),
    "an unknown directive": (body(f"mutation Zend {{ {zend(GOOD, '', '@defer ')} }}"), {}),
    # 3. Duplicate and unknown JSON members.
    "a duplicated query member": (
        raw(
            json.dumps({"query": f"mutation Zend {{ {zend(BAD)} }}"})[:-1]
            + ", "
            + json.dumps({"query": f"mutation Zend {{ {zend(GOOD)} }}"})[1:]
        ),
        {},
    ),
    "a duplicated variables member": (
        raw(
            '{"query": '
            + json.dumps(ONE_VARIABLE)
            + ', "variables": {"n": '
            + json.dumps(dict(GOOD_INPUT, afzenderID="99999999"))
            + '}, "variables": {"n": '
            + json.dumps(GOOD_INPUT)
            + "}}"
        ),
        {},
    ),
    "a duplicated nested member": (
        raw(
            '{"query": '
            + json.dumps(ONE_VARIABLE)
            + ', "variables": {"n": '
            + json.dumps(GOOD_INPUT)[:-1]
            + ', "afzenderID": "62253778", "afzenderID": "99999999"'
            + ', "afzenderID": "62253778"}}}'
        ),
        {},
    ),
    "a case-variant Query member": (
        body(f"mutation Zend {{ {zend(GOOD)} }}", Query=f"mutation Zend {{ {zend(BAD)} }}"),
        {},
    ),
    "an extensions member": (
        body(
            f"mutation Zend {{ {zend(GOOD)} }}",
            extensions={"persistedQuery": {"version": 1, "sha256Hash": "0" * 64}},
        ),
        {},
    ),
    "a documentId member": (body(f"mutation Zend {{ {zend(GOOD)} }}", documentId="bad"), {}),
    # 4. Content-Encoding.
    "a gzip body": (
        gzip.compress(body(f"mutation Zend {{ {zend(GOOD)} }}")),
        {"Content-Encoding": "gzip"},
    ),
    "a corrupt gzip body": (b"\x1f\x8b\x08\x00garbage", {"Content-Encoding": "gzip"}),
}


class ExecutingUpstream:
    """The executing resource server behind the routes of this test."""

    def __init__(self, wins: Wins) -> None:
        self.wins = wins
        self.executions: list[Execution] = []

    def app(self) -> web.Application:
        async def graphql(request: web.Request) -> web.Response:
            # aiohttp has already decoded the body by its Content-Encoding, as many do.
            self.executions.append(run_http_body(await request.read(), None, self.wins))
            return web.json_response({"data": {"zendNotificatie": {"notificatieID": "n-1"}}})

        app = web.Application()
        app.router.add_post("/graphql", graphql)
        return app


@pytest.fixture(params=["first", "last"])
async def executing(request: pytest.FixtureRequest) -> Any:
    upstream = ExecutingUpstream(request.param)
    server = TestServer(upstream.app(), host="127.0.0.1")
    await server.start_server()
    upstream.url = str(server.make_url("/graphql"))  # type: ignore[attr-defined]
    yield upstream
    await server.close()


VALIDATING = ZK_5151
NOT_VALIDATING = "/deelnemers/uzovi/5151/unvalidated"


@pytest.fixture
async def gateway(
    make_gateway: GatewayFactory, executing: ExecutingUpstream, upstream: RecordingUpstream
) -> Gateway:
    url = executing.url  # type: ignore[attr-defined]
    routes = [
        route(VALIDATING, url, "UZOVI", "5151", "zorgkantoor"),
        route(NOT_VALIDATING, url, "UZOVI", "5151", "zorgkantoor", schema="none"),
        route(CIZ, f"{upstream.url}/graphql", "KVK", "62253778", "onderneming"),
    ]
    return await make_gateway(routes=routes)


async def send(gateway: Gateway, path: str, data: bytes, headers: dict[str, str]) -> Any:
    token = gateway.token("ciz", [NOTIFICATIE_5151], path=path)
    sent = {"Content-Type": "application/json", **headers}
    return await gateway.post(path, token=token, data=data, headers=sent)


@pytest.mark.parametrize("path", [VALIDATING, NOT_VALIDATING])
async def test_the_allowed_notification_is_executed_as_decided(
    gateway: Gateway, executing: ExecutingUpstream, path: str
) -> None:
    response = await send(gateway, path, body(f"mutation Zend {{ {zend(GOOD)} }}"), {})
    assert response.status == 200
    (execution,) = executing.executions
    assert execution.roots == [("zendNotificatie", {"notificatieInput": GOOD_INPUT})]
    (decision,) = [d for d in gateway.observer.decisions if d.route == path]
    assert (decision.outcome, decision.afzender) == ("allow", "KVK:62253778")


@pytest.mark.parametrize("path", [VALIDATING, NOT_VALIDATING])
async def test_the_hidden_notification_alone_is_refused(
    gateway: Gateway, executing: ExecutingUpstream, path: str
) -> None:
    # The control: what every attack hides is itself refused by the policy.
    response = await send(gateway, path, body(f"mutation Zend {{ {zend(BAD)} }}"), {})
    assert response.status == 400
    assert executing.executions == []


@pytest.mark.parametrize("path", [VALIDATING, NOT_VALIDATING])
@pytest.mark.parametrize("attack", list(ATTACKS))
async def test_a_parser_differential_is_refused_and_reaches_nothing(
    gateway: Gateway, executing: ExecutingUpstream, path: str, attack: str
) -> None:
    data, headers = ATTACKS[attack]
    response = await send(gateway, path, data, headers)
    answer = await response.json(content_type=None)
    assert 400 <= response.status < 500, answer
    assert answer["errors"][0]["extensions"]["code"] in (
        "BAD_REQUEST",
        "GRAPHQL_VALIDATION_FAILED",
    ), answer
    assert executing.executions == []


async def test_a_route_without_schema_validation_is_warned_about_at_start(
    tmp_path: Path,
    upstream: RecordingUpstream,
    aiohttp_client: Any,
    capsys: pytest.CaptureFixture[str],
) -> None:
    data = gateway_yaml(
        upstream.url,
        f"{upstream.url}/down",
        routes=[
            route(VALIDATING, f"{upstream.url}/graphql", "UZOVI", "5151", "zorgkantoor"),
            route(
                NOT_VALIDATING,
                f"{upstream.url}/graphql",
                "UZOVI",
                "5151",
                "zorgkantoor",
                schema="none",
            ),
        ],
    )
    capsys.readouterr()
    await aiohttp_client(await create_app(write_config(tmp_path, data)))
    flush_pending()
    lines = [
        json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")
    ]
    warned = [line for line in lines if line.get("event") == "schema_validation_off"]
    assert [(w["route"], w["level"]) for w in warned] == [(NOT_VALIDATING, "warning")]
