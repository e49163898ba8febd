"""What the subscription lookup adds to a notification, through the real gateway, same run.

    .venv/bin/python bench/bench_abonnement.py [--requests 2000]

One gateway app on a loopback port (SQLite store seeded with 10 000 subscriptions; also
PostgreSQL when ``NID_TEST_POSTGRES_DSN`` names a server), in front of a fixed-answer
upstream. Sequential requests from one keep-alive client, the two kinds alternating:

  verplicht   zendNotificatie NIEUWE_BEMIDDELINGSPECIFICATIE_ZORGAANBIEDER (no lookup)
  vrijwillig  zendNotificatie GEWIJZIGDE_DOSSIERHOUDER_CZT_VOOR_ZORGAANBIEDER with the
              ontvangerKenmerk of an active subscription (one primary-key read, then decide)

Prints the median and p99 latency of each and the difference (the added latency). Client,
gateway and upstream share one event loop, so absolute numbers include the client; the
difference is what the lookup costs.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import yaml
from aiohttp import web
from aiohttp.test_utils import TestServer

from gateway.app import create_app
from gateway.appkeys import KEYSTORE
from gateway.authserver.signing_keys import generate_key
from gateway.authserver.tokens import issue_token
from gateway.config.loader import load_config
from gateway.store.api import Party, Subscription, now
from gateway.store.setup import STORE

REPO = Path(__file__).resolve().parents[1]
ROUTE = "/deelnemers/agb/12345678/graphql"
PUBLIC = "http://127.0.0.1:8080"
VRIJWILLIG = "GEWIJZIGDE_DOSSIERHOUDER_CZT_VOOR_ZORGAANBIEDER"
VERPLICHT = "NIEUWE_BEMIDDELINGSPECIFICATIE_ZORGAANBIEDER"
SUBSCRIPTIONS = 10_000
QUERY = (
    "mutation zendNotificatie($n: NotificatieInput!) "
    "{ zendNotificatie(notificatieInput: $n) { notificatieID } }"
)


def notification(event_type: str, kenmerk: str | None) -> dict[str, Any]:
    n: dict[str, Any] = {
        "afzenderIDType": "UZOVI",
        "afzenderID": "5151",
        "ontvangerIDType": "AGB",
        "ontvangerID": "12345678",
        "eventType": event_type,
        "timestamp": "2024-07-02T00:00:00Z",
        "subjectList": [{"subject": "Bemiddeling/1", "recordID": "Bemiddeling/1"}],
    }
    if kenmerk is not None:
        n["ontvangerKenmerk"] = kenmerk
    return {"query": QUERY, "variables": {"n": n}}


async def upstream() -> TestServer:
    async def answer(_request: web.Request) -> web.Response:
        return web.Response(
            body=b'{"data":{"zendNotificatie":{"notificatieID":"n-1"}}}',
            content_type="application/json",
        )

    app = web.Application()
    app.router.add_post("/graphql", answer)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    return server


def write_config(folder: Path, upstream_url: str, store: dict[str, Any]) -> Path:
    generate_key(folder / "keys", "ES256")
    data = {
        "public_url": PUBLIC,
        "issuer": PUBLIC,
        "authserver": {
            "enabled": True,
            "signing": {"keys_dir": "keys", "algorithm": "ES256"},
            "clients_file": str(REPO / "config" / "demo" / "clients.yaml"),
        },
        "tokens": {"trusted_issuers": [{"builtin": True}]},
        "scopes": {"zendNotificatie": "organisaties/{kind}/notificaties/notificatie:create"},
        "routes": [
            {
                "path": ROUTE,
                "upstream": upstream_url + "/graphql",
                "deelnemer": {"id_type": "AGB", "id": "12345678", "kind": "zorgaanbieder"},
                "policies": [str(REPO / "policies" / "iwlz")],
            }
        ],
        "store": store,
        "observability": {"log_level": "warning", "log_format": "json"},
    }
    path = folder / "gateway.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


async def run(name: str, store: dict[str, Any], requests: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        up = await upstream()
        config = load_config(write_config(Path(tmp), str(up.make_url("")).rstrip("/"), store))
        app = await create_app(config)
        server = TestServer(app, host="127.0.0.1")
        await server.start_server()
        try:
            kenmerk = await seed(app)
            token = issue_token(
                config,
                app[KEYSTORE],
                "zorgkantoor-5151",
                ["organisaties/zorgaanbieder/notificaties/notificatie:create"],
                PUBLIC + ROUTE,
            )
            await measure(name, str(server.make_url(ROUTE)), token, kenmerk, requests)
        finally:
            await server.close()
            await up.close()


async def seed(app: web.Application) -> str:
    """Fill the store; the abonnementId of the subscription the notifications use."""
    store = app[STORE]
    bronhouder = Party("UZOVI", "5151")
    for n in range(SUBSCRIPTIONS):
        subscriber = Party("AGB", "12345678" if n == SUBSCRIPTIONS // 2 else f"{n:08d}")
        await store.record(Subscription(f"ab-{n}", bronhouder, subscriber, VRIJWILLIG, now()))
    return f"ab-{SUBSCRIPTIONS // 2}"


async def measure(name: str, url: str, token: str, kenmerk: str, requests: int) -> None:
    bodies = {
        "verplicht": notification(VERPLICHT, None),
        "vrijwillig": notification(VRIJWILLIG, kenmerk),
    }
    samples: dict[str, list[float]] = {k: [] for k in bodies}
    headers = {"Authorization": f"Bearer {token}"}
    async with aiohttp.ClientSession() as session:
        for kind, body in bodies.items():  # warm up: parse cache, connections
            for _ in range(50):
                async with session.post(url, json=body, headers=headers) as r:
                    assert r.status == 200, (kind, await r.text())
        for _ in range(requests):  # alternating: both kinds see the same machine state
            for kind, body in bodies.items():
                start = time.perf_counter()
                async with session.post(url, json=body, headers=headers) as r:
                    await r.read()
                samples[kind].append(time.perf_counter() - start)
    med = {k: statistics.median(v) * 1e6 for k, v in samples.items()}
    p99 = {k: sorted(v)[int(len(v) * 0.99)] * 1e6 for k, v in samples.items()}
    for kind in bodies:
        print(f"{name:11} {kind:10} median {med[kind]:6.0f} µs  p99 {p99[kind]:6.0f} µs")
    added = med["vrijwillig"] - med["verplicht"]
    print(f"{name:11} added by the lookup: median {added:+.0f} µs")


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=2000)
    args = parser.parse_args()
    print(f"{SUBSCRIPTIONS} subscriptions, {args.requests} requests per kind, sequential")
    with tempfile.TemporaryDirectory() as folder:
        store = {"backend": "sqlite", "path": str(Path(folder) / "bench.sqlite3")}
        await run("sqlite", store, args.requests)
    if dsn := os.environ.get("NID_TEST_POSTGRES_DSN"):
        import asyncpg

        database = f"nid_bench_{uuid.uuid4().hex[:8]}"
        admin = await asyncpg.connect(dsn)
        await admin.execute(f"CREATE DATABASE {database}")
        try:
            target = dsn.rsplit("/", 1)[0] + f"/{database}"
            await run("postgresql", {"backend": "postgresql", "dsn": target}, args.requests)
        finally:
            await admin.execute(f"DROP DATABASE {database} WITH (FORCE)")
            await admin.close()


if __name__ == "__main__":
    asyncio.run(main())
