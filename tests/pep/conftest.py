"""The real gateway over real HTTP, in front of a real recording upstream.

``gateway`` starts ``create_app(load_config(<yaml written in tmp_path>))`` with a key
generated for the test, the demo clients, the real ``policies/iwlz`` and every route
pointing at an in-process aiohttp server that records what it receives. Extra routes of
deelnemer UZOVI 5151 point at misbehaving upstream paths (slow, reset mid-body, down).
"""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer, unused_port
from multidict import CIMultiDict, CIMultiDictProxy

from gateway.app import create_app
from gateway.appkeys import KEYSTORE
from gateway.authserver.keys import generate_key
from gateway.authserver.tokens import issue_token
from gateway.config import load_config
from gateway.config.model import GatewayConfig
from gateway.observability.events import DecisionEvent, NullObserver

REPO = Path(__file__).resolve().parents[2]
POLICIES = REPO / "policies" / "iwlz"
DEMO_CLIENTS = REPO / "config" / "demo" / "clients.yaml"
GRAPHQL_FIXTURES = REPO / "tests" / "graphql" / "fixtures"
PUBLIC_URL = "https://gateway.test"

ZK_5151 = "/deelnemers/uzovi/5151/graphql"
ZK_5152 = "/deelnemers/uzovi/5152/graphql"
ZA_AGB = "/deelnemers/agb/12345678/graphql"
CIZ = "/deelnemers/kvk/62253778/graphql"
SLOW = "/deelnemers/uzovi/5151/slow"
RESET = "/deelnemers/uzovi/5151/reset"
RESET_SMALL = "/deelnemers/uzovi/5151/reset-small"
DOWN = "/deelnemers/uzovi/5151/down"

NOTIFICATIE_5151 = "organisaties/zorgkantoor/notificaties/notificatie:create"
NOTIFICATIE_AGB = "organisaties/zorgaanbieder/notificaties/notificatie:create"
MELDING_5151 = "organisaties/zorgkantoor/meldingen/melding:create"
MELDING_KVK = "organisaties/onderneming/meldingen/melding:create"

UPSTREAM_ANSWER = b'{"data":{"zendNotificatie":{"notificatieID":"n-1"}}}'


def fixture_text(name: str) -> str:
    """A GraphQL fixture of the graphql room (``tests/graphql/fixtures``)."""
    return (GRAPHQL_FIXTURES / name).read_text(encoding="utf-8")


def seed_notification(**overrides: Any) -> dict[str, Any]:
    """The seed 003 section 3.5 example request, exactly as written, variables overridable."""
    variables = json.loads(fixture_text("seed_003_variables.json"))
    variables.update(overrides)
    return {
        "query": fixture_text("seed_003_example.graphql"),
        "variables": variables,
        "operationName": "zendNotificatie",
    }


@dataclass
class Received:
    """One request as the upstream saw it."""

    method: str
    path: str
    headers: CIMultiDictProxy[str]
    body: bytes
    peer: Any = None
    """The gateway's (host, port) as the upstream saw it: equal ports = a reused connection."""


@dataclass
class RecordingUpstream:
    """A real resource server that records every request it gets."""

    url: str
    received: list[Received] = field(default_factory=list)


def upstream_app(received: list[Received]) -> web.Application:
    """The recording resource server: ``/graphql`` answers 200, others misbehave."""

    async def record(request: web.Request) -> Received:
        peer = request.transport.get_extra_info("peername") if request.transport else None
        item = Received(request.method, request.path, request.headers, await request.read(), peer)
        received.append(item)
        return item

    async def graphql(request: web.Request) -> web.StreamResponse:
        await record(request)
        return web.Response(
            body=UPSTREAM_ANSWER,
            content_type="application/json",
            headers={"X-Upstream": "yes", "Connection": "keep-alive, X-Secret-Hop",
                     "X-Secret-Hop": "1", "Set-Cookie": "session=abc",
                     # The resource server's own trace headers: the gateway answers with its own.
                     "traceparent": "00-11111111111111111111111111111111-2222222222222222-01",
                     "X-Request-ID": "upstream-own-id", "X-B3-ParentSpanId": "3333333333333333"},
        )

    async def slow(request: web.Request) -> web.StreamResponse:
        await record(request)
        await asyncio.sleep(5)
        return web.Response(text="late")

    async def reset(request: web.Request) -> web.StreamResponse:
        await record(request)
        response = web.StreamResponse(status=200)
        # ?small: a declared length the gateway reads whole before answering.
        response.content_length = 1_000 if "small" in request.query else 100_000
        response.content_type = "application/json"
        await response.prepare(request)
        await response.write(b'{"data": {"partial": "')
        await asyncio.sleep(0.05)
        assert request.transport is not None
        request.transport.abort()
        return response

    async def big(request: web.Request) -> web.StreamResponse:
        await record(request)
        response = web.StreamResponse(status=207, headers={"Content-Type": "application/json"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        for index in range(64):
            await response.write(b"%05d" % index + b"x" * 16_379)
        await response.write_eof()
        return response

    app = web.Application()
    app.router.add_route("*", "/graphql", graphql)
    app.router.add_route("*", "/slow", slow)
    app.router.add_route("*", "/reset", reset)
    app.router.add_route("*", "/big", big)
    return app


@pytest.fixture
async def upstream() -> Any:
    """A recording upstream on a real loopback port."""
    received: list[Received] = []
    server = TestServer(upstream_app(received), host="127.0.0.1")
    await server.start_server()
    yield RecordingUpstream(url=str(server.make_url("")).rstrip("/"), received=received)
    await server.close()


def route(
    path: str, upstream: str, id_type: str, ident: str, kind: str, **extra: Any
) -> dict[str, Any]:
    """One route entry of ``gateway.yaml``."""
    return {
        "path": path,
        "upstream": upstream,
        "deelnemer": {"id_type": id_type, "id": ident, "kind": kind},
        "policies": [str(POLICIES)],
        **extra,
    }


def gateway_yaml(upstream_url: str, down_url: str, **overrides: Any) -> dict[str, Any]:
    """The test deployment: the demo's four deelnemers plus misbehaving-upstream routes."""
    ok = f"{upstream_url}/graphql"
    data: dict[str, Any] = {
        "public_url": PUBLIC_URL,
        "issuer": PUBLIC_URL,
        "server": {"host": "127.0.0.1", "port": 8080, "max_body_bytes": 64 * 1024},
        "authserver": {
            "enabled": True,
            "signing": {"keys_dir": "keys", "algorithm": "ES256"},
            "clients_file": "clients.yaml",
        },
        "tokens": {"trusted_issuers": [{"builtin": True}], "leeway": 30},
        "scopes": {
            "zendNotificatie": "organisaties/{kind}/notificaties/notificatie:create",
            "zendMelding": "organisaties/{kind}/meldingen/melding:create",
        },
        "routes": [
            route(ZK_5151, ok, "UZOVI", "5151", "zorgkantoor"),
            route(ZK_5152, ok, "UZOVI", "5152", "zorgkantoor"),
            route(ZA_AGB, ok, "AGB", "12345678", "zorgaanbieder"),
            route(CIZ, ok, "KVK", "62253778", "onderneming"),
            route(SLOW, f"{upstream_url}/slow", "UZOVI", "5151", "zorgkantoor",
                  timeouts={"connect": 1, "read": 0.3, "total": 0.5}),
            route(RESET, f"{upstream_url}/reset", "UZOVI", "5151", "zorgkantoor"),
            route(RESET_SMALL, f"{upstream_url}/reset?small=1", "UZOVI", "5151", "zorgkantoor"),
            route(DOWN, down_url, "UZOVI", "5151", "zorgkantoor"),
            route("/deelnemers/uzovi/5151/big", f"{upstream_url}/big", "UZOVI", "5151",
                  "zorgkantoor"),
        ],
        "policy": {"watch": False},
        "observability": {"log_format": "json", "log_level": "warning"},
    }
    data.update(overrides)
    return data


def write_config(tmp_path: Path, data: dict[str, Any]) -> GatewayConfig:
    """Write *data* as ``gateway.yaml`` (+ the demo ``clients.yaml``) and load it."""
    shutil.copy(DEMO_CLIENTS, tmp_path / "clients.yaml")
    keys_dir = tmp_path / "keys"
    if not keys_dir.is_dir():
        generate_key(keys_dir, "ES256")
    path = tmp_path / "gateway.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return load_config(path)


class RecordingObserver(NullObserver):
    """Keeps the events the pipeline reports (the real observer is tested by its room);
    a decision as the decision log's fields (``event.afzender``, ``event.rule``, ...)."""

    def __init__(self) -> None:
        self.decisions: list[SimpleNamespace] = []
        self.upstream_errors: list[tuple[str, str]] = []
        self.jwks: list[tuple[str, str]] = []

    def decision(self, event: DecisionEvent) -> None:
        self.decisions.append(SimpleNamespace(**event.fields()))

    def upstream_error(self, route: str, kind: str) -> None:
        self.upstream_errors.append((route, kind))

    def jwks_refresh(self, issuer: str, outcome: str) -> None:
        self.jwks.append((issuer, outcome))


@dataclass
class Gateway:
    """The running gateway and what a test needs to talk to it."""

    client: TestClient[Any, Any]
    config: GatewayConfig
    upstream: RecordingUpstream
    observer: RecordingObserver

    def token(self, client_id: str, scopes: list[str], path: str = ZK_5151,
              actor: str | None = None) -> str:
        """A token minted by the gateway's own authorization server for *path*."""
        keystore = self.client.app[KEYSTORE]
        return issue_token(self.config, keystore, client_id, scopes, PUBLIC_URL + path, actor)

    async def post(self, path: str, body: Any = None, *, token: str | None = None,
                   headers: dict[str, str] | None = None, data: bytes | None = None,
                   skip_auto_headers: tuple[str, ...] = ()) -> Any:
        """POST a GraphQL request (JSON) with a bearer token."""
        sent = CIMultiDict(headers or {})
        if token is not None:
            sent.setdefault("Authorization", f"Bearer {token}")
        if data is None:
            data = json.dumps(body if body is not None else seed_notification()).encode()
            sent.setdefault("Content-Type", "application/json")
        return await self.client.post(path, data=data, headers=sent,
                                      skip_auto_headers=skip_auto_headers)


GatewayFactory = Callable[..., Awaitable[Gateway]]


@pytest.fixture
async def make_gateway(
    tmp_path: Path, upstream: RecordingUpstream, aiohttp_client: Any
) -> GatewayFactory:
    """Start a gateway; keyword arguments override top-level sections of the YAML."""

    async def make(**overrides: Any) -> Gateway:
        data = gateway_yaml(upstream.url, f"http://127.0.0.1:{unused_port()}/graphql", **overrides)
        config = write_config(tmp_path, data)
        observer = RecordingObserver()
        client = await aiohttp_client(await create_app(config, observer=observer))
        return Gateway(client, config, upstream, observer)

    return make


@pytest.fixture
async def gateway(make_gateway: GatewayFactory) -> Gateway:
    """The standard test gateway."""
    return await make_gateway()
