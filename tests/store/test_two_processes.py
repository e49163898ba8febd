"""Issue 14 as deployed: two ``nid-gateway serve`` OS processes - two replicas behind one
``public_url``, the same signing key - on one PostgreSQL database. A subscription created
through one is at once listed by, used by and ended through the other; the end is at once
refused by the first. No state is shared but the database."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer, unused_port

from gateway.authserver.signing_keys import generate_key
from gateway.examples.resource_server import create_resource_server_app
from tests.fixtures.gateway import DEMO_CLIENTS, ZA_AGB, ZK_5151, gateway_yaml
from tests.fixtures.serve import REPO, Serve
from tests.fixtures.store import Backend
from tests.store.test_abonnementen_flow import (
    ABONNEMENT_ZK,
    NOTIFICATIE_AGB,
    SCOPES,
    delete_body,
    notification,
    subscribe_body,
)

PUBLIC_URL = "http://127.0.0.1:8080"
"""Both replicas' public URL (the demo clients' audiences); each listens on a port of its own."""


@pytest.fixture
async def bronhouder() -> AsyncIterator[str]:
    server = TestServer(create_resource_server_app("bronhouder"), host="127.0.0.1")
    await server.start_server()
    yield str(server.make_url("/graphql"))
    await server.close()


@pytest.fixture
def replicas(tmp_path: Path) -> Iterator[list[Serve]]:
    started: list[Serve] = []
    yield started
    for served in started:
        if served.proc.poll() is None:
            served.proc.kill()
            served.proc.wait(timeout=10)


def start_replica(tmp_path: Path, name: str, upstream: str, dsn: str) -> Serve:
    """``nid-gateway serve`` of the shared deployment, on a port of its own."""
    directory = tmp_path / name
    directory.mkdir()
    shutil.copy(DEMO_CLIENTS, directory / "clients.yaml")
    port = unused_port()
    data: dict[str, Any] = gateway_yaml(
        upstream,
        upstream,
        public_url=PUBLIC_URL,
        issuer=PUBLIC_URL,
        scopes=SCOPES,
        store={"backend": "postgresql", "dsn": dsn, "timeout": 5},
    )
    data["server"]["port"] = port
    data["authserver"]["signing"]["keys_dir"] = str(tmp_path / "keys")
    data["routes"] = [r for r in data["routes"] if r["path"] in (ZK_5151, ZA_AGB)]
    path = directory / "gateway.yaml"
    path.write_text(json.dumps(data), encoding="utf-8")
    stdout, stderr = directory / "stdout.log", directory / "stderr.log"
    with stdout.open("wb") as out, stderr.open("wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "gateway.cli", "serve", "--config", str(path)],
            cwd=REPO,
            env={**os.environ, "PYTHONPATH": str(REPO)},
            stdout=out,
            stderr=err,
        )
    return Serve(proc, port, stdout, stderr, directory, directory)


class Client:
    """A demo client talking to one replica (tokens from that replica's token endpoint)."""

    def __init__(self, session: aiohttp.ClientSession, replica: Serve, client_id: str) -> None:
        self.session, self.base, self.client_id = session, replica.base, client_id

    async def token(self, path: str, scope: str | None) -> str:
        form = {
            "grant_type": "client_credentials",
            "audience": PUBLIC_URL + path,
            "client_id": self.client_id,
            "client_secret": f"{self.client_id}-demo-secret",
            **({"scope": scope} if scope else {}),
        }
        async with self.session.post(self.base + "/auth/token", data=form) as resp:
            assert resp.status == 200, await resp.text()
            return str((await resp.json())["access_token"])

    async def post(self, path: str, scope: str, body: Any) -> tuple[int, Any]:
        headers = {"Authorization": "Bearer " + await self.token(path, scope)}
        async with self.session.post(self.base + path, json=body, headers=headers) as resp:
            return resp.status, await resp.json()

    async def listed(self) -> list[dict[str, Any]]:
        headers = {"Authorization": "Bearer " + await self.token("/abonnementen", None)}
        async with self.session.get(self.base + "/abonnementen?alle=1", headers=headers) as resp:
            assert resp.status == 200, await resp.text()
            found: list[dict[str, Any]] = await resp.json()
            return found


@pytest.mark.parametrize("store_backend", ["postgresql"], indirect=True)
async def test_two_serve_processes_on_one_postgresql_share_subscriptions_at_once(
    tmp_path: Path, store_backend: Backend, bronhouder: str, replicas: list[Serve]
) -> None:
    generate_key(tmp_path / "keys", "ES256")
    for name in ("a", "b"):
        replicas.append(start_replica(tmp_path, name, bronhouder, store_backend.location))
        replicas[-1].wait_listening()
    a, b = replicas
    assert a.proc.pid != b.proc.pid and a.port != b.port
    async with aiohttp.ClientSession() as session:
        subscriber_a = Client(session, a, "zorgaanbieder-12345678")
        subscriber_b = Client(session, b, "zorgaanbieder-12345678")
        sender_a = Client(session, a, "zorgkantoor-5151")
        sender_b = Client(session, b, "zorgkantoor-5151")

        status, answer = await subscriber_a.post(ZK_5151, ABONNEMENT_ZK, subscribe_body())
        assert status == 200, answer
        abonnement_id = answer["data"]["createAbonnement"]["abonnementId"]

        [seen] = await subscriber_b.listed()
        assert (seen["abonnementId"], seen["actief"]) == (abonnement_id, True)
        status, answer = await sender_b.post(ZA_AGB, NOTIFICATIE_AGB, notification(abonnement_id))
        assert status == 200, answer

        status, answer = await subscriber_b.post(ZK_5151, ABONNEMENT_ZK, delete_body(abonnement_id))
        assert (status, answer) == (200, {"data": {"deleteAbonnement": True}})

        status, answer = await sender_a.post(ZA_AGB, NOTIFICATIE_AGB, notification(abonnement_id))
        assert status == 400, answer
        assert answer["errors"][0]["message"].endswith("ontvangerKenmerk is not valid")
        [ended] = await subscriber_a.listed()
        assert (ended["abonnementId"], ended["actief"]) == (abonnement_id, False)
    for replica in replicas:
        assert replica.stop() == 0, replica.stderr.read_text()
